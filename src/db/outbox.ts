// The outbound queue the link holder drains: outbound messages (a `message_queue` row from the
// message's insert until the XMPP server confirmed it) and every other stanza (`outbox` rows,
// recorded in the transaction of the state change that caused them, deleted once confirmed). Both
// share one sequence, so the link writes them in the order they were recorded. Rows are claimed
// with FOR UPDATE SKIP LOCKED, and a claim can be fenced by the link lease (src/db/lease.ts), so no
// two instances ever send the same row; unfenced claims (every instance holds a link) take turns.
// Both tables stay small: the holder vacuums them (tidyQueue), so finding what is queued never
// walks the history of what was sent.
import type pg from "pg";
import type { OutboundMessage } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import { event } from "../domain/events.js";
import { asSqlTx, exec, pgTransaction, type AnyTx } from "./client.js";
import { appendEvents } from "./events.js";
import { markSentCtes, queuedAhead, toOutbound } from "./messages.js";
import { CHANNELS } from "./notify.js";
import { drainAppName } from "./lease.js";
import { claimSql, FENCED, type Claimed } from "./outbox-claim.js";

const MARK_SENT = `WITH ${markSentCtes("$1")} SELECT 1`;
/** The advisory lock unfenced drains take in turn (beside the link lease's, src/db/lease.ts). */
const DRAIN_TURN_KEY: [number, number] = [0x42a1c0, 0x11c5];

export type Queued = { seq: number; message: OutboundMessage; stanza?: never } | { seq: number; stanza: Stanza; message?: never };

/**
 * A run of stanzas that differ only in their recipient (a presence broadcast to every subscriber)
 * is stored as one row, `{fanout: <stanza without to>, to: [...]}`, and expanded when drained:
 * a change of presence to 5,000 subscribers is one row to insert, lock and delete, not 5,000.
 */
export type OutboxRow = Stanza | { fanout: Omit<Stanza, "to">; to: string[] };

/** A row of the drain's claim (claimSql): a claimed queue row, or an outbox row (`stanza`, the rest null). */
type ClaimedRow = Claimed & { stanza: OutboxRow | null };

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

/** The CTE `i` that inserts the outbox rows of `rows` (compress's JSON array) for `account`, in their order (parameter names). */
const insertRows = (account: string, rows: string, where = "") =>
  `i AS (INSERT INTO outbox (account_id, stanza) SELECT ${account}::int, s FROM json_array_elements(${rows}::json) WITH ORDINALITY AS u(s, n) ${where} ORDER BY n)`;

/** Records stanzas to send once the transaction commits, and wakes the link holder; the NOTIFY names `origin` (one statement). */
export async function enqueue(tx: AnyTx, accountId: number | null, stanzas: readonly Stanza[], origin = ""): Promise<void> {
  if (stanzas.length === 0) return;
  // One JSON array parameter: pg's encoding of a json[] array escapes every element again.
  await exec(
    tx,
    `WITH ${insertRows("$1", "$2")} SELECT pg_notify($3, $4)`,
    [accountId, JSON.stringify(compress(stanzas)), CHANNELS.outbox, origin],
  );
}

/**
 * enqueue as part of another statement, for a use case whose whole change is that one statement
 * (no transaction: one round trip): the stanzas are recorded, and the NOTIFY sent, only if `gate`
 * (a CTE of that statement) has a row. `cte` goes among its CTEs, `notify` into its final SELECT
 * over `gate`; `values` are its parameters from `$first` on.
 */
export function enqueueIf(gate: string, first: number, accountId: number | null, stanzas: readonly Stanza[], origin: string): { cte: string; notify: string; values: unknown[] } {
  const [a, b, c, d] = [first, first + 1, first + 2, first + 3];
  return {
    cte: insertRows(`$${a}`, `$${b}`, `WHERE EXISTS (SELECT 1 FROM ${gate})`),
    notify: `pg_notify($${c}, $${d})`,
    values: [accountId, JSON.stringify(compress(stanzas)), CHANNELS.outbox, origin],
  };
}

/**
 * How far below the shared sequence a stanza recorded ahead is numbered (enqueueAhead): 2^52, more
 * than the sequence will ever hand out (4.5e15 rows), and small enough that every number stays
 * exact as a JavaScript number (drainOnce compares and deletes by Number(seq)).
 */
const AHEAD = 2 ** 52;

/**
 * Records stanzas that go out before everything queued, whenever it was recorded, while keeping
 * their own order (among themselves, and after what was recorded ahead before them): a number
 * from the shared sequence, shifted below all of its numbers. For the link holder's rejoin of its
 * rooms after a reconnect (src/services/rooms.ts rejoin): the group messages, subject changes and
 * invitations that waited for the link need the account to be an occupant again (XEP-0045 §7.4,
 * §8.1), and the server processes a connection's stanzas in order (RFC 6120 §10.1).
 */
