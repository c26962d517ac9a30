// Reads through an in-process cache whose entries other instances invalidate (NOTIFY on the cache
// channel). A read in flight when the invalidation arrives may have read the row as it was before
// the change: lru-cache aborts a fetch whose key is deleted (or set) meanwhile and does not cache
// what it read, and the caller reads again, after the change (every caller sharing that read, too).
// Concurrent misses of one key share one read.
import type { LRUCache } from "lru-cache";

/** Aborted reads retried at most this often (each needs another invalidation of the same key in flight). */
const ATTEMPTS = 5;

/**
 * The cached value of `key`, read on a miss. `inTx`: the caller is in a transaction, and a miss is
 * read by it, in that transaction, and not cached (it may be the transaction's own change): on a
 * connection of its own the read would wait for the pool while the transaction holds its locks,
 * and the requests holding the pool's other connections may be waiting on those locks.
 */
export async function fetchFresh<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(cache: LRUCache<K, V>, key: K, inTx?: () => Promise<V | undefined>): Promise<V | undefined> {
  // A hit (every stanza's blocklist check, mostly) costs a Map lookup, as before.
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  if (inTx) return inTx();
  for (let attempt = 1; ; attempt++) {
    const status: LRUCache.Status<K, V> = {};
    try {
      return await cache.fetch(key, { status });
    } catch (err) {
      // A miss that joined another's read in flight (status "inflight") gets that read's abort as
      // its error, and lru-cache marks fetchAborted on the status of the one that started it only:
      // it reads again as well (if that read failed otherwise, its own attempt reports it).
      if (!(status.fetchAborted || status.fetch === "inflight")) throw err;
      // Invalidated again at every attempt (a burst of changes to the key, each read slow): read
      // once more past the cache, after the latest change, rather than fail the caller with an abort.
      if (attempt >= ATTEMPTS) return (await cache.fetchMethod!(key, undefined, { signal: new AbortController().signal, options: {}, context: undefined })) ?? undefined;
    }
  }
}
