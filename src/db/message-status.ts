// How an outbound message's status is stored and read. Sending a message does not write its row:
// the drain and the direct path only take its entry out of the message queue (src/db/outbox.ts),
// so each message is written once on the hot path, not inserted and then updated (a second heap
// version per message, ~14 us of PostgreSQL CPU each: bench/outbound-writes.ts). The column therefore stays
// `queued` until something else changes it (a receipt, an error, the room's reflection), and
// readers derive the rest: `queued` while the queue entry exists, and once it is gone `sent` (a
// group message `written`, until its room reflects it: XEP-0045 §7.4, src/db/rooms.ts).
import type pg from "pg";

/** The stored status `queued` of a message whose queue entry is gone, as read. */
const SENT = (m: string) => `CASE WHEN ${m}.type = 'groupchat' THEN 'written'::"MessageStatus" ELSE 'sent'::"MessageStatus" END`;

/** A message's status as read, for SQL over message rows aliased `m` (a column expression). */
export const statusSql = (m: string) =>
  `CASE WHEN ${m}.status = 'queued' AND NOT EXISTS (SELECT 1 FROM message_queue q WHERE q.seq = ${m}.seq) THEN ${SENT(m)} ELSE ${m}.status END`;

interface StatusRow {
  id: string;
  status: string;
  error?: unknown;
}

/**
 * The same for rows read through Prisma: one statement for all their `queued` ones. It reads the
 * error with the status: a failure recorded since the row was read shows with its error.
 */
export async function resolveStatuses<R extends StatusRow>(pool: pg.Pool, rows: R[]): Promise<R[]> {
  const queued = rows.filter((r) => r.status === "queued");
  if (queued.length === 0) return rows;
  const { rows: read } = await pool.query<{ id: string; status: string; error: unknown }>({
    name: "message-status-as-read",
    text: `SELECT m.id::text, ${statusSql("m")} AS status, m.error FROM message m WHERE m.id = ANY($1::uuid[])`,
    values: [queued.map((r) => r.id)],
  });
  const now = new Map(read.map((r) => [r.id, r]));
  for (const r of queued as StatusRow[]) {
    const n = now.get(r.id);
    if (!n) continue;
    r.status = n.status;
    if ("error" in r) r.error = n.error;
  }
  return rows;
}
