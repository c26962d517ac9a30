// The component's iq duties: service discovery (XEP-0030) for the domain, for each hosted
// account and for each of its online sessions, ping (XEP-0199). Every other iq get/set gets
// service-unavailable from @xmpp/iq's callee (RFC 6120 §8.4), as do queries to accounts that do
// not exist (RFC 6121 §8.5.1) and to resources that are not online (§8.5.3.1), and disco#info to
// an account's bare JID from an entity that may not see its presence (XEP-0030 §8). A remote entity
// asking for an account's blocklist (XEP-0191) is one of those: the list is the account's own,
// read over HTTP only.
import xml, { type Element } from "@xmpp/xml";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { ROOM_RESOURCE } from "../domain/muc.js";
import type { Accounts } from "../services/accounts.js";
import { NO_BLOCKS, type BlockCheck } from "../services/ports.js";
import { errorElement } from "./errors.js";
import type { XmppLink } from "./link.js";
import { NS } from "./ns.js";

/**
 * What Balcony reads (src/xmpp/parse.ts) and writes (src/xmpp/render.ts) for its accounts, each
 * the feature its XEP says to announce, so senders know what they may use (XEP-0030 §3). Left
 * out: XEP-0424 before v0.4 (message-retract:0) is read but never sent; XEP-0428 fallbacks are
 * read only for replies; XEP-0359 ids are announced by entities that stamp stanza-ids, not us.
 */
const MESSAGE_FEATURES = [
  NS.receipts, // XEP-0184
  NS.chatStates, // XEP-0085
  NS.markers, // XEP-0333
  NS.reactions, // XEP-0444
  NS.correct, // XEP-0308
  NS.retract, // XEP-0424 (v0.4)
  NS.reply, // XEP-0461
  NS.oob, // XEP-0066
  NS.sfs, // XEP-0447 (XEP-0446 metadata, url-data sources)
  NS.muc, // XEP-0045 §6.7: the account joins rooms
  NS.conference, // XEP-0249 §3: the account receives direct invitations
];
const DOMAIN_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping];
const ACCOUNT_FEATURES = [...DOMAIN_FEATURES, ...MESSAGE_FEATURES];

/**
 * XEP-0030 §3.1 identities (categories and types from the XMPP Registrar): the account itself
 * (the bare JID, answered as its server), and each session: an HTTP client, "web" being the
 * registry's type for clients reached through a web interface.
 */
const IDENTITIES = {
  domain: { category: "server", type: "im", name: "Balcony" },
  account: { category: "account", type: "registered" },
  session: { category: "client", type: "web", name: "Balcony" },
} as const;

/** Whether a full JID's resource is online (src/db/sessions.ts: Sessions.reachable). */
export interface SessionLookup {
  reachable(accountId: number, resource: string): Promise<boolean>;
}

/** Whether the account is in a room, by the room's bare JID (src/db/room-lookups.ts inRoom). */
export interface RoomLookup {
  inRoom(accountId: number, room: string): Promise<boolean>;
}
const NO_ROOMS: RoomLookup = { inRoom: async () => false };

/** Whether a bare JID may see the account's presence: a subscription from or both (src/db/roster.ts seesPresence). */
export interface PresenceLookup {
  seesPresence(accountId: number, jid: string): Promise<boolean>;
}

/** What an iq is addressed to, and the account's id for an account or session. */
type Target = { kind: keyof typeof IDENTITIES; accountId?: number } | null;

