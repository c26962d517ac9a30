// Roster (RFC 6121 §2) and presence subscriptions (§3) for one account and contact: loads the
// item, applies the pure transition (src/domain/subscription.ts), persists the new state and its
// events in one transaction, and hands the stanzas to the outbound port after commit. Used for the
// account's own actions over HTTP and, through inboundSubscription, for stanzas from contacts.
import { isDeepStrictEqual } from "node:util";
import { LRUCache } from "lru-cache";
import type { Database, Tx } from "../db/client.js";
import { appendEvents, type NewEvent } from "../db/events.js";
import { availableSessions, bumpRosterVersion, countItems, currentRosterVersion, deleteItem, getItem, lockLiveAccount, pendingRequests, rosterChanges, rosterSnapshot, saveItem } from "../db/roster.js";
import { clearContactPresence } from "../db/contact-presence.js";
import type { AccountRef } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { event, rosterEvent, type RosterItemView } from "../domain/events.js";
import { jidToString, parseJid } from "../domain/jid.js";
import { assertAddressSpeltAlike } from "../domain/stringprep-fold.js";
import { fullDetail, growth, LIMITS } from "../domain/roster-limits.js";
import { presence, subscription, type Stanza } from "../domain/stanza.js";
import { transition, type ItemState, type SubscriptionEvent, type SubscriptionStanza } from "../domain/subscription.js";
import { rosterItemView, type RosterRecord } from "../domain/views.js";
import type { Delivery } from "./delivery.js";
import { contactsGone } from "./presence.js";
import { NO_BLOCKS, type BlockCheck } from "./ports.js";

export interface Applied {
  item: RosterRecord | null;
  ignored: boolean;
  stanzas: Stanza[];
  /** The contact was in the account's roster before (a stranger's request alone is not, A.1). */
  wasInRoster: boolean;
  /** A stranger's request not kept: MAX_PENDING_REQUESTS wait already (what the refusal says). */
  refused?: string;
}

/**
 * Throws too-many-contacts (or, for a stranger's request, answers `refused`) when the change
 * would add a row under a bound that is full (src/domain/roster-limits.ts). Counted under the
 * account lock every roster transaction takes first: two changes cannot both take the last place.
 */
async function checkBound(tx: Tx, accountId: number, before: ItemState | null, after: ItemState | null): Promise<string | null> {
  const bound = growth(before, after);
  if (!bound || (await countItems(tx, accountId, bound === "roster")) < LIMITS[bound]) return null;
  if (bound === "roster") throw new AppError("too-many-contacts", fullDetail(bound));
  return fullDetail(bound);
}

/** A serialised roster (the body of GET /v1/roster), valid for exactly one roster version. */
interface RosterDocument {
  ver: number;
  body: Buffer;
  /**
   * Each item's JSON (UTF-8) by JID, in the body's order: the next version is made of these and
   * what changed. The document that does so takes them over (null here then): copying 5,000
   * entries cost more than the change.
   */
  items: Map<string, Buffer> | null;
}

const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("]}");
const itemJson = (r: RosterRecord & { jid: string }) => Buffer.from(JSON.stringify(rosterItemView(r.jid, r)));

/** What JSON.stringify({ ver: String(ver), items }) gives, from the items' own JSON: one copy of each. */
function rosterDocument(ver: number, items: Map<string, Buffer>): RosterDocument {
  const parts: Buffer[] = [Buffer.from(`{"ver":"${ver}","items":[`)];
  for (const item of items.values()) {
    if (parts.length > 1) parts.push(COMMA);
    parts.push(item);
  }
  parts.push(CLOSE);
  return { ver, items, body: Buffer.concat(parts) };
}

/** Bytes of serialised rosters kept per instance (a 5,000-item roster is ~0.7 MB). */
const DOCUMENT_CACHE_BYTES = 64 * 1024 * 1024;

const isTo = (s: ItemState | null) => s?.subscription === "to" || s?.subscription === "both";

/** The roster event for an item: the item if it is in the roster, else its removal. */
const itemEvent = (account: AccountRef, jid: string, row: RosterRecord | null, ver: number): NewEvent => ({
  accountId: account.id,
  ...rosterEvent(jid, row?.inRoster ? rosterItemView(jid, row) : null, ver),
});

