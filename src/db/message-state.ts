// What happens to a stored message after it was sent or received (API.md "Message features"):
// corrections, retractions, reactions, markers. Raw SQL that runs in either kind of transaction:
// the HTTP use cases (src/services/message-actions.ts) and the inbound path share it.
import { exec, sql, type AnyTx } from "./client.js";
import { statusSql } from "./message-status.js";
import { isMessageId } from "../domain/message.js";
import type { MessageRecord } from "../domain/views.js";

/** A message as the rules about changing it need it. */
export interface MessageState {
  id: string;
  accountId: number;
  direction: "in" | "out";
  peer: string;
  from: string;
  to: string;
  type: string;
  body: unknown;
  stanzaId: string | null;
  /**
   * XEP-0359: a peer's origin-id, where it differs from its stanza id (src/domain/message-features.ts
   * storedOriginId); of a group message (either direction), the stanza-id its room assigned.
   */
  originId: string | null;
  thread: string | null;
  subject: unknown;
  lang: string | null;
  receipt: boolean;
  state: string | null;
  ext: unknown;
  /** XEP-0444: {"<jid>": ["<emoji>", ...]} (null: none). */
  reactions: Record<string, string[]> | null;
  retractedAt: Date | null;
  editedAt: Date | null;
  createdAt: Date;
  status: string;
}

const STATE = `id::text, account_id AS "accountId", direction, peer, "from", "to", type, body, stanza_id AS "stanzaId", origin_id AS "originId", thread, subject, lang, receipt, state, ext, reactions,
  retracted_at AS "retractedAt", edited_at AS "editedAt", created_at AS "createdAt", ${statusSql("message")} AS status`;

/**
 * SQL: whether the message row `m` says something: a body, a subject or attachments. A chat state
 * alone (XEP-0085) is a notification, not a message: it is no conversation's latest message, not
 * in its history (inbound ones are not even stored: src/services/inbound-message.ts), and no
 * marker raises it (raiseMarkers).
 */
export const saysSomething = (m: string): string => `(${m}.body IS NOT NULL OR ${m}.subject IS NOT NULL OR ${m}.ext->'attachments' IS NOT NULL)`;

/** One of the account's messages, locked for the change (null: no such message of the account's). */
export async function lockMessage(tx: AnyTx, accountId: number, id: string): Promise<MessageState | null> {
  const rows = await sql<MessageState>(tx, `SELECT ${STATE} FROM message WHERE id = $1::uuid AND account_id = $2 FOR UPDATE`, [id, accountId]);
  return rows[0] ?? null;
}

/**
 * The message a peer's reference names, locked: ours by its id (our stanza id and origin-id), or
 * one of the peer's by the stanza id or the XEP-0359 origin-id it sent it with (XEP-0424 retracts
 * by the origin-id, XEP-0444 §Using the correct ID reacts by it when present, XEP-0461 replies by
 * the stanza id). Only in the conversation with `peer`.
 */
