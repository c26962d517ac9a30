// The outbound queue the link holder drains: outbound messages (a `message` row is `queued` from
// its insert until the XMPP server confirmed it) and every other stanza (`outbox` rows, recorded
// in the transaction of the state change that caused them, deleted once confirmed). Both share one
// sequence, so the link writes them in the order they were recorded. Rows are claimed with
// FOR UPDATE SKIP LOCKED, and a claim can be fenced by the link lease (src/db/lease.ts), so no
// two instances ever send the same row.
import type pg from "pg";
import type { OutboundMessage } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import type { Tx } from "./client.js";
import { toOutbound } from "./messages.js";
import { CHANNELS, notify } from "./notify.js";

const MARK_SENT = `UPDATE message SET status = 'sent', updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'queued'`;

export type Queued = { seq: number; message: OutboundMessage; stanza?: never } | { seq: number; stanza: Stanza; message?: never };

/** Records stanzas to send once the transaction commits, and wakes the link holder. */
export async function enqueue(tx: Tx, accountId: number | null, stanzas: readonly Stanza[]): Promise<void> {
  if (stanzas.length === 0) return;
  await tx.$executeRaw`INSERT INTO outbox (account_id, stanza) SELECT ${accountId}, s FROM unnest(${stanzas.map((s) => JSON.stringify(s))}::json[]) WITH ORDINALITY AS u(s, n) ORDER BY n`;
  await notify(tx, CHANNELS.outbox);
}

/**
 * Claims up to `limit` queued rows, messages and stanzas merged in sequence order, locked for
 * the caller's transaction. With `fence` (the backend pid holding the link lease), claims
 * nothing unless that lease is still held, so a holder that lost it cannot send.
 */
export async function claim(tx: Tx, limit: number, fence: { key: [number, number]; pid: number } | null): Promise<Queued[]> {
  if (fence) {
    const held = await tx.$queryRaw<{ ok: boolean }[]>`
      SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = ${fence.key[0]}::int::oid
        AND objid = ${fence.key[1]}::int::oid AND objsubid = 2 AND pid = ${fence.pid} AND granted) AS ok`;
    if (!held[0]?.ok) return [];
  }
  const messages = await tx.$queryRaw<(Parameters<typeof toOutbound>[0] & { seq: number })[]>`
    SELECT seq, id::text, "from", "to", type, body, subject, thread, lang, receipt, state FROM message
    WHERE status = 'queued' AND direction = 'out' ORDER BY seq LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
  const stanzas = await tx.$queryRaw<{ seq: number; stanza: Stanza }[]>`SELECT seq, stanza FROM outbox ORDER BY seq LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
  const merged: Queued[] = [...messages.map((m) => ({ seq: Number(m.seq), message: toOutbound(m) })), ...stanzas.map((s) => ({ seq: Number(s.seq), stanza: s.stanza }))];
  merged.sort((a, b) => a.seq - b.seq);
  // Past the last row of a full list, the other list may be missing rows of lower seq: stop there.
  const horizon = Math.min(messages.length === limit ? Number(messages[limit - 1]!.seq) : Infinity, stanzas.length === limit ? Number(stanzas[limit - 1]!.seq) : Infinity);
  return merged.filter((q) => q.seq <= horizon);
}

/** Messages that can never be sent (malformed, over the stanza limit) fail instead of blocking the queue. */
export async function markUnsendable(tx: Tx, ids: string[], error: object): Promise<void> {
  if (ids.length) await tx.$executeRaw`UPDATE message SET status = 'failed', error = ${JSON.stringify(error)}::jsonb, updated_at = now() WHERE id = ANY(${ids}::uuid[])`;
}

/** Confirmed by the XMPP server: messages become `sent`, stanza rows go. */
export async function markSent(db: Tx | pg.Pool, messageIds: string[], stanzaSeqs: number[] = []): Promise<void> {
  if (messageIds.length) {
    if ("query" in db) await db.query(MARK_SENT, [messageIds]);
    else await db.$executeRawUnsafe(MARK_SENT, messageIds);
  }
  if (stanzaSeqs.length) {
    if ("query" in db) await db.query("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [stanzaSeqs]);
    else await db.$executeRaw`DELETE FROM outbox WHERE seq = ANY(${stanzaSeqs}::bigint[])`;
  }
}

/** Wakes the link holder for rows committed outside `enqueue` (messages inserted by this instance). */
export async function wakeHolder(pool: pg.Pool): Promise<void> {
  await pool.query("SELECT pg_notify($1, '')", [CHANNELS.outbox]);
}
