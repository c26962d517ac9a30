// A conversation's messages for GET /v1/messages?with= (src/services/messaging.ts history).
import type pg from "pg";
import { PAGE_BYTES } from "../domain/page.js";
import type { MessageRecord } from "../domain/views.js";
import { RECORD, saysSomething } from "./message-state.js";
import { cutBySize, sizeBounded } from "./size-bound.js";

/**
 * A conversation's messages (not its bare chat states), cursors being `seq` values: the `limit`
 * newest below `before` (or all), or with `after` the `limit` oldest above it (and below
 * `before`), so that a client paging forward misses none. Rows come in the order read, as many
 * as fit in PAGE_BYTES of JSON (body, subject, extensions, reactions, error) but always the first,
 * as the event log's reads do (src/db/size-bound.ts); `cut`: the size left out rows it read.
 */
export async function readHistory(pool: pg.Pool, accountId: number, peer: string, before: number | null, after: number | null, limit: number): Promise<{ rows: MessageRecord[]; cut: boolean }> {
  const values: unknown[] = [accountId, peer, limit, PAGE_BYTES];
  const bound = (op: string, v: number | null) => (v === null ? "" : `AND m.seq ${op} $${values.push(v)}::bigint`);
  const order = after === null ? "DESC" : "ASC";
  const size = ["body", "subject", "ext", "reactions", "error"].map((c) => `coalesce(octet_length(m.${c}::text), 0)`).join(" + ");
  // A retracted message keeps its place (a tombstone) though its body is gone.
  const { rows } = await pool.query<MessageRecord & { size: string; upto: string; read: string }>(
    sizeBounded(
      `SELECT ${RECORD("m")}, ${size} AS size FROM message m
       WHERE m.account_id = $1 AND m.peer = $2 ${bound("<", before)} ${bound(">", after)} AND (${saysSomething("m")} OR m.retracted_at IS NOT NULL)
       ORDER BY m.seq ${order} LIMIT $3`,
      order,
      "$4",
    ),
    values,
  );
  return { rows, cut: cutBySize(rows) };
}