/** Runs one subscription transition in the caller's transaction; returns the stanzas to send after commit. */
export async function applySubscription(tx: Tx, account: AccountRef, contact: string, ev: SubscriptionEvent, opts: { status?: string | null } = {}): Promise<Applied> {
  await lockLiveAccount(tx, account);
  const before = await getItem(tx, account.id, contact);
  const t = transition(before, ev);
  if (t.ignored) return { item: before, ignored: true, stanzas: [], wasInRoster: before?.inRoster ?? false };
  const refused = await checkBound(tx, account.id, before, t.state);
  if (refused) return { item: before, ignored: true, stanzas: [], wasInRoster: false, refused };

  const kinds = new Set(t.effects.map((e) => e.kind));
  const ver = kinds.has("roster-push") ? await bumpRosterVersion(tx, account.id) : undefined;
  let item: RosterRecord | null = null;
  if (t.state === null) await deleteItem(tx, account.id, contact);
  else item = await saveItem(tx, account.id, contact, t.state, { ver, requestStored: kinds.has("store-request"), pendingStatus: opts.status ?? null });
  // Once we no longer receive the contact's presence, what we stored of it is stale (§3.3, §3.2.3),
  // and the streams must hear that each resource is unavailable (§3.2.2: the contact's server sends
  // unavailable after unsubscribed, which §4.4.3 no longer lets through once `to` is gone).
  const gone = isTo(before) && !isTo(t.state) ? await clearContactPresence(tx, account.id, contact) : [];

  const stanzas: Stanza[] = [];
  const events: NewEvent[] = [];
  for (const effect of t.effects) {
    switch (effect.kind) {
      case "send":
        stanzas.push(subscription(account.jid, contact, effect.type));
        break;
      case "send-presence":
        for (const s of await availableSessions(tx, account.id)) stanzas.push(presence(`${account.jid}/${s.resource}`, contact, null, s));
        break;
      case "send-unavailable":
        for (const s of await availableSessions(tx, account.id)) stanzas.push(presence(`${account.jid}/${s.resource}`, contact, "unavailable"));
        break;
      case "deliver":
        if (ev.kind === "inbound") events.push({ accountId: account.id, ...event("subscription", { jid: contact, type: ev.type, ...(opts.status ? { status: opts.status } : {}) }) });
        break;
      case "roster-push":
        events.push(itemEvent(account, contact, item, ver!));
        break;
      case "store-request":
      case "clear-request":
        break; // persisted with the item's pendingIn flag above
    }
  }
  events.push(...contactsGone(account.id, gone));
  if (events.length) await appendEvents(tx, events);
  return { item, ignored: false, stanzas, wasInRoster: before?.inRoster ?? false };
}

/**
 * Whether If-None-Match matches roster version `ver` (RFC 9110 §13.1.2: weak comparison, and `*`
 * matches any current representation). The bare version, unquoted as the body's `ver` shows it,
 * matches too: a lenient reading for clients that echo `ver`.
 */
