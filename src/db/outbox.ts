// The outbound queue the link holder drains: outbound messages (a `message` row is `queued` from
// its insert until the XMPP server confirmed it) and every other stanza (`outbox` rows, recorded
// in the transaction of the state change that caused them, deleted once confirmed). Both share one
// sequence, so the link writes them in the order they were recorded. Rows are claimed with
// FOR UPDATE SKIP LOCKED, and a claim can be fenced by the link lease (src/db/lease.ts), so no
// two instances ever send the same row.
import type pg from "pg";
import type { OutboundMessage } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import { exec, pgTransaction, type AnyTx } from "./client.js";
import { queuedAhead, SENT_STATUS, toOutbound } from "./messages.js";
import { CHANNELS, notify } from "./notify.js";

const MARK_SENT = `UPDATE message SET status = ${SENT_STATUS}, updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'queued'`;

export type Queued = { seq: number; message: OutboundMessage; stanza?: never } | { seq: number; stanza: Stanza; message?: never };

/**
 * A run of stanzas that differ only in their recipient (a presence broadcast to every subscriber)
 * is stored as one row, `{fanout: <stanza without to>, to: [...]}`, and expanded when drained:
 * a change of presence to 5,000 subscribers is one row to insert, lock and delete, not 5,000.
 */
export type OutboxRow = Stanza | { fanout: Omit<Stanza, "to">; to: string[] };

function compress(stanzas: readonly Stanza[]): OutboxRow[] {
  const rows: { key: string | null; row: OutboxRow }[] = [];
  for (const s of stanzas) {
    if (s.kind === "error") {
      rows.push({ key: null, row: s });
      continue;
    }
    const { to, ...rest } = s;
    const key = JSON.stringify(rest);
    const last = rows[rows.length - 1];
    if (last && last.key === key) {
      const row = last.row;
      if ("fanout" in row) row.to.push(to);
      else last.row = { fanout: rest as Omit<Stanza, "to">, to: [(row as { to: string }).to, to] };
    } else rows.push({ key, row: s });
  }
  return rows.map((r) => r.row);
}

/** The stanzas an outbox row stands for, in order. */
export function outboxStanzas(row: OutboxRow): Stanza[] {
  if (!("fanout" in row)) return [row];
  return row.to.map((to) => ({ ...row.fanout, to }) as Stanza);
}

/** Records stanzas to send once the transaction commits, and wakes the link holder. */
export async function enqueue(tx: AnyTx, accountId: number | null, stanzas: readonly Stanza[]): Promise<void> {
  if (stanzas.length === 0) return;
  // One JSON array parameter: pg's encoding of a json[] array escapes every element again.
  await exec(tx, "INSERT INTO outbox (account_id, stanza) SELECT $1::int, s FROM json_array_elements($2::json) WITH ORDINALITY AS u(s, n) ORDER BY n", [accountId, JSON.stringify(compress(stanzas))]);
  await notify(tx, CHANNELS.outbox);
}

/** What the sender made of a claimed batch, recorded in the claim's transaction. */
export interface DrainOutcome {
  /** Messages the server confirmed. */
  sent: string[];
  /** Messages that can never be sent (malformed, over the stanza limit): failed with `error`. */
  failed: string[];
  error: object;
  /** Outbox rows done with (confirmed, or refused and dropped). */
  done: number[];
}

/**
 * One drain step, on a pooled connection in a transaction of its own (raw pg: this is the hot
 * path, a few statements per batch). Claims up to `limit` queued rows, messages and stanzas
 * merged in sequence order, locked until commit; hands them to `send`, which writes them and
 * waits for the server's confirmation; records its outcome and commits (src/db/client.ts
 * pgTransaction). `send` answering null (nothing written) records nothing and throwing rolls
 * back: either way the rows stay queued. With `fence` (the backend
 * pid holding the link lease), claims nothing unless that lease is still held, so a holder that
 * lost it cannot send. `more`: rows may be left behind this batch.
 */