export async function enqueueAhead(tx: AnyTx, accountId: number | null, stanzas: readonly Stanza[]): Promise<void> {
  if (stanzas.length === 0) return;
  // The inner ORDER BY comes first: nextval() runs on the rows in the stanzas' order. The NOTIFY names no instance (the rejoin kicks no drain: ours must hear it too).
  await exec(
    tx,
    `WITH i AS (INSERT INTO outbox (seq, account_id, stanza) SELECT nextval('message_seq_seq') - ${AHEAD}, $1::int, s
       FROM (SELECT s FROM json_array_elements($2::json) WITH ORDINALITY AS u(s, n) ORDER BY n) ordered)
     SELECT pg_notify($3, '')`,
    [accountId, JSON.stringify(compress(stanzas)), CHANNELS.outbox],
  );
}

/** What the sender made of a claimed batch, recorded in the claim's transaction. */
export interface DrainOutcome {
  /** Messages that can never be sent (malformed, over the stanza limit): failed with `error`. */
  failed: string[];
  error: { type: string; condition: string; text?: string };
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
 * lost it cannot send. Without (XMPP_LINK_MODE=all), waits for any other instance's drain step to
 * end first: one skipping the rows another holds would write the rows behind them on its own link,
 * where the server may route them first (or before a batch the other rolls back); PostgreSQL ends
 * a step idle for `idleLimitMs` (0: never), so one that hung does not stop the others for good.
 * `more`: rows may be left behind this batch. `unconfirmed`: the messages
 * this holder wrote whose confirmation never came (the link dropped): the peer may have them, so
 * nothing recorded about them is moot (see MOOT), and a retracted one leaves the queue unsent but
 * not withdrawn (it reads `sent`), its retraction behind it. Those the claim settles leave the set.
 */
export async function drainOnce(
  pool: pg.Pool,
  limit: number,
  fence: { key: [number, number]; pid: number } | null,
  send: (rows: Queued[]) => Promise<DrainOutcome | null>,
  unconfirmed: Set<string> = new Set(),
  idleLimitMs = 0,
): Promise<{ claimed: number; more: boolean }> {
  const settledIds: string[] = [];
  const step = await pgTransaction(pool, async (client) => {
    if (!fence) {
      // An instance that hangs inside its step (SIGSTOP, a stuck event loop) would keep the turn,
      // and every other instance's drain waiting, until it resumed: PostgreSQL ends the
      // transaction (and its session) once it sits idle for `idleLimitMs`; the rows go back. The
      // turn is taken before the claim's snapshot, in a statement of its own.
      await client.query({
        name: "outbox-drain-turn",
        text: "SELECT pg_advisory_xact_lock($1, $2), set_config('idle_in_transaction_session_timeout', $3, true)",
        values: [...DRAIN_TURN_KEY, String(idleLimitMs)],
      });
    }
    // The lease check and both claims are one statement (one round trip, not three). Fenced, the
    // transaction names itself after the lease (until it ends), so a standby replacing a holder
    // that hung mid-drain ends it too and frees the rows it claimed (src/db/lease.ts); a claim
    // whose lease is gone locks nothing and reads as an empty queue.
    const { rows: claimed } = await client.query<ClaimedRow>(
      fence
        ? { name: "outbox-claim-fenced", text: claimSql(FENCED), values: [limit, fence.key[0], fence.key[1], fence.pid, drainAppName(fence.pid)] }
        : { name: "outbox-claim", text: claimSql("SELECT true AS ok"), values: [limit] },
    );
    const bySeq = (x: { seq: number }, y: { seq: number }) => Number(x.seq) - Number(y.seq);
    const messages = claimed.filter((r) => r.stanza === null).sort(bySeq);
    const stanzas = claimed.filter((r): r is ClaimedRow & { stanza: OutboxRow } => r.stanza !== null).sort(bySeq);
    // Past the last row of a full list, the other list may be missing rows of lower seq: stop there.
    const full = (n: number, last: number | undefined) => (n === limit && last !== undefined ? Number(last) : Infinity);
    const horizon = Math.min(full(messages.length, messages[limit - 1]?.seq), full(stanzas.length, stanzas[limit - 1]?.seq));
    const more = horizon !== Infinity || messages.length === limit || stanzas.length === limit;
    const reached = messages.filter((m) => Number(m.seq) <= horizon);
    const queued = reached.filter((m) => m.status === "queued");
    const unseen = queued.filter((m) => !unconfirmed.has(m.id));
    const withdrawn = unseen.filter((m) => m.retracted).map((m) => ({ seq: m.seq, id: m.id }));
    const moot = new Set(unseen.flatMap((m) => (m.moot ?? []).map(Number)));
    const merged: Queued[] = [
      ...queued.filter((m) => !m.retracted).map((m) => ({ seq: Number(m.seq), message: toOutbound(m) })),
      ...stanzas.filter((r) => !moot.has(Number(r.seq))).flatMap((r) => outboxStanzas(r.stanza).map((stanza) => ({ seq: Number(r.seq), stanza }))),
    ];
    merged.sort((x, y) => x.seq - y.seq);
    const rows = merged.filter((q) => q.seq <= horizon);
    const unsendable = reached.filter((m) => m.status !== "queued" || (m.retracted && unconfirmed.has(m.id))).map((m) => m.seq);
    const settled = unsendable.length + withdrawn.length + moot.size;
    settledIds.push(...reached.map((m) => m.id));
    if (rows.length === 0) {
      await settle(client, unsendable, withdrawn, moot);
      return { claimed: settled, more: more && settled > 0 };
    }
    const outcome = await send(rows);
    if (!outcome) {
      settledIds.length = 0;
      return { claimed: 0, more: false };
    }
    // Every claimed message is done with: sent (its row reads `sent` once out of the queue,
    // src/db/message-status.ts), failed, withdrawn or no longer sendable.
    await settle(client, [...unsendable, ...rows.filter((q) => q.message).map((q) => q.seq)], withdrawn, moot);
    // A delivery failure is a change the account hears about (API.md "Model"), as an error stanza's is.
    if (outcome.failed.length) await fail(client, outcome.failed, outcome.error);
    if (outcome.done.length) await client.query({ name: "outbox-done", text: "DELETE FROM outbox WHERE seq = ANY($1::bigint[])", values: [outcome.done] });
    return { claimed: rows.length + settled, more };
  });
  for (const id of settledIds) unconfirmed.delete(id);
  return step;
}

/**
 * What a queued message reads when it was retracted before it went out: `failed` (it never reached
 * the peer, and never will) with this error (RFC 6120 §8.3.3.21: none of the defined conditions;
 * `cancel`: do not retry). Its view keeps the tombstone (`retracted`).
 */
export const WITHDRAWN = { type: "cancel", condition: "undefined-condition", text: "retracted while queued: withdrawn, never sent to the peer" };

/**
 * Records a claim's outcome for the rows not written: takes `seqs` and the withdrawn messages out
 * of the queue, drops the moot stanzas (those of this batch are locked by the claim; later ones
 * are not claimed by anyone else, the claims being fenced or taking turns), and fails the
 * withdrawn messages.
 */
async function settle(client: pg.PoolClient, seqs: (number | string)[], withdrawn: { seq: number; id: string }[], moot: Set<number>): Promise<void> {
  const dequeued = [...seqs, ...withdrawn.map((m) => m.seq)];
  if (dequeued.length) await dequeue(client, dequeued);
  if (moot.size) await client.query("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [[...moot]]);
  if (withdrawn.length) await fail(client, withdrawn.map((m) => m.id), WITHDRAWN);
}

/** Marks messages failed, each with a `message-status` event for its account. */
async function fail(client: pg.PoolClient, ids: string[], error: DrainOutcome["error"]): Promise<void> {
  const { rows: failed } = await client.query<{ id: string; account_id: number }>(
    `UPDATE message SET status = 'failed', error = $2::jsonb, updated_at = now() WHERE id = ANY($1::uuid[]) RETURNING id::text, account_id`,
    [ids, JSON.stringify(error)],
  );
  await appendEvents(asSqlTx(client), failed.map((m) => ({ accountId: m.account_id, ...event("message-status", { id: m.id, status: "failed", error }) })));
}

function dequeue(client: pg.PoolClient, seqs: (number | string)[]): Promise<unknown> {
  return client.query({ name: "outbox-dequeue", text: "DELETE FROM message_queue WHERE seq = ANY($1::bigint[])", values: [seqs] });
}

/** Wakes the link holder for rows committed outside `enqueue` (messages inserted by this instance). */
export async function wakeHolder(pool: pg.Pool): Promise<void> {
  await pool.query("SELECT pg_notify($1, '')", [CHANNELS.outbox]);
}

/** Takes messages the XMPP server confirmed out of the queue (those the link holder wrote without a claim). */
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

/**
 * Vacuums the two queue tables. Each confirmed row leaves a dead version there until VACUUM, and
 * every claim and check of what is queued would step over them; autovacuum may come late (after
 * a fifth of a table has changed) or not at all. Both tables hold only what waits for the link,
 * so this takes milliseconds. It never truncates them (migration 20261202160000): that needs a
 * lock no insert may hold, so it would wait for the senders, and they for it while it held it. (VACUUM
 * skips, with a warning, a table the role does not own.)
 *
 * Where autovacuum is off, it also analyzes the tables that changed by a tenth since their last
 * ANALYZE (autovacuum's own rule): the hot statements are prepared once per connection, and
 * PostgreSQL replans them only when statistics change, so a plan made on an empty table (a seq
 * scan of `message` to find a message by id) would otherwise stay however large the table grows.
 */
export async function tidyQueue(pool: pg.Pool): Promise<void> {
  await pool.query("VACUUM message_queue, outbox");
  const { rows } = await pool.query<{ name: string }>(
    `SELECT quote_ident(relname) AS name FROM pg_stat_user_tables
     WHERE schemaname = current_schema() AND current_setting('autovacuum') = 'off' AND n_mod_since_analyze > 50 + 0.1 * n_live_tup`,
  );
  if (rows.length > 0) await pool.query(`ANALYZE ${rows.map((r) => r.name).join(", ")}`);
}
