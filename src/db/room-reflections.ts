// The room's reflection of what the account sent to it (XEP-0045 §7.4, §8.1): what makes a group
// message `sent` (API.md Group chat).
import { sql, type AnyTx } from "./client.js";

/**
 * The room reflected the account's group message (XEP-0045 §7.4): it is `sent` now (the reflection
 * may come before the link recorded the write). `again` when it was reflected before (history
 * replayed after a rejoin), `unknown` when it is no message of the account's. `stanzaId`: the
 * XEP-0359 stanza-id the room gave it, kept as its origin_id (XEP-0424 and XEP-0444 name a group
 * message by it; the first the room gave stays).
 */
export async function markReflected(tx: AnyTx, accountId: number, id: string, stanzaId: string | null = null): Promise<"first" | "again" | "unknown"> {
  const rows = await sql<{ first: boolean }>(
    tx,
    `WITH m AS (SELECT id, status, origin_id FROM message WHERE id = $1::uuid AND account_id = $2 AND direction = 'out'),
       u AS (UPDATE message SET status = CASE WHEN status IN ('queued', 'written') THEN 'sent' ELSE status END, origin_id = COALESCE(origin_id, $3::text), updated_at = now()
             WHERE id IN (SELECT id FROM m WHERE status IN ('queued', 'written') OR (origin_id IS NULL AND $3::text IS NOT NULL)))
     SELECT status IN ('queued', 'written') AS first FROM m`,
    [id, accountId, stanzaId],
  );
  return rows.length === 0 ? "unknown" : rows[0]!.first ? "first" : "again";
}

/**
 * The room announced a subject from the account's nick (§8.1): the account's oldest subject-only
 * group message to the room with that subject, still queued or written, is `sent` now. A room's
 * subject change need not carry the message's origin-id (Prosody's does not), so it is found by
 * its subject. False when there was none.
 */
export async function markSubjectReflected(tx: AnyTx, accountId: number, room: string, subject: string): Promise<boolean> {
  const rows = await sql(
    tx,
    `UPDATE message SET status = 'sent', updated_at = now() WHERE id = (
       SELECT id FROM message WHERE account_id = $1 AND peer = $2 AND direction = 'out' AND type = 'groupchat' AND body IS NULL
         AND status IN ('queued', 'written') AND subject::text = $3 ORDER BY seq LIMIT 1) RETURNING 1`,
    [accountId, room, subject],
  );
  return rows.length > 0;
}
