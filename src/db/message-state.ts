// What happens to a stored message after it was sent or received (API.md "Message features"):
// corrections, retractions, reactions, markers. Raw SQL that runs in either kind of transaction:
// the HTTP use cases (src/services/message-actions.ts) and the inbound path share it.
import { sql, type AnyTx } from "./client.js";
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
  ext: unknown;
  retractedAt: Date | null;
  editedAt: Date | null;
  createdAt: Date;
  status: string;
}

const STATE = `id::text, account_id AS "accountId", direction, peer, "from", "to", type, body, stanza_id AS "stanzaId", ext,
  retracted_at AS "retractedAt", edited_at AS "editedAt", created_at AS "createdAt", ${statusSql("message")} AS status`;

/** One of the account's messages, locked for the change (null: no such message of the account's). */
export async function lockMessage(tx: AnyTx, accountId: number, id: string): Promise<MessageState | null> {
  const rows = await sql<MessageState>(tx, `SELECT ${STATE} FROM message WHERE id = $1::uuid AND account_id = $2 FOR UPDATE`, [id, accountId]);
  return rows[0] ?? null;
}

/**
 * The message a peer's reference names, locked: ours by its id (our stanza id and origin-id), or
 * one of the peer's by the stanza id it sent it with. Only in the conversation with `peer`.
 */
export async function lockReferenced(tx: AnyTx, accountId: number, peer: string, ref: string, direction: "in" | "out" | null): Promise<MessageState | null> {
  if (direction !== "in" && isMessageId(ref)) {
    const ours = await sql<MessageState>(tx, `SELECT ${STATE} FROM message WHERE id = $1::uuid AND account_id = $2 AND peer = $3 AND direction = 'out' FOR UPDATE`, [ref, accountId, peer]);
    if (ours[0]) return ours[0];
  }
  if (direction === "out") return null;
  const theirs = await sql<MessageState>(
    tx,
    `SELECT ${STATE} FROM message WHERE account_id = $1 AND peer = $2 AND stanza_id = $3 AND direction = 'in' ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
    [accountId, peer, ref],
  );
  return theirs[0] ?? null;
}

export async function correctBody(tx: AnyTx, id: string, body: unknown): Promise<void> {
  await sql(tx, "UPDATE message SET body = $2::json, edited_at = now(), updated_at = now() WHERE id = $1::uuid", [id, JSON.stringify(body)]);
}

/** XEP-0424: a tombstone: the text and reactions go, the message stays. */
export async function markRetracted(tx: AnyTx, id: string): Promise<void> {
  await sql(tx, "UPDATE message SET body = NULL, reactions = NULL, retracted_at = now(), updated_at = now() WHERE id = $1::uuid", [id]);
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

/** XEP-0333: raises the marker of an outbound message; false when it was at least that already. */
export async function raiseMarker(tx: AnyTx, id: string, marker: string): Promise<boolean> {
  const rank = (e: string) => `array_position(ARRAY['received', 'displayed', 'acknowledged'], ${e})`;
  const rows = await sql(tx, `UPDATE message SET marker = $2, updated_at = now() WHERE id = $1::uuid AND (marker IS NULL OR ${rank("marker")} < ${rank("$2")}) RETURNING 1`, [id, marker]);
  return rows.length > 0;
}

/** The message as views need it (src/domain/views.ts), read in the changing transaction. */
export async function messageRecord(tx: AnyTx, id: string): Promise<MessageRecord> {
  const rows = await sql<MessageRecord>(
    tx,
    `SELECT id::text, direction, "from", "to", type, body, subject, thread, lang, state, receipt, ${statusSql("message")} AS status, error, seq, created_at AS "createdAt",
       updated_at AS "updatedAt", ext, edited_at AS "editedAt", retracted_at AS "retractedAt", reactions, marker
     FROM message WHERE id = $1::uuid`,
    [id],
  );
  return rows[0]!;
}
