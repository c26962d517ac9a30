// fetchFresh (src/db/cached-read.ts) when the key is invalidated during every read: after its
// attempts it reads once more past the cache and answers, rather than fail the caller with the
// cache's abort (the concurrency audit saw that abort answered 500, under a burst of block changes
// while reads were slow). Pure: an in-memory "database" and a real lru-cache.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LRUCache } from "lru-cache";
import { fetchFresh } from "../../src/db/cached-read.js";

describe("fetchFresh under invalidations", () => {
  it("answers the latest value when every read through the cache is aborted", async () => {
    let value = 0;
    let reads = 0;
    const cache: LRUCache<string, { v: number }> = new LRUCache<string, { v: number }>({
      max: 10,
      fetchMethod: async () => {
        reads++;
        const read = { v: value };
        // A change committed while the read is in flight: its invalidation deletes the key (aborting the read).
        await new Promise((r) => setTimeout(r, 5));
        value++;
        cache.delete("k");
        return read;
      },
    });
    const got = await fetchFresh(cache, "k");
    assert.ok(got, "an answer, not the abort");
    assert.ok(reads >= 2, `read again after the aborts (${reads} reads)`);
    assert.equal(cache.get("k"), undefined, "the last read, past the cache, is not cached");
  });
});
