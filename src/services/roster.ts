// Carries out the RFC 6121 subscription state machine (src/domain/subscription.ts) for one
// account and contact: loads the item, applies the pure transition, persists the new state and
// turns the effects into stanzas (sent by the caller after commit) and events (appended in the
// same transaction). Used for the account's own actions over HTTP and for inbound stanzas alike.
import type { Element } from "@xmpp/xml";
import type { Prisma } from "../db/generated/client.js";
import { appendEvents, type NewEvent } from "../db/events.js";
import { availableSessions, bumpRosterVersion, clearContactPresence, deleteItem, getItem, lockAccount, saveItem, type RosterRow } from "../db/roster.js";
import { transition, type ItemState, type SubscriptionEvent } from "../domain/subscription.js";
import { presenceStanza, subscriptionStanza } from "../xmpp/stanzas.js";

type Tx = Prisma.TransactionClient;

export interface AccountRef {
  id: number;
  /** The account's bare JID. */
  jid: string;
}

export interface RosterItemView {
  jid: string;
  name: string | null;
  groups: string[];
  subscription: "none" | "to" | "from" | "both";
  ask: "subscribe" | null;
  approved: boolean;
}

export function itemView(jid: string, row: RosterRow | null): RosterItemView {
  return {
    jid,
    name: row?.name ?? null,
    groups: row?.groups ?? [],
    subscription: row?.subscription ?? "none",
    ask: row?.askOut ? "subscribe" : null,
    approved: row?.approved ?? false,
  };
}

export interface Applied {
  item: RosterRow | null;
  ignored: boolean;
  stanzas: Element[];
}

/** The roster event for an item that changed (RFC 6121 §2.1.6 roster push, as an event). */
export function rosterEvent(account: AccountRef, jid: string, row: RosterRow | null, ver: number): NewEvent {
  return {
    accountId: account.id,
    type: "roster",
    data: row?.inRoster ? { item: itemView(jid, row), ver: String(ver) } : { jid, removed: true, ver: String(ver) },
  };
}

const isTo = (s: ItemState | null) => s?.subscription === "to" || s?.subscription === "both";

export async function applySubscription(tx: Tx, account: AccountRef, contact: string, event: SubscriptionEvent, opts: { status?: string | null } = {}): Promise<Applied> {
  await lockAccount(tx, account.id);
  const before = await getItem(tx, account.id, contact);
  const t = transition(before, event);
  if (t.ignored) return { item: before, ignored: true, stanzas: [] };

  const kinds = new Set(t.effects.map((e) => e.kind));
  const ver = kinds.has("roster-push") ? await bumpRosterVersion(tx, account.id) : undefined;
  let item: RosterRow | null = null;
  if (t.state === null) await deleteItem(tx, account.id, contact);
  else item = await saveItem(tx, account.id, contact, t.state, { ver, requestStored: kinds.has("store-request"), pendingStatus: opts.status ?? null });
  // Once we no longer receive the contact's presence, what we stored of it is stale (§3.3, §3.2.3).
  if (isTo(before) && !isTo(t.state)) await clearContactPresence(tx, account.id, contact);

  const stanzas: Element[] = [];
  const events: NewEvent[] = [];
  for (const effect of t.effects) {
    switch (effect.kind) {
      case "send":
        stanzas.push(subscriptionStanza(account.jid, contact, effect.type));
        break;
      case "send-presence":
        for (const s of await availableSessions(tx, account.id)) stanzas.push(presenceStanza(`${account.jid}/${s.resource}`, contact, null, s));
        break;
      case "send-unavailable":
        for (const s of await availableSessions(tx, account.id)) stanzas.push(presenceStanza(`${account.jid}/${s.resource}`, contact, "unavailable"));
        break;
      case "deliver":
        if (event.kind === "inbound") events.push({ accountId: account.id, type: "subscription", data: { jid: contact, type: event.type, ...(opts.status ? { status: opts.status } : {}) } });
        break;
      case "roster-push":
        events.push(rosterEvent(account, contact, item, ver!));
        break;
      case "store-request":
      case "clear-request":
        break; // persisted with the item's pendingIn flag above
    }
  }
  if (events.length) await appendEvents(tx, events);
  return { item, ignored: false, stanzas };
}