export async function drainOnce(
  pool: pg.Pool,
  limit: number,
  fence: { key: [number, number]; pid: number } | null,
  send: (rows: Queued[]) => Promise<DrainOutcome | null>,
): Promise<{ claimed: number; more: boolean }> {
  return pgTransaction(pool, async (client) => {
    if (fence) {
      const held = await client.query<{ ok: boolean }>({
        name: "outbox-fence",
        text: `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid
           AND objid = $2::int::oid AND objsubid = 2 AND pid = $3 AND granted) AS ok`,
        values: [fence.key[0], fence.key[1], fence.pid],
      });
      if (!held.rows[0]?.ok) return { claimed: 0, more: false };
    }
    const { rows: messages } = await client.query<Parameters<typeof toOutbound>[0] & { seq: number }>({
      name: "outbox-claim-messages",
      text: `SELECT seq, id::text, "from", "to", type, body, subject, thread, lang, receipt, state, ext FROM message
       WHERE status = 'queued' AND direction = 'out' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
      values: [limit],
    });
    const { rows: stanzas } = await client.query<{ seq: number; stanza: OutboxRow }>({
      name: "outbox-claim-stanzas",
      text: "SELECT seq, stanza FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
      values: [limit],
    });
    const merged: Queued[] = [...messages.map((m) => ({ seq: Number(m.seq), message: toOutbound(m) })), ...stanzas.flatMap((r) => outboxStanzas(r.stanza).map((stanza) => ({ seq: Number(r.seq), stanza })))];
    merged.sort((x, y) => x.seq - y.seq);
    // Past the last row of a full list, the other list may be missing rows of lower seq: stop there.
    const full = (n: number, last: number | undefined) => (n === limit && last !== undefined ? Number(last) : Infinity);
    const horizon = Math.min(full(messages.length, messages[limit - 1]?.seq), full(stanzas.length, stanzas[limit - 1]?.seq));
    const rows = merged.filter((q) => q.seq <= horizon);
    if (rows.length === 0) return { claimed: 0, more: false };
    const outcome = await send(rows);
    if (!outcome) return { claimed: 0, more: false };
    if (outcome.failed.length) {
      await client.query(`UPDATE message SET status = 'failed', error = $2::jsonb, updated_at = now() WHERE id = ANY($1::uuid[])`, [outcome.failed, JSON.stringify(outcome.error)]);
    }
    if (outcome.sent.length) await client.query({ name: "outbox-mark-sent", text: MARK_SENT, values: [outcome.sent] });
    if (outcome.done.length) await client.query({ name: "outbox-done", text: "DELETE FROM outbox WHERE seq = ANY($1::bigint[])", values: [outcome.done] });
    return { claimed: rows.length, more: horizon !== Infinity || messages.length === limit || stanzas.length === limit };
  });
}

/** Wakes the link holder for rows committed outside `enqueue` (messages inserted by this instance). */
export async function wakeHolder(pool: pg.Pool): Promise<void> {
  await pool.query("SELECT pg_notify($1, '')", [CHANNELS.outbox]);
}

/** Records messages the XMPP server confirmed as sent (those the link holder wrote without a claim). */
export async function markSent(pool: pg.Pool, ids: string[]): Promise<void> {
  if (ids.length > 0) await pool.query({ name: "outbox-mark-sent", text: MARK_SENT, values: [ids] });
}

/**
 * What waits for the link, for the holder's periodic check: outbound messages still queued
 * (counted up to `limit`) and whether any stanza is in the outbox.
 */
export async function queuedCounts(pool: pg.Pool, limit: number): Promise<{ queued: number; other: boolean }> {
  const { rows } = await pool.query<{ queued: number; outbox: boolean }>({ name: "outbox-queued-counts", text: `SELECT ${queuedAhead("$1")}`, values: [limit] });
  return { queued: rows[0]!.queued, other: rows[0]!.outbox };
}