function notModified(ifNoneMatch: string, ver: number): boolean {
  return ifNoneMatch.split(",").some((raw) => {
    const tag = raw.trim().replace(/^W\//, "");
    return tag === "*" || tag === `"${ver}"` || tag === String(ver);
  });
}

export class Roster {
  /**
   * Serialised rosters by account. Every roster change bumps the version in its own transaction
   * (RFC 6121 §2.6, the ETag), so a document whose version is still the account's current one is
   * exactly what a fresh read would give, on every instance: each request reads the version first.
   */
  private readonly documents = new LRUCache<number, RosterDocument>({ maxSize: DOCUMENT_CACHE_BYTES, sizeCalculation: (d) => 2 * d.body.length }); // the body and its items
  /** Full reads of a roster (the others only read what changed), for tests. */
  readonly stats = { fullReads: 0 };
  /** Reads in progress, by account: concurrent misses share one. */
  private readonly building = new Map<number, Promise<RosterDocument>>();

  constructor(
    private readonly db: Database,
    private readonly delivery: Delivery,
    private readonly blocks: BlockCheck = NO_BLOCKS,
  ) {}

  /**
   * XEP-0191 §3.3: nothing is routed to a JID the account blocked (the unavailable sent when the
   * block started was the last); a removal, a denial or an unsubscription changes the roster here
   * only, as Prosody's mod_blocklist drops such presence. Subscribing and approving are refused
   * (400 blocked, in act). The list is read in `tx`, which holds the account lock that
   * PUT /v1/blocklist takes too: a block committed a moment ago counts, whatever this instance cached.
   */
  private async routable(tx: Tx, account: AccountRef, contact: string, stanzas: Stanza[]): Promise<Stanza[]> {
    return stanzas.length > 0 && (await this.blocks.blocksJid(account.id, contact, tx)) ? [] : stanzas;
  }

  /**
   * A contact named in a path: a bare JID other than the account's own. One to add, or to ask or
   * give a subscription (`adds`), is spelt as her server spells it; an item to remove is taken in
   * any spelling (one made before that check).
   */
  contact(account: AccountRef, raw: string, adds = false): string {
    const j = parseJid(raw);
    if (!j || j.resource) throw new AppError("invalid-jid", `"${raw}" is not a bare JID (RFC 7622)`, { field: "params.jid" });
    if (adds) assertAddressSpeltAlike(j, "params.jid", "her answers and presence would come from there, for another contact");
    const contact = jidToString(j);
    if (contact === account.jid) throw new AppError("invalid-jid", "an account cannot be its own contact", { field: "params.jid" });
    return contact;
  }

  /** GET /v1/roster: the roster as JSON (ver and items), or null when `ifNoneMatch` is current (304). */
  async read(accountId: number, ifNoneMatch: string | undefined): Promise<{ etag: string; json: Buffer | null }> {
    // The version alone decides a 304, and whether the document we keep is current.
    const ver = await currentRosterVersion(this.db.pool, accountId);
    // An id that is gone has an empty roster: it is no account's (a caller's cached id, src/http/context.ts).
    if (ver === null) throw new AppError("account-not-found", "the account was deleted");
    const current = `"${ver}"`;
    if (ifNoneMatch && notModified(ifNoneMatch, ver)) return { etag: current, json: null };
    const cached = this.documents.get(accountId);
    let doc = cached?.ver === ver ? cached : await (this.building.get(accountId) ?? this.build(accountId, cached));
    // A read that started before the change we saw: never answer with less than version `ver`.
    if (doc.ver < ver) doc = await this.build(accountId, this.documents.get(accountId));
    return { etag: `"${doc.ver}"`, json: doc.body };
  }

  /** Brings the kept document up to date (or reads the roster in full), serialises it once and keeps it for its version. */
  private build(accountId: number, kept: RosterDocument | undefined): Promise<RosterDocument> {
    const p = (kept ? this.advance(accountId, kept) : this.readFull(accountId))
      .then((doc) => {
        if ((this.documents.get(accountId)?.ver ?? -1) <= doc.ver) this.documents.set(accountId, doc);
        return doc;
      })
      .finally(() => {
        if (this.building.get(accountId) === p) this.building.delete(accountId);
      });
    this.building.set(accountId, p);
    return p;
  }

  /** One statement, one snapshot: every item, serialised. */
  private async readFull(accountId: number): Promise<RosterDocument> {
    this.stats.fullReads++;
    const { ver, items } = await rosterSnapshot(this.db.pool, accountId);
    return rosterDocument(ver, new Map(items.map((r) => [r.jid, itemJson(r)])));
  }

  /**
   * `kept` and the items saved since its version (each change saves its item at the version it
   * bumps to): a change of 1 of 5,000 items reads and serialises one. A new item (its place is
   * Postgres' collation order) or one deleted since (rows are deleted: the count tells) means a
   * full read instead.
   */
  private async advance(accountId: number, kept: RosterDocument): Promise<RosterDocument> {
    const { ver, count, changed } = await rosterChanges(this.db.pool, accountId, kept.ver);
    const items = kept.items;
    // Taken by another update already (they ran side by side): read in full.
    if (!items) return this.readFull(accountId);
    kept.items = null;
    for (const r of changed) {
      if (!r.inRoster) items.delete(r.jid);
      else if (items.has(r.jid)) items.set(r.jid, itemJson(r));
      else return this.readFull(accountId);
    }
    return items.size === count ? rosterDocument(ver, items) : this.readFull(accountId);
  }

  /** PUT /v1/roster/{jid}: name and groups; no subscription change (§2.4). */
  async put(account: AccountRef, contact: string, fields: { name?: string | null; groups?: string[] }): Promise<{ item: RosterItemView; created: boolean }> {
    return this.db.transaction(async (tx) => {
      await lockLiveAccount(tx, account);
      const before = await getItem(tx, account.id, contact);
      // A PUT that repeats the item changes nothing: no new `ver` (the ETag stays valid), no event.
      if (before?.inRoster && (fields.name === undefined || fields.name === before.name) && (fields.groups === undefined || isDeepStrictEqual(fields.groups, before.groups)))
        return { item: rosterItemView(contact, before), created: false };
      const state = { subscription: before?.subscription ?? "none", askOut: before?.askOut ?? false, pendingIn: before?.pendingIn ?? false, approved: before?.approved ?? false, inRoster: true } as const;
      await checkBound(tx, account.id, before, state);
      const ver = await bumpRosterVersion(tx, account.id);
      const row = await saveItem(tx, account.id, contact, state, { ...fields, ver });
      await appendEvents(tx, [itemEvent(account, contact, row, ver)]);
      return { item: rosterItemView(contact, row), created: !before?.inRoster };
    });
  }

  /** DELETE /v1/roster/{jid}: removal with the unsubscribe/unsubscribed of §2.5.2. */
  async remove(account: AccountRef, contact: string): Promise<void> {
    const r = await this.delivery.transaction(async (tx, send) => {
      const applied = await applySubscription(tx, account, contact, { kind: "remove" });
      await send(account.id, await this.routable(tx, account, contact, applied.stanzas));
      return applied;
    });
    if (r.ignored) throw new AppError("not-found", `${contact} is not in the roster`);
  }

  /** subscribe, approve (subscribed), deny (unsubscribed), unsubscribe: §3.1-§3.4. */
  async act(account: AccountRef, contact: string, type: SubscriptionStanza): Promise<RosterItemView> {
    const r = await this.delivery.transaction(async (tx, send) => {
      const applied = await applySubscription(tx, account, contact, { kind: "outbound", type });
      // XEP-0191 §3.3: a request or an approval must reach the contact, or the item would say
      // ask="subscribe" (or "from", her request consumed) with nothing sent; so with the contact
      // blocked the throw rolls the transition back. Checked here, under the account lock (taken
      // by applySubscription): a block committed while this request waited for it counts.
      if (type === "subscribe" || type === "subscribed") await this.blocks.assertNotBlocked(account.id, contact, "params.jid", tx);
      // Nothing to cancel with a JID that is not in the roster (§3.3.2: an unsubscription cancels
      // the account's subscription, and there is neither one nor a request of ours to withdraw;
      // a stranger's stored request to us is no roster item): the throw rolls the transition back,
      // and nothing is sent. (A retry of an unsubscription that went through finds the item, and
      // answers as the first did.)
      if (type === "unsubscribe" && !applied.wasInRoster) throw new AppError("not-subscribed", `${contact} is not in the roster: there is no subscription to cancel`, { field: "params.jid" });
      // A denial (§3.2) of a JID the account has no record of changes nothing and sends nothing
      // (A.2.4 ignores it), and answers 200 as a retry of a denial that went through must.
      await send(account.id, await this.routable(tx, account, contact, applied.stanzas));
      return applied;
    });
    return rosterItemView(contact, r.item);
  }

  /** GET /v1/subscription-requests: inbound requests awaiting an answer (§3.1.3). */
  async pending(accountId: number): Promise<{ jid: string; status?: string; receivedAt: string }[]> {
    const rows = await pendingRequests(this.db.prisma, accountId);
    return rows.map((r) => ({ jid: r.jid, ...(r.pendingStatus ? { status: r.pendingStatus } : {}), receivedAt: (r.pendingInAt ?? new Date(0)).toISOString() }));
  }
}
