// Blocklists (XEP-0191). Every inbound stanza is checked against its account's list, so lists are
// cached in-process and every instance forgets a list when any instance changes it (NOTIFY on the
// cache channel, sent in the changing transaction); the row in Postgres is the truth, and the
// statement that stores what an inbound stanza brings checks it again (blockCovers,
// src/db/inbound-writes.ts): a cache that has not heard of a block yet lets nothing through. One
// that has not heard of an unblock drops nothing the committed list lets through: a stanza it
// blocks is dropped only after list() in the inbound transaction agrees (src/services/inbound.ts),
// and an iq refused, a receipt settled unsent, a room left at a rejoin or a send refused 400 only
// after list() agrees (src/services/blocking.ts confirmBlocks, assertNotBlocked).
import { LRUCache } from "lru-cache";
import { fetchFresh } from "./cached-read.js";
import { sql, type AnyTx, type Db } from "./client.js";
import { CHANNELS, notify, type Notifications } from "./notify.js";

const PREFIX = "block:";

/**
 * SQL: whether account `account`'s blocklist covers the JID `jid` (SQL expressions; `jid` in its
 * normal form, src/domain/jid.ts jidToString), by XEP-0191 §3 matching as src/domain/blocking.ts
 * isBlocked: an item that is the JID itself (a full JID item covers that resource, a
 * `domain/resource` item that address), its bare JID (any resource of it), its domain or a parent
 * domain. A JID has no `/` before its resource and no `@` in its bare part but the one after its local part.
 */
export const blockCovers = (account: string, jid: string) => {
  const bareJid = `split_part(${jid}, '/', 1)`;
  const domain = `split_part(${bareJid}, '@', -1)`;
  return `EXISTS (SELECT 1 FROM block b WHERE b.account_id = ${account} AND (b.jid = ${jid} OR b.jid = ${bareJid}
     OR b.jid = ${domain} OR right(${domain}, length(b.jid) + 1) = '.' || b.jid))`;
};

/**
 * SQL: roster item `alias`.jid (a bare JID) is not covered by any of its account's blocklist items.
 * Presence to and probes of a blocked contact stop with it.
 */
export const notBlocked = (alias: string) => `NOT ${blockCovers(`${alias}.account_id`, `${alias}.jid`)}`;

/**
 * A statement that stores what an inbound stanza brings found that a committed block covers its
 * sender, though this instance's cached list did not (its NOTIFY had not come yet): it stored
 * nothing. The caller forgets these accounts' lists and routes the stanzas again.
 */
export class StaleBlocklist extends Error {
  constructor(readonly accounts: readonly number[]) {
    super(`a blocklist changed before this instance heard of it (accounts ${accounts.join(", ")})`);
  }
}

export class Blocklists {
  /** Account id -> its items; empty sets are cached too (most accounts block no one). */
  private readonly cache: LRUCache<number, ReadonlySet<string>>;

  constructor(db: Db) {
    this.cache = new LRUCache<number, ReadonlySet<string>>({ max: 50_000, ttl: 60_000, fetchMethod: async (accountId) => new Set(await this.list(db, accountId)) });
  }

  listen(notifications: Notifications): void {
    notifications.on(CHANNELS.cache, (payload) => {
      if (payload === null) this.cache.clear();
      else if (payload.startsWith(PREFIX)) this.cache.delete(Number(payload.slice(PREFIX.length)));
    });
  }

  /** The account's items, for the checks on every stanza. */
  async of(accountId: number, tx?: AnyTx): Promise<ReadonlySet<string>> {
    return (await fetchFresh(this.cache, accountId, tx && (async () => new Set(await this.list(tx, accountId)))))!;
  }

  async list(tx: AnyTx, accountId: number): Promise<string[]> {
    const rows = await sql<{ jid: string }>(tx, "SELECT jid FROM block WHERE account_id = $1 ORDER BY jid", [accountId]);
    return rows.map((r) => r.jid);
  }

  /** Adds an item unless the list already has `max` items; false when it was there already. */
  async add(tx: AnyTx, accountId: number, jid: string, max: number): Promise<"added" | "present" | "full"> {
    const rows = await sql<{ added: boolean; present: boolean }>(
      tx,
      `WITH present AS (SELECT 1 FROM block WHERE account_id = $1 AND jid = $2),
            ins AS (INSERT INTO block (account_id, jid) SELECT $1, $2
                    WHERE NOT EXISTS (SELECT 1 FROM present) AND (SELECT count(*) FROM block WHERE account_id = $1) < $3 RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM ins) AS added, EXISTS (SELECT 1 FROM present) AS present`,
      [accountId, jid, max],
    );
    const r = rows[0]!;
    if (r.added) await this.changed(tx, accountId);
    return r.added ? "added" : r.present ? "present" : "full";
  }

  async remove(tx: AnyTx, accountId: number, jid: string): Promise<boolean> {
    const rows = await sql(tx, "DELETE FROM block WHERE account_id = $1 AND jid = $2 RETURNING 1", [accountId, jid]);
    if (rows.length > 0) await this.changed(tx, accountId);
    return rows.length > 0;
  }

  /** After the changing transaction commits: this instance forgets at once (others on the NOTIFY). */
  forget(accountId: number): void {
    this.cache.delete(accountId);
  }

  private async changed(tx: AnyTx, accountId: number): Promise<void> {
    await notify(tx, CHANNELS.cache, `${PREFIX}${accountId}`);
  }
}
