// Roster items with their subscription state, the roster version, contacts' presence, and the
// sessions' own presence. All functions take the caller's transaction: roster changes,
// their events and the version bump commit together.
import type { Prisma } from "./generated/client.js";
import type { ItemState, Subscription } from "../domain/subscription.js";
import type { LangText } from "../domain/message.js";
import type { RosterRecord } from "../domain/views.js";
import type { Tx } from "./client.js";

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

/** Serializes roster work of one account (taken first in every roster transaction). */
export async function lockAccount(tx: Tx, accountId: number): Promise<void> {
  await tx.$queryRaw`SELECT id FROM account WHERE id = ${accountId} FOR UPDATE`;
}

export async function getItem(tx: Tx, accountId: number, jid: string): Promise<RosterRow | null> {
  const r = await tx.rosterItem.findUnique({ where: { accountId_jid: { accountId, jid } }, select });
  return r ? toRow(r) : null;
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

/** Every item of the account, in the roster or not (a stranger's pending request too). */
export async function allItems(tx: Tx, accountId: number): Promise<RosterRow[]> {
  return (await tx.rosterItem.findMany({ where: { accountId }, select })).map(toRow);
}

export async function deleteItem(tx: Tx, accountId: number, jid: string): Promise<void> {
  await tx.rosterItem.deleteMany({ where: { accountId, jid } });
}

export async function rosterDocument(tx: Tx, accountId: number): Promise<{ ver: string; json: string }> {
  const rows = await tx.$queryRaw<{ ver: bigint; doc: string }[]>`
    SELECT a.roster_ver AS ver, json_build_object('ver', a.roster_ver::text, 'items', coalesce((
      SELECT json_agg(json_build_object('jid', r.jid, 'name', r.name, 'groups', r.groups, 'subscription', r.subscription,
        'ask', CASE WHEN r.ask_out THEN 'subscribe' END, 'approved', r.approved) ORDER BY r.jid)
      FROM roster_item r WHERE r.account_id = a.id AND r.in_roster), '[]'::json))::text AS doc
    FROM account a WHERE a.id = ${accountId}`;
  const row = rows[0];
  return { ver: String(row?.ver ?? 0), json: row?.doc ?? '{"ver":"0","items":[]}' };
}

export async function rosterVersion(tx: Tx, accountId: number): Promise<number> {
  const a = await tx.account.findUnique({ where: { id: accountId }, select: { rosterVer: true } });
  return Number(a?.rosterVer ?? 0);
}

export async function pendingRequests(tx: Tx, accountId: number): Promise<RosterRow[]> {
  const rows = await tx.rosterItem.findMany({ where: { accountId, pendingIn: true }, orderBy: { pendingInAt: "asc" }, select });
  return rows.map(toRow);
}

/** Contacts that receive the account's presence: subscription from or both (RFC 6121 §4.2.2). */
export async function presenceSubscribers(tx: Tx, accountId: number): Promise<string[]> {
  const rows = await tx.rosterItem.findMany({ where: { accountId, subscription: { in: ["from", "both"] } }, select: { jid: true } });
  return rows.map((r) => r.jid);
}

/** Contacts whose presence the account receives: subscription to or both (RFC 6121 §4.2.1 probes). */
export async function presenceSources(tx: Tx, accountId: number): Promise<string[]> {
  const rows = await tx.rosterItem.findMany({ where: { accountId, subscription: { in: ["to", "both"] } }, select: { jid: true } });
  return rows.map((r) => r.jid);
}

export async function availableSessions(tx: Tx, accountId: number): Promise<SessionPresence[]> {
  const rows = await tx.session.findMany({ where: { accountId, available: true }, orderBy: { resource: "asc" }, select: { resource: true, show: true, status: true, priority: true } });
  return rows.map((r) => ({ ...r, status: r.status as LangText | null }));
}

export async function setContactPresence(tx: Tx, accountId: number, jid: string, resource: string, p: { show: string | null; status: LangText | null; priority: number } | null): Promise<void> {
  if (p === null) {
    await tx.contactPresence.deleteMany({ where: { accountId, jid, resource } });
    return;
  }
  const data = { show: p.show, status: p.status ?? undefined, priority: p.priority };
  await tx.contactPresence.upsert({ where: { accountId_jid_resource: { accountId, jid, resource } }, create: { accountId, jid, resource, ...data }, update: data });
}

export async function clearContactPresence(tx: Tx, accountId: number, jid: string): Promise<void> {
  await tx.contactPresence.deleteMany({ where: { accountId, jid } });
}

export async function contactPresence(tx: Tx, accountId: number) {
  return tx.contactPresence.findMany({ where: { accountId }, orderBy: [{ jid: "asc" }, { resource: "asc" }] });
}
