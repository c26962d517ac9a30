// What an account knows of its contacts' presence (RFC 6121 §4.4): the latest presence of each
// resource of the contacts it is subscribed to, kept for GET /v1/presence, and what a republish
// after the link comes back marks to be confirmed (src/services/presence.ts).
import type { LangText } from "../domain/message.js";
import { MAX_CONTACT_RESOURCES } from "../domain/roster-limits.js";
import { jsonParam, sql, type Tx } from "./client.js";
import { receivesPresence } from "./roster.js";

/**
 * Stores (or with `p` null deletes) one resource's presence of a contact. A resource not kept yet
 * makes room first when the contact has MAX_CONTACT_RESOURCES: the least recently updated go, as
 * the table's trigger would remove them, but returned here, for their unavailable events (streams
 * showed them online; the trigger's deletes are silent, and only catch what a caller left). One
 * statement, as the upsert alone was: every presence a contact sends comes through here.
 */
export async function setContactPresence(tx: Tx, accountId: number, jid: string, resource: string, p: { show: string | null; status: LangText | null; priority: number } | null): Promise<ContactResource[]> {
  if (p === null) {
    await tx.contactPresence.deleteMany({ where: { accountId, jid, resource } });
    return [];
  }
  // A presence without a status clears the one before it. Any presence from the contact confirms
  // what a republish marked to be confirmed: the table's trigger clears stale_since as this sets
  // updated_at (src/services/presence.ts republish). UTC, as the pool's sessions run (client.ts).
  return sql<ContactResource>(
    tx,
    `WITH kept AS (
       SELECT resource, row_number() OVER (ORDER BY updated_at DESC, resource) AS n FROM contact_presence
        WHERE account_id = $1 AND jid = $2 AND resource <> $3
          AND NOT EXISTS (SELECT 1 FROM contact_presence x WHERE x.account_id = $1 AND x.jid = $2 AND x.resource = $3)),
     gone AS (DELETE FROM contact_presence c USING kept WHERE c.account_id = $1 AND c.jid = $2 AND c.resource = kept.resource AND kept.n >= $4 RETURNING c.jid, c.resource),
     up AS (INSERT INTO contact_presence (account_id, jid, resource, show, status, priority, updated_at) VALUES ($1, $2, $3, $5, $6::jsonb, $7, localtimestamp)
       ON CONFLICT (account_id, jid, resource) DO UPDATE SET show = EXCLUDED.show, status = EXCLUDED.status, priority = EXCLUDED.priority, updated_at = localtimestamp)
     SELECT * FROM gone ORDER BY resource`,
    [accountId, jid, resource, MAX_CONTACT_RESOURCES, p.show, jsonParam(p.status), p.priority],
  );
}

/** One stored resource of a contact's presence ("" for presence from the bare JID). */
export interface ContactResource {
  jid: string;
  resource: string;
}

/** Deletes every stored resource of the contact; returns those it deleted, in order. */
export async function clearContactPresence(tx: Tx, accountId: number, jid: string): Promise<ContactResource[]> {
  return sql<ContactResource>(tx, "WITH d AS (DELETE FROM contact_presence WHERE account_id = $1 AND jid = $2 RETURNING jid, resource) SELECT * FROM d ORDER BY resource", [accountId, jid]);
}

/** Marks every stored resource of the account's contacts as to be confirmed, from now. */
export async function markContactPresenceStale(tx: Tx, accountId: number): Promise<void> {
  await sql(tx, "UPDATE contact_presence SET stale_since = now() WHERE account_id = $1", [accountId]);
}

/** Marked longer than the parameter's seconds ago and not confirmed since (a republish's mark, cleared by any presence). */
const STALE = (seconds: string) => `stale_since < now() - make_interval(secs => ${seconds})`;

/** Accounts with contact presence marked longer than `ms` ago and not confirmed since. */
export async function accountsWithStalePresence(tx: Tx, ms: number): Promise<number[]> {
  const rows = await sql<{ id: number }>(tx, `SELECT DISTINCT account_id AS id FROM contact_presence WHERE ${STALE("$1")} ORDER BY 1`, [ms / 1000]);
  return rows.map((r) => r.id);
}

/** Deletes the account's contact resources marked longer than `ms` ago and not confirmed since; returns them, in order. */
export async function clearStaleContactPresence(tx: Tx, accountId: number, ms: number): Promise<ContactResource[]> {
  return sql<ContactResource>(
    tx,
    `WITH d AS (DELETE FROM contact_presence WHERE account_id = $1 AND ${STALE("$2")} RETURNING jid, resource) SELECT * FROM d ORDER BY jid, resource`,
    [accountId, ms / 1000],
  );
}

/**
 * Accounts with an available session, any stored contact presence or a contact whose presence they
 * receive (`to`, `both`): those whose presence republishing after the component link comes back
 * concerns (src/services/presence.ts republish).
 */
export async function accountsWithPresence(tx: Tx): Promise<{ id: number; localpart: string }[]> {
  return sql(
    tx,
    `SELECT a.id, a.localpart FROM account a
       JOIN (SELECT account_id FROM session WHERE available UNION SELECT account_id FROM contact_presence
             UNION SELECT r.account_id FROM roster_item r WHERE ${receivesPresence("r")}) p ON p.account_id = a.id
      ORDER BY a.id`,
    [],
  );
}

/** Deletes these stored resources of the account's contacts. */
export async function clearContactResources(tx: Tx, accountId: number, gone: readonly ContactResource[]): Promise<void> {
  if (gone.length === 0) return;
  await sql(tx, "DELETE FROM contact_presence c USING unnest($2::text[], $3::text[]) AS g(jid, resource) WHERE c.account_id = $1 AND c.jid = g.jid AND c.resource = g.resource", [
    accountId,
    gone.map((g) => g.jid),
    gone.map((g) => g.resource),
  ]);
}

export async function contactPresence(tx: Tx, accountId: number) {
  return tx.contactPresence.findMany({ where: { accountId }, orderBy: [{ jid: "asc" }, { resource: "asc" }] });
}
