// Roster items with their subscription state, the roster version, contacts' presence, and the
// sessions' own presence. All functions take the caller's transaction: roster changes,
// their events and the version bump commit together.
import type pg from "pg";
import { Prisma } from "./generated/client.js";
import { AppError } from "../domain/errors.js";
import type { ItemState, Subscription } from "../domain/subscription.js";
import type { LangText } from "../domain/message.js";
import type { RosterRecord } from "../domain/views.js";
import { sql, type AnyTx, type Tx } from "./client.js";
import { notBlocked } from "./blocklist.js";

export type RosterRow = RosterRecord;

export interface SessionPresence {
  resource: string;
  show: string | null;
  status: LangText | null;
  priority: number;
}

const select = {
  jid: true,
  name: true,
  groups: true,
  subscription: true,
  askOut: true,
  pendingIn: true,
  pendingInAt: true,
  pendingStatus: true,
  approved: true,
  inRoster: true,
  ver: true,
} as const;

function toRow(r: Prisma.RosterItemGetPayload<{ select: typeof select }>): RosterRow {
  return { ...r, subscription: r.subscription as Subscription, ver: Number(r.ver) };
}

/** Serializes roster work of one account (taken first in every roster transaction); false when the account no longer exists. */
export async function lockAccount(tx: Tx, accountId: number): Promise<boolean> {
  const rows = await tx.$queryRaw<unknown[]>`SELECT id FROM account WHERE id = ${accountId} FOR UPDATE`;
  return rows.length > 0;
}

/**
 * lockAccount for a request on the account's behalf: an account deleted while the request waited
 * for the lock is account-not-found (404; service-unavailable to a stanza), as it would have been
 * a moment later, not a foreign-key violation of what the request then writes.
 */
export async function lockLiveAccount(tx: Tx, account: { id: number; jid: string }): Promise<void> {
  if (!(await lockAccount(tx, account.id))) throw new AppError("account-not-found", `${account.jid} was deleted`);
}

export async function getItem(tx: Tx, accountId: number, jid: string): Promise<RosterRow | null> {
  const r = await tx.rosterItem.findUnique({ where: { accountId_jid: { accountId, jid } }, select });
  return r ? toRow(r) : null;
}

/** SQL: roster item `r` lets its contact see the account's presence: a subscription from or both (RFC 6121 §3). */
export const letsSeePresence = (r: string) => `${r}.subscription IN ('from', 'both')`;
/** SQL: through roster item `r` the account receives its contact's presence: a subscription to or both (RFC 6121 §3). */
export const receivesPresence = (r: string) => `${r}.subscription IN ('to', 'both')`;

/**
 * Whether `jid` (a bare JID) may see the account's presence (letsSeePresence). Service discovery
 * of the account's bare JID answers only such an entity (src/xmpp/iq.ts).
 */
export async function seesPresence(tx: AnyTx, accountId: number, jid: string): Promise<boolean> {
  return (await sql(tx, `SELECT 1 FROM roster_item r WHERE r.account_id = $1 AND r.jid = $2 AND ${letsSeePresence("r")}`, [accountId, jid])).length > 0;
}

export async function bumpRosterVersion(tx: Tx, accountId: number): Promise<number> {
  const rows = await tx.$queryRaw<{ roster_ver: bigint }[]>`UPDATE account SET roster_ver = roster_ver + 1 WHERE id = ${accountId} RETURNING roster_ver`;
  return Number(rows[0]!.roster_ver);
}

export async function saveItem(
  tx: Tx,
  accountId: number,
  jid: string,
  state: ItemState,
  extra: { name?: string | null; groups?: string[]; ver?: number; pendingStatus?: string | null; requestStored?: boolean },
): Promise<RosterRow> {
  const data = {
    subscription: state.subscription,
    askOut: state.askOut,
    pendingIn: state.pendingIn,
    approved: state.approved,
    inRoster: state.inRoster,
    ...(extra.name !== undefined ? { name: extra.name } : {}),
    ...(extra.groups !== undefined ? { groups: extra.groups } : {}),
    ...(extra.ver !== undefined ? { ver: BigInt(extra.ver) } : {}),
    ...(extra.requestStored ? { pendingInAt: new Date(), pendingStatus: extra.pendingStatus ?? null } : {}),
    ...(!state.pendingIn ? { pendingInAt: null, pendingStatus: null } : {}),
  };
  const r = await tx.rosterItem.upsert({
    where: { accountId_jid: { accountId, jid } },
    create: { accountId, jid, groups: [], ...data },
    update: data,
    select,
  });
  return toRow(r);
}

/**
 * Every item of the account, in the roster or not (a stranger's pending request too): what an
 * account's deletion answers. Blocked contacts too: the account is gone, and a subscription left
 * on her server would bring her presence to whoever takes the name next (the lifecycle audit).
 */
export async function allItems(tx: Tx, accountId: number): Promise<RosterRow[]> {
  return (await tx.rosterItem.findMany({ where: { accountId }, select })).map(toRow);
}

/** The account's roster items (`inRoster`), or the strangers' requests kept outside the roster. */
export async function countItems(tx: Tx, accountId: number, inRoster: boolean): Promise<number> {
  const rows = await sql<{ n: number }>(tx, `SELECT count(*)::int AS n FROM roster_item WHERE account_id = $1 AND in_roster = $2`, [accountId, inRoster]);
  return rows[0]!.n;
}

