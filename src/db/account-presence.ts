// The account's own presence as a whole, beside its sessions': what a probe's answer reads under
// the account's lock, and the last unavailable presence it answers with while no session is
// available (RFC 6121 §4.3.2).
import type { LangText } from "../domain/message.js";
import type { Tx } from "./client.js";

/** The account's last unavailable presence: its status (null: none given) and when it went unavailable. */
export interface LastUnavailable {
  status: LangText | null;
  at: Date;
}

/**
 * For a probe's answer, in the inbound batch's transaction, before it reads the subscription and sessions (in a
 * statement of its own, so that one starts after this lock was granted: under read committed a
 * single statement that waited for the row would still read the sessions of its older snapshot).
 * FOR NO KEY UPDATE conflicts with the locks every writer of the sessions' presence takes
 * (lockAccount's FOR UPDATE: PUT /v1/presence, a session's end; the expiry sweep's FOR NO KEY
 * UPDATE): the answer reads the sessions as such a writer left them, and a writer that comes after
 * it waits for the batch's commit, so its broadcast is queued behind the answer. It is the lock an
 * event appended for the account takes (UPDATE of last_seq), so a later append in the same batch
 * needs nothing stronger, and it leaves foreign keys' FOR KEY SHARE alone (messages sent, new
 * sessions). Probes of one account wait for each other, as its appends do. (FOR KEY SHARE would
 * not wait for the sweep; FOR SHARE would deadlock two batches that probe and then append to one
 * account.) Returns the last unavailable presence (null when there never was one), or
 * undefined when the account no longer exists (deleted meanwhile: its goodbye told the contact).
 */
export async function lockForProbe(tx: Tx, accountId: number): Promise<LastUnavailable | null | undefined> {
  const rows = await tx.$queryRaw<{ status: LangText | null; at: Date | null }[]>`
    SELECT last_unavailable_status AS status, last_unavailable_at AS at FROM account WHERE id = ${accountId} FOR NO KEY UPDATE`;
  const r = rows[0];
  if (!r) return undefined;
  return r.at ? { status: r.status, at: r.at } : null;
}

/**
 * In the transaction where the account's last available session went unavailable (under
 * lockAccount): its status, if any, and PostgreSQL's clock (after the lock was granted), so every
 * instance stamps alike.
 */
export async function recordLastUnavailable(tx: Tx, accountId: number, status: LangText | null): Promise<void> {
  await tx.$executeRaw`
    UPDATE account SET last_unavailable_status = ${status === null ? null : JSON.stringify(status)}::jsonb, last_unavailable_at = statement_timestamp()
    WHERE id = ${accountId}`;
}
