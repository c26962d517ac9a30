// The undo of the account's own changes to its messages, kept with the wire id each went under
// (message_alias.undo; src/domain/change-undo.ts says when it applies).
import { exec, jsonParam, sql, type AnyTx } from "./client.js";
import { setReactions } from "./message-state.js";
import type { ChangeUndo, ChangedMessage, Restore } from "../domain/change-undo.js";

/** Keeps what putting back the change of message `id` sent under wire id `alias` takes. */
export async function recordUndo(tx: AnyTx, accountId: number, peer: string, id: string, alias: string, undo: ChangeUndo): Promise<void> {
  await exec(
    tx,
    `INSERT INTO message_alias (message_id, account_id, peer, alias, undo) VALUES ($1::uuid, $2, $3, $4, $5::jsonb)
     ON CONFLICT (message_id, alias) DO UPDATE SET undo = EXCLUDED.undo`,
    [id, accountId, peer, alias, jsonParam(undo)],
  );
}

/**
 * The change the account sent to `peer` under wire id `alias`, taken (a second error under that id
 * finds none), with its message as it is now, locked; null when no change of ours went under it.
 */
export async function takeUndo(tx: AnyTx, accountId: number, peer: string, alias: string): Promise<{ id: string; undo: ChangeUndo; message: ChangedMessage } | null> {
  const [row] = await sql<{ id: string; undo: ChangeUndo; body: unknown; reactions: Record<string, string[]> | null; retractedAt: Date | null }>(
    tx,
    `WITH old AS (SELECT message_id, alias, undo FROM message_alias WHERE account_id = $1 AND peer = $2 AND alias = $3 AND undo IS NOT NULL FOR UPDATE),
     a AS (UPDATE message_alias x SET undo = NULL FROM old WHERE x.message_id = old.message_id AND x.alias = old.alias RETURNING old.message_id, old.undo)
     SELECT m.id::text, a.undo, m.body, m.reactions, m.retracted_at AS "retractedAt" FROM a JOIN message m ON m.id = a.message_id AND m.account_id = $1 FOR UPDATE OF m`,
    [accountId, peer, alias],
  );
  return row ? { id: row.id, undo: row.undo, message: { body: row.body, reactions: row.reactions, retractedAt: row.retractedAt } } : null;
}

/** Writes back what a refused change replaced. */
export async function restore(tx: AnyTx, id: string, r: Restore): Promise<void> {
  if (r.kind === "replace") {
    await exec(tx, "UPDATE message SET body = $2::json, edited_at = $3::timestamp, updated_at = now() WHERE id = $1::uuid", [id, jsonParam(r.body), r.editedAt]);
    return;
  }
  await setReactions(tx, id, r.by, r.emojis);
}