export async function deleteItem(tx: Tx, accountId: number, jid: string): Promise<void> {
  await tx.rosterItem.deleteMany({ where: { accountId, jid } });
}

/**
 * The roster as one snapshot (one statement): its version and every item in the roster, by JID.
 * Raw pg on the pool with rows as arrays, and groups as JSON text (pg's text[] parser costs more
 * than the rest of the row): 5,000 items in a few milliseconds, where Postgres' json_agg of the
 * same took ~25 ms. The caller serialises it once per version.
 */
export async function rosterSnapshot(pool: pg.Pool, accountId: number): Promise<{ ver: number; items: RosterRow[] }> {
  const { rows } = await pool.query<unknown[]>({
    text: `SELECT a.roster_ver, ${ROW_COLUMNS} FROM account a LEFT JOIN roster_item r ON r.account_id = a.id AND r.in_roster WHERE a.id = $1 ORDER BY r.jid`,
    values: [accountId],
    rowMode: "array",
  });
  // The account's row alone (no jid): an empty roster.
  return { ver: Number(rows[0]?.[0] ?? 0), items: rows.filter((r) => r[1] !== null).map((r) => arrayRow(r, 1)) };
}

/**
 * What changed in the roster since version `since`, as one snapshot: the version, how many items
 * are in the roster, and every item saved at a later version (in the roster or no longer). A row
 * deleted since is not among them: the count is how a caller tells (src/services/roster.ts).
 */
export async function rosterChanges(pool: pg.Pool, accountId: number, since: number): Promise<{ ver: number; count: number; changed: RosterRow[] }> {
  const { rows } = await pool.query<unknown[]>({
    text: `SELECT a.roster_ver, (SELECT count(*)::int FROM roster_item c WHERE c.account_id = a.id AND c.in_roster), ${ROW_COLUMNS}
           FROM account a LEFT JOIN roster_item r ON r.account_id = a.id AND r.ver > $2 WHERE a.id = $1`,
    values: [accountId, since],
    rowMode: "array",
  });
  return { ver: Number(rows[0]?.[0] ?? 0), count: Number(rows[0]?.[1] ?? 0), changed: rows.filter((r) => r[2] !== null).map((r) => arrayRow(r, 2)) };
}

const ROW_COLUMNS = "r.jid, r.name, array_to_json(r.groups)::text, r.subscription, r.ask_out, r.pending_in, r.pending_in_at, r.pending_status, r.approved, r.ver, r.in_roster";

/** ROW_COLUMNS of a row in array mode, from index `at`. */
function arrayRow(r: unknown[], at: number): RosterRow {
  return {
    jid: r[at] as string,
    name: r[at + 1] as string | null,
    groups: JSON.parse(r[at + 2] as string) as string[],
    subscription: r[at + 3] as Subscription,
    askOut: r[at + 4] as boolean,
    pendingIn: r[at + 5] as boolean,
    pendingInAt: r[at + 6] as Date | null,
    pendingStatus: r[at + 7] as string | null,
    approved: r[at + 8] as boolean,
    ver: Number(r[at + 9]),
    inRoster: r[at + 10] as boolean,
  };
}

export async function rosterVersion(tx: Tx, accountId: number): Promise<number> {
  const a = await tx.account.findUnique({ where: { id: accountId }, select: { rosterVer: true } });
  return Number(a?.rosterVer ?? 0);
}

/**
 * The roster version alone (it decides a 304 and whether a serialised roster is current): one
 * primary-key read. Null when there is no such account (the caller's id is stale: src/http/context.ts).
 */
export async function currentRosterVersion(pool: pg.Pool, accountId: number): Promise<number | null> {
  const { rows } = await pool.query<{ roster_ver: number }>("SELECT roster_ver FROM account WHERE id = $1", [accountId]);
  return rows[0] ? Number(rows[0].roster_ver) : null;
}

export async function pendingRequests(tx: Tx, accountId: number): Promise<RosterRow[]> {
  const rows = await tx.rosterItem.findMany({ where: { accountId, pendingIn: true }, orderBy: { pendingInAt: "asc" }, select });
  return rows.map(toRow);
}

/**
 * Contacts that receive the account's presence: subscription from or both (RFC 6121 §4.2.2), and
 * not blocked (XEP-0191 §3.3: a blocked contact gets no presence).
 */
export async function presenceSubscribers(tx: Tx, accountId: number): Promise<string[]> {
  const rows = await sql<{ jid: string }>(tx, `SELECT r.jid FROM roster_item r WHERE r.account_id = $1 AND ${letsSeePresence("r")} AND ${notBlocked("r")} ORDER BY r.jid`, [accountId]);
  return rows.map((r) => r.jid);
}

/** Contacts whose presence the account receives (RFC 6121 §4.2.1 probes): subscription to or both, not blocked. */
export async function presenceSources(tx: Tx, accountId: number): Promise<string[]> {
  const rows = await sql<{ jid: string }>(tx, `SELECT r.jid FROM roster_item r WHERE r.account_id = $1 AND ${receivesPresence("r")} AND ${notBlocked("r")} ORDER BY r.jid`, [accountId]);
  return rows.map((r) => r.jid);
}

export async function availableSessions(tx: Tx, accountId: number): Promise<SessionPresence[]> {
  const rows = await tx.session.findMany({ where: { accountId, available: true }, orderBy: { resource: "asc" }, select: { resource: true, show: true, status: true, priority: true } });
  return rows.map((r) => ({ ...r, status: r.status as LangText | null }));
}
