// The account's own presence as a whole, beside its sessions': what a probe's answer reads under
// the account's lock (RFC 6121 §4.3.2).
import type { Tx } from "./client.js";

/**
 * For a probe's answer, in the inbound batch's transaction, before it reads the sessions (in a
 * statement of its own, so that one starts after this lock was granted: under read committed a
 * single statement that waited for the row would still read the sessions of its older snapshot).
 * FOR KEY SHARE conflicts with lockAccount's FOR UPDATE, which every writer of the sessions'
 * presence takes (PUT /v1/presence, a session's end, the expiry sweep): the answer reads the
 * sessions as such a writer left them, and a writer that comes after it waits for the batch's
 * commit, so its broadcast is queued behind the answer. It conflicts with nothing else that
 * takes the row (event appends' FOR NO KEY UPDATE, foreign keys' FOR KEY SHARE, other probes),
 * and a later append to the account in the same batch needs no stronger lock another
 * probe could hold. False when the account no longer exists (deleted meanwhile).
 */
export async function lockForProbe(tx: Tx, accountId: number): Promise<boolean> {
  const rows = await tx.$queryRaw<unknown[]>`SELECT 1 FROM account WHERE id = ${accountId} FOR KEY SHARE`;
  return rows.length > 0;
}