export function registerIqHandlers(
  link: XmppLink,
  domain: string,
  accounts: Pick<Accounts, "find" | "read" | "replaced">,
  sessions: SessionLookup,
  blocks: Pick<BlockCheck, "confirmBlocks"> = NO_BLOCKS,
  rooms: RoomLookup = NO_ROOMS,
  presence: PresenceLookup = { seesPresence: async () => false },
): void {
  /**
   * What an iq is addressed to: the domain, an existing account's bare JID, one of its online
   * sessions, or none of them. RFC 6121 §8.5.3.1: an iq to a connected resource is the client's
   * to answer, and Balcony is that client; any other resource gets service-unavailable
   * (§8.5.3.2.1 and §8.5.3.2.3), which says nothing more. An account that blocked the sender is
   * no one to it, nor are its sessions (XEP-0191 §3.3: get and set are service-unavailable). A
   * block in this instance's cached list is confirmed by the committed list first (one read, for
   * blocked senders only): an unblock committed on another instance whose NOTIFY has not come yet
   * lets the sender's iqs through (src/services/blocking.ts confirmBlocks).
   * An account's bare JID is answered for the account as PostgreSQL has it: one read per such iq,
   * past the cache, whose entry may be that of an account deleted (or deleted and created again)
   * on another instance whose NOTIFY was not read here yet. Nothing else there would notice: the
   * answer reads no row under the account's id (its cached blocklist may be empty either way).
   * To a full JID the cached account is used, and a decision that found nothing under its id (no
   * session, or a block), as one whose account is gone does, reads the account once and, if its
   * id is another now, is made again with it (src/services/inbound-stale.ts).
   * The account's occupant JID (resource ROOM_RESOURCE) is its session in its rooms: an iq a room
   * it is in passes on from an occupant (XEP-0045 §7.5, from `room/nick`) is answered as one is.
   */
  async function target(stanza: Element): Promise<Target> {
    const to = parseJid(stanza.attrs.to ?? "");
    if (!to || to.domain !== domain) return null;
    if (!to.local) return to.resource ? null : { kind: "domain" };
    const account = to.resource ? await accounts.find(to.local) : await accounts.read(to.local);
    if (!account) return null;
    const from = parseJid(stanza.attrs.from ?? "");
    const decide = async (id: number): Promise<Target> => {
      if (from && (await blocks.confirmBlocks(id, stanza.attrs.from!))) return null;
      if (!to.resource) return { kind: "account", accountId: id };
      if (to.resource === ROOM_RESOURCE) return from && (await rooms.inRoom(id, jidToString(bare(from)))) ? { kind: "session", accountId: id } : null;
      return (await sessions.reachable(id, to.resource)) ? { kind: "session", accountId: id } : null;
    };
    const t = await decide(account.id);
    if (t || !to.resource) return t; // a bare JID's account was just read
    const moved = await accounts.replaced(to.local, account.id);
    return moved?.now ? decide(moved.now.id) : null;
  }

  const { iqCallee } = link.xmpp;
  // A node we do not publish (XEP-0030 §3.1): item-not-found.
  const unknownNode = () => errorElement("not-found");
  const noSuchEntity = () => errorElement("account-not-found");

  /**
   * XEP-0030 §8: the server answers disco#info to an account's bare JID for it, and "MUST return a
   * <service-unavailable/> error if ... the requesting entity is not authorized to receive presence
   * from the target entity": only an entity with a subscription from or both learns what it is.
   */
  const seesAccount = async (t: NonNullable<Target>, stanza: Element): Promise<boolean> => {
    const from = parseJid(stanza.attrs.from ?? "");
    return t.kind !== "account" || (!!from && (await presence.seesPresence(t.accountId!, jidToString(bare(from)))));
  };

  iqCallee.get(NS.discoInfo, "query", async ({ stanza, element }) => {
    const t = await target(stanza);
    if (!t || !(await seesAccount(t, stanza))) return noSuchEntity();
    if (element.attrs.node) return unknownNode();
    const features = t.kind === "domain" ? DOMAIN_FEATURES : ACCOUNT_FEATURES;
    return xml("query", { xmlns: NS.discoInfo }, xml("identity", IDENTITIES[t.kind]), ...features.map((v) => xml("feature", { var: v })));
  });

  // Balcony publishes no items: accounts are not enumerable over XMPP.
  iqCallee.get(NS.discoItems, "query", async ({ stanza, element }) => {
    if (!(await target(stanza))) return noSuchEntity();
    if (element.attrs.node) return unknownNode();
    return xml("query", { xmlns: NS.discoItems });
  });

  iqCallee.get(NS.ping, "ping", async ({ stanza }) => ((await target(stanza)) ? true : noSuchEntity()));
}
