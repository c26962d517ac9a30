// Outbound messages are their own outbox: a row is `queued` from its insert (before the 202)
// until the XMPP server confirmed it, then `sent`. Claimed with FOR UPDATE SKIP LOCKED, so
// several gateway instances never drain the same message twice.
import type pg from "pg";
import type { OutboundMessage } from "../domain/message.js";
import type { Tx } from "./client.js";
import { toOutbound } from "./messages.js";

const MARK_SENT = `UPDATE message SET status = 'sent', updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'queued'`;

/** Queued outbound messages in send order, locked for the caller's transaction. */
export async function claimQueued(tx: Tx, olderThan: Date | null, limit: number): Promise<OutboundMessage[]> {
  const rows = await tx.$queryRaw<Parameters<typeof toOutbound>[0][]>`
    SELECT id::text, "from", "to", type, body, subject, thread, lang, receipt, state FROM message
    WHERE status = 'queued' AND direction = 'out' AND created_at < ${olderThan ?? new Date(Date.now() + 60_000)}
    ORDER BY seq LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
  return rows.map(toOutbound);
}

/** Messages that can never be sent (malformed, over the stanza limit) fail instead of blocking the queue. */
export async function markUnsendable(tx: Tx, ids: string[], error: object): Promise<void> {
  await tx.$executeRaw`UPDATE message SET status = 'failed', error = ${JSON.stringify(error)}::jsonb, updated_at = now() WHERE id = ANY(${ids}::uuid[])`;
}

/** Records messages as sent once the server confirmed them (in the drain's transaction, or on its own). */
export async function markSent(db: Tx | pg.Pool, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  if ("query" in db) await db.query(MARK_SENT, [ids]);
  else await db.$executeRawUnsafe(MARK_SENT, ids);
}