export async function lockReferenced(tx: AnyTx, accountId: number, peer: string, ref: string, direction: "in" | "out" | null): Promise<MessageState | null> {
  if (direction !== "in" && isMessageId(ref)) {
    const ours = await sql<MessageState>(tx, `SELECT ${STATE} FROM message WHERE id = $1::uuid AND account_id = $2 AND peer = $3 AND direction = 'out' FOR UPDATE`, [ref, accountId, peer]);
    if (ours[0]) return ours[0];
  }
  if (direction !== "out") {
    const theirs = await sql<MessageState>(
      tx,
      `SELECT ${STATE} FROM message WHERE account_id = $1 AND peer = $2 AND (stanza_id = $3 OR origin_id = $3) AND direction = 'in' ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
      [accountId, peer, ref],
    );
    if (theirs[0]) return theirs[0];
  }
  return lockAliased(tx, accountId, peer, ref, direction === null ? "" : `AND direction = '${direction}'`, []);
}

/**
 * The group message of room `room` that the occupant JID `from` sent, named by a correction of
 * that occupant (XEP-0308 §Business Rules: by its 'id') or its retraction (XEP-0424 §Using the
 * correct ID: by the stanza-id the room assigned, stored as its origin_id), locked. Only that
 * occupant's: a reference to anyone else's message finds nothing. With `group` false, one of its
 * private messages (XEP-0045 §7.5) instead.
 */
export async function lockOccupantMessage(tx: AnyTx, accountId: number, room: string, from: string, ref: string, group: boolean): Promise<MessageState | null> {
  const rows = await sql<MessageState>(
    tx,
    `SELECT ${STATE} FROM message WHERE account_id = $1 AND peer = $2 AND (stanza_id = $3 OR origin_id = $3) AND "from" = $4 AND direction = 'in' AND (type = 'groupchat') = $5
     ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
    [accountId, room, ref, from, group],
  );
  return rows[0] ?? lockAliased(tx, accountId, room, ref, `AND "from" = $4 AND direction = 'in' AND (type = 'groupchat') = $5`, [from, group]);
}

/**
 * A private message (XEP-0045 §7.5) between the account's occupant JID and the occupant JID of
 * `room` `occupant` (`raw`: as its messages come, their "from"; `jid`: prepared, as the account's
 * messages to it are addressed), named by our id or by the occupant's 'id' or origin-id (not a
 * group message: XEP-0444 §Using the correct ID, XEP-0333 §Protocol Format), locked: ours to it,
 * or (`direction` null) one of its own. Another occupant's, or a group message, is not found.
 */
export async function lockPrivateMessage(tx: AnyTx, accountId: number, room: string, occupant: { raw: string; jid: string }, ref: string, direction: "out" | null): Promise<MessageState | null> {
  const toIt = `AND direction = 'out' AND type <> 'groupchat' AND "to" = $4`;
  if (isMessageId(ref)) {
    const ours = await sql<MessageState>(tx, `SELECT ${STATE} FROM message WHERE id = $1::uuid AND account_id = $2 AND peer = $3 ${toIt} FOR UPDATE`, [ref, accountId, room, occupant.jid]);
    if (ours[0]) return ours[0];
  }
  const theirs = direction === "out" ? null : await lockOccupantMessage(tx, accountId, room, occupant.raw, ref, false);
  // Ours by the id one of its corrections went under (lockAliased).
  return theirs ?? lockAliased(tx, accountId, room, ref, toIt, [occupant.jid]);
}

/**
 * The group message of room `room` (either direction) that a reaction names by the stanza-id the
 * room assigned it (XEP-0444 §Using the correct ID), locked. The latest, should a room that does
 * not assign ids itself have passed on one an occupant made up (XEP-0359 §Security Considerations).
 */
export async function lockRoomMessage(tx: AnyTx, accountId: number, room: string, ref: string): Promise<MessageState | null> {
  const rows = await sql<MessageState>(
    tx,
    `SELECT ${STATE} FROM message WHERE account_id = $1 AND peer = $2 AND origin_id = $3 AND type = 'groupchat' ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
    [accountId, room, ref],
  );
  return rows[0] ?? lockAliased(tx, accountId, room, ref, "AND type = 'groupchat'", []);
}

/**
 * The message of the conversation with `peer` that goes by the wire id `ref` of one of its
 * corrections (MessageAlias), locked, when `filter` (SQL over the message's columns, its parameters
 * `params` from $4 on) holds for it. XEP-0444 §Business Rules: a reference to a correction is
 * handled "as if it was using the message id of the original message"; so is any other change's.
 */
async function lockAliased(tx: AnyTx, accountId: number, peer: string, ref: string, filter: string, params: unknown[]): Promise<MessageState | null> {
  const rows = await sql<MessageState>(
    tx,
    `SELECT ${STATE} FROM message WHERE id IN (SELECT message_id FROM message_alias WHERE account_id = $1 AND peer = $2 AND alias = $3)
     AND account_id = $1 AND peer = $2 ${filter} ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
    [accountId, peer, ref, ...params],
  );
  return rows[0] ?? null;
}

/**
 * Records the stanza-id room `room` gave the account's own correction of its group message `id` (our
 * id, which the correction names: XEP-0308 §Business Rules), as recordAliases does.
 */
export async function recordRoomAlias(tx: AnyTx, accountId: number, room: string, id: string, roomStanzaId: string): Promise<void> {
  if (!isMessageId(id) || id === roomStanzaId) return;
  await exec(
    tx,
    `INSERT INTO message_alias (message_id, account_id, peer, alias)
     SELECT id, account_id, peer, $4 FROM message WHERE id = $1::uuid AND account_id = $2 AND peer = $3 AND direction = 'out' AND type = 'groupchat' ON CONFLICT DO NOTHING`,
    [id, accountId, room, roomStanzaId],
  );
}

/**
 * Records the wire ids a correction of message `id` went or came under (`aliases`; none and the
 * message's own left out) in the conversation with `peer`, so what names the correction finds the
 * message (lockAliased).
 */
export async function recordAliases(tx: AnyTx, accountId: number, peer: string, id: string, aliases: (string | null | undefined)[]): Promise<void> {
  const kept = [...new Set(aliases.filter((a): a is string => !!a && a !== id))];
  if (kept.length === 0) return;
  await exec(tx, "INSERT INTO message_alias (message_id, account_id, peer, alias) SELECT $1::uuid, $2, $3, a FROM json_array_elements_text($4::json) a ON CONFLICT DO NOTHING", [id, accountId, peer, JSON.stringify(kept)]);
}

export async function correctBody(tx: AnyTx, id: string, body: unknown): Promise<void> {
  await sql(tx, "UPDATE message SET body = $2::json, edited_at = now(), updated_at = now() WHERE id = $1::uuid", [id, JSON.stringify(body)]);
}

/** SQL: a moment inside an Idempotency-Key's 24 h (API.md Messages), by the database's clock (UTC, as the columns). */
export const KEY_FRESH = "localtimestamp - interval '24 hours'";

/**
 * What an Idempotency-Key of the account stands for within its 24 h: a correction (its request's
 * fingerprint, the message it corrected and the status its answer gave), a new message (that
 * message's row keeps the key), or nothing yet (null).
 */
export async function keyUse(tx: AnyTx, accountId: number, key: string): Promise<{ hash: string; messageId: string; status: string } | "message" | null> {
  const rows = await sql<{ hash: string | null; message_id: string | null; status: string | null }>(
    tx,
    `(SELECT request_hash AS hash, message_id::text, status FROM correction_key WHERE account_id = $1 AND key = $2 AND created_at > ${KEY_FRESH})
     UNION ALL
     (SELECT NULL, NULL, NULL FROM message WHERE account_id = $1 AND idempotency_key = $2 AND created_at > ${KEY_FRESH} LIMIT 1)`,
    [accountId, key],
  );
  const r = rows[0];
  return !r ? null : r.hash === null ? "message" : { hash: r.hash, messageId: r.message_id!, status: r.status! };
}

/**
 * SQL: whether a correction holds the account's Idempotency-Key within its 24 h (`account`, `key`:
 * SQL expressions). A new message's insert skips such a row: its key is not the new message's to take.
 */
export const correctionHoldsKey = (account: string, key: string): string =>
  `EXISTS (SELECT 1 FROM correction_key c WHERE c.account_id = ${account} AND c.key = ${key} AND c.created_at > ${KEY_FRESH})`;

/** Keeps a correction's key (a stale one is taken over); false when a live one was there (a concurrent request took it). */
export async function recordCorrectionKey(tx: AnyTx, accountId: number, key: string, hash: string, messageId: string, status: string): Promise<boolean> {
  const rows = await sql(
    tx,
    `INSERT INTO correction_key (account_id, key, request_hash, message_id, status) VALUES ($1, $2, $3, $4::uuid, $5)
     ON CONFLICT (account_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, message_id = EXCLUDED.message_id, status = EXCLUDED.status, created_at = localtimestamp
     WHERE correction_key.created_at <= ${KEY_FRESH}
     RETURNING 1`,
    [accountId, key, hash, messageId, status],
  );
  return rows.length > 0;
}

/** Frees the corrections' keys whose 24 h are over (the maintenance job, with new messages' keys: src/db/messages.ts). */
export async function releaseExpiredCorrectionKeys(tx: AnyTx): Promise<number> {
  return (await sql(tx, `DELETE FROM correction_key WHERE created_at <= ${KEY_FRESH} RETURNING 1`, [])).length;
}

/** XEP-0424: a tombstone: the text and reactions go, the message stays. */
export async function markRetracted(tx: AnyTx, id: string): Promise<void> {
  // The tombstone keeps no text: nor do the undos of the corrections before it (src/db/message-undo.ts).
  await sql(
    tx,
    `WITH u AS (UPDATE message_alias SET undo = NULL WHERE message_id = $1::uuid AND undo IS NOT NULL)
     UPDATE message SET body = NULL, subject = NULL, reactions = NULL, retracted_at = now(), updated_at = now() WHERE id = $1::uuid`,
    [id],
  );
}

/** XEP-0444: `jid`'s whole set of reactions (empty: none). */
export async function setReactions(tx: AnyTx, id: string, jid: string, emojis: string[]): Promise<void> {
  await sql(
    tx,
    `UPDATE message SET updated_at = now(), reactions = CASE WHEN cardinality($3::text[]) = 0 THEN NULLIF(COALESCE(reactions, '{}'::jsonb) - $2, '{}'::jsonb)
       ELSE COALESCE(reactions, '{}'::jsonb) || jsonb_build_object($2::text, to_jsonb($3::text[])) END
     WHERE id = $1::uuid`,
    [id, jid, emojis],
  );
}

/** The most messages one marker raises (the latest up to the one it names; XEP-0333 markers are a heuristic). */
export const MAX_MARKED = 200;

/**
 * XEP-0333 §Protocol Format: "A Chat Marker indicates that all messages up to and including that
 * message 'id' have been marked", and markers only move forward (§Requirements). Raises `marker`
 * on the outbound message `id` of the conversation with `peer` and on every earlier outbound one
 * whose marker is lower, in one statement; returns the messages it changed, as views need them,
 * in sequence order. Bounded: the walk back stops at the latest earlier message already marked at
 * least that (everything before it was raised with it), and takes at most MAX_MARKED messages.
 * "If a thread is supplied, a Chat Marker is only valid in the context of that thread": with
 * `thread`, the earlier messages raised are that thread's. A message that failed (an error bounce,
 * withdrawn while queued) never reached the peer: only the one named is raised whatever it is.
 * In a room (`peer`) `only` says which conversation: "groupchat", its group messages; `{to}`, the
 * private messages to that occupant JID (XEP-0045 §7.5; their peer is the room too). Only messages
 * that say something count (a tombstone did): a chat state sent alone is no message to mark,
 * walked past and never raised.
 */
export async function raiseMarkers(tx: AnyTx, accountId: number, peer: string, id: string, marker: string, thread: string | null, only: "groupchat" | { to: string } | null = null): Promise<MessageRecord[]> {
  const rank = (e: string) => `array_position(ARRAY['received', 'displayed', 'acknowledged'], ${e})`;
  const conversation = `account_id = $2 AND peer = $3 AND direction = 'out' AND ($6::text IS NULL OR type = $6::text) AND ($7::text IS NULL OR "to" = $7::text)`;
  const saying = `${conversation} AND (${saysSomething("message")} OR retracted_at IS NOT NULL)`;
  const inThread = (m: string) => `($5::text IS NULL OR ${m}.thread = $5::text)`;
  const rows = await sql<MessageRecord>(
    tx,
    `WITH ref AS (SELECT seq FROM message WHERE id = $1::uuid AND ${conversation}),
     lo AS (SELECT COALESCE((SELECT w.seq FROM (SELECT seq, marker, thread FROM message WHERE ${saying} AND seq < (SELECT seq FROM ref) ORDER BY seq DESC LIMIT ${MAX_MARKED}) w
                 WHERE w.marker IS NOT NULL AND ${rank("w.marker")} >= ${rank("$4::text")} AND ${inThread("w")} ORDER BY w.seq DESC LIMIT 1), 0) AS seq),
     cand AS (SELECT w.id FROM (SELECT id, seq, marker, thread, status FROM message WHERE ${saying} AND seq <= (SELECT seq FROM ref) AND seq > (SELECT seq FROM lo) ORDER BY seq DESC LIMIT ${MAX_MARKED}) w
              WHERE (w.marker IS NULL OR ${rank("w.marker")} < ${rank("$4::text")}) AND (w.id = $1::uuid OR (w.status <> 'failed' AND ${inThread("w")})))
     UPDATE message m SET marker = $4::text, updated_at = now() FROM cand WHERE m.id = cand.id
     RETURNING ${RECORD("m")}`,
    [id, accountId, peer, marker, thread, only === "groupchat" ? only : null, only && only !== "groupchat" ? only.to : null],
  );
  return rows.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
}

/** The columns of a MessageRecord, of the row aliased `m`. */
export const RECORD = (m: string) =>
  `${m}.id::text, ${m}.direction, ${m}."from", ${m}."to", ${m}.type, ${m}.body, ${m}.subject, ${m}.thread, ${m}.lang, ${m}.state, ${m}.receipt, ${statusSql(m)} AS status,
   ${m}.error, ${m}.seq, ${m}.created_at AS "createdAt", ${m}.updated_at AS "updatedAt", ${m}.ext, ${m}.edited_at AS "editedAt", ${m}.retracted_at AS "retractedAt", ${m}.reactions, ${m}.marker`;

/** The message as views need it (src/domain/views.ts), read in the changing transaction. */
export async function messageRecord(tx: AnyTx, id: string): Promise<MessageRecord> {
  const rows = await sql<MessageRecord>(tx, `SELECT ${RECORD("message")} FROM message WHERE id = $1::uuid`, [id]);
  return rows[0]!;
}
