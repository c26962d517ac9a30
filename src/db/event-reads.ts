// Reading an account's event log (src/db/events.ts appends to it): pages after a cursor, and where
// a reader resumes. Events of one account commit in sequence order, so a reader that has seen N has
// seen everything below N.
import type pg from "pg";
import { PAGE_BYTES } from "../domain/page.js";
import { STORED_COLUMNS, type StoredEvent } from "./events.js";

/**
 * An account's events after `after`, oldest first, at most `limit` and PAGE_BYTES of data; with
 * `resource`, only those for all sessions or that one. `more`: the read may have stopped short of
 * what it could see (`limit` events, or events that came to PAGE_BYTES): read again after the last.
 * Raw pg and a named (prepared) statement: streams read this after every append, and Prisma's
 * query path was ~14% of the gateway's CPU on the inbound benchmark (its findMany cost ~1.6x its
 * $queryRaw before that). The data comes as JSON text, parsed here as pg's jsonb parser would:
 * converted once, above the LIMIT (OFFSET 0 keeps PostgreSQL from merging the levels, which would
 * convert it again for each use, or for every row a sort below the LIMIT reads).
 */
export async function readEvents(pool: pg.Pool, accountId: number, after: number, limit: number, resource: string | null, maxBytes = PAGE_BYTES): Promise<{ events: StoredEvent[]; more: boolean }> {
  const { rows } = await pool.query<StoredEvent & { upto: number }>({
    name: "read-events",
    text: `SELECT p.seq, p.type, p.resource, p.data, p."createdAt", p."receiptTo", p."receiptId", p."receiptSent", p.upto FROM (
             SELECT t.*, sum(octet_length(t.data)) OVER (ORDER BY t.seq ROWS UNBOUNDED PRECEDING) AS upto FROM (
               SELECT r.seq, r.type, r.resource, r.data::text AS data, r."createdAt", r."receiptTo", r."receiptId", r."receiptSent" FROM (
                 SELECT ${STORED_COLUMNS} FROM event
                 WHERE account_id = $1 AND seq > $2::bigint AND ($3::text IS NULL OR resource IS NULL OR resource = $3::text)
                 ORDER BY seq LIMIT $4::int
               ) r OFFSET 0
             ) t
           ) p WHERE p.upto - octet_length(p.data) < $5`,
    values: [accountId, after, resource, limit, maxBytes],
  });
  // In place (each row also keeps its running size, `upto`): a copy of each row cost more than its parse.
  for (const r of rows) r.data = JSON.parse(r.data as string) as unknown;
  // Cut by its size, the last event read brought the data to maxBytes (at worst a read more, when it
  // was the head's).
  return { events: rows, more: rows.length === limit || Number(rows.at(-1)?.upto ?? 0) >= maxBytes };
}

/** Where a reader resumes: after `after`, with a `resync` first when it missed events; `gone`: no such account (a stale id). */
export interface ReplayStart {
  resync: boolean;
  /** The resync's cause: the cursor is past the head, a position in a log that is gone (see replayStarts). */
  beyond?: boolean;
  after: number;
  gone: boolean;
  /** The log's head as this read saw it: every event up to it had committed (events commit in seq order). */
  head: number;
}

/**
 * Where each reader resumes the log after its cursor `after` (API.md Events): a cursor whose next
 * event is gone (purged) or older than `retentionMs` (EVENT_RETENTION: treated as gone whether or not
 * the purge, which runs every MAINTENANCE_INTERVAL, has removed it yet) gets a `resync` and resumes
 * before the first event inside the window (after the head if there is none). A cursor at the
 * head, or whose next event is present and inside the window, resumes where it is. One past the
 * head names no event of this log: it came from a log that is gone (the account's, deleted and
 * made again under its name; a database restored from before it), so it gets a resync too, and
 * resumes before the log's first event inside the window: going on from the head skipped every
 * event of the new log up to it.
 *
 * One statement per batch, so each row's head and events come from one snapshot: read separately, a
 * reader could see the head of a transaction that just committed but not its event, and skip that
 * event behind a spurious resync. Cost: the next event is one probe of the primary key
 * (account_id, seq); only a reader that resyncs walks the key past the expired events (at most a
 * maintenance interval's worth, plus what webhooks hold back) to the first one inside the window.
 */
export async function replayStarts(pool: pg.Pool, items: { accountId: number; after: number }[], retentionMs: number): Promise<ReplayStart[]> {
  if (items.length === 0) return [];
  const { rows } = await pool.query<{ from: number | null; head: number | string | null; beyond: boolean | null }>({
    name: "replay-starts",
    // The window by the database's clock, which stamped created_at (UTC, as the column is: see
    // client.ts). CASE evaluates the correlated subquery only for the rows that resync.
    text: `SELECT CASE WHEN v.after > a.last_seq OR (v.after < a.last_seq AND (nx.seq IS NULL OR nx.seq > v.after + 1 OR nx.created_at < k.since)) THEN
             coalesce((SELECT e.seq FROM event e WHERE e.account_id = v.account_id AND e.seq > CASE WHEN v.after > a.last_seq THEN 0 ELSE v.after END
                       AND e.created_at >= k.since ORDER BY e.seq LIMIT 1), a.last_seq + 1) - 1
           END AS "from", a.last_seq AS head, v.after > a.last_seq AS beyond
           FROM unnest($1::int[], $2::bigint[]) WITH ORDINALITY AS v(account_id, after, ord)
           CROSS JOIN (SELECT localtimestamp - $3::float8 * interval '1 millisecond' AS since) k
           LEFT JOIN account a ON a.id = v.account_id
           LEFT JOIN LATERAL (SELECT e.seq, e.created_at FROM event e WHERE e.account_id = v.account_id AND e.seq > v.after ORDER BY e.seq LIMIT 1) nx ON true
           ORDER BY v.ord`,
    values: [items.map((i) => i.accountId), items.map((i) => i.after), retentionMs],
  });
  return items.map((i, k) => {
    const { from, head, beyond } = rows[k] ?? {};
    if (from == null) return { resync: false, after: i.after, gone: head == null, head: Number(head ?? 0) };
    return { resync: true, ...(beyond ? { beyond: true } : {}), after: from, gone: false, head: Number(head) };
  });
}
