// Multi-user chat (XEP-0045) as data: what the rooms an account joined tell it (presence with
// muc#user items and status codes, XEP-0045 §7.2 and §17.1), and the rules that read it. Pure:
// the XMPP adapter parses and renders, src/services/rooms*.ts act.

import { jidToString, parseJid, prepareResourcepart, type Jid } from "./jid.js";
import type { LangText } from "./message.js";
import { presence, type Stanza } from "./stanza.js";
import { resourceprepFolded } from "./stringprep-fold.js";

/** The resource an account's room occupancy uses: rooms see `localpart@domain/rooms`. */
export const ROOM_RESOURCE = "rooms";

/** A room's address (XEP-0045 §4.1: room@service), a JID with a localpart and no resource; null for any other JID. */
export const roomAddress = (jid: Jid | null): string | null => (jid && jid.local !== undefined && jid.resource === undefined ? jidToString(jid) : null);

/** Rooms an account is in or joining (a refused join is none): the room_cap trigger's number (its migration). */
export const MAX_ROOMS = 1000;

/**
 * A resourcepart a session may take (RFC 7622 §3.4), prepared, or null: ROOM_RESOURCE is not one.
 * What comes to `localpart@domain/rooms` is the rooms' (src/services/inbound.ts), so a session of
 * that name would hear nothing sent to it; nor is one the XMPP server spells otherwise
 * (resourceprepFolded), for the same reason.
 */
export function prepareSessionResource(input: string): string | null {
  const r = prepareResourcepart(input);
  return r === ROOM_RESOURCE || (r !== null && resourceprepFolded(r) !== r) ? null : r;
}

/**
 * Ids of what the account asks of a room that the room may refuse with an error message (XEP-0045
 * §8.1: a subject change by someone not allowed to; §7.8.2: an invitation), so that its error,
 * which nothing else records, is known for what it answers: a `room` event of this kind.
 */
const ROOM_REQUESTS = { subject: ["muc-subject-", "subject-failed"], invite: ["muc-invite-", "invitation-failed"] } as const;
export const roomRequestId = (what: keyof typeof ROOM_REQUESTS, uuid: string): string => `${ROOM_REQUESTS[what][0]}${uuid}`;
export function refusedRoomRequest(id: string | null): "subject-failed" | "invitation-failed" | null {
  for (const [prefix, kind] of Object.values(ROOM_REQUESTS)) if (id?.startsWith(prefix)) return kind;
  return null;
}

/** The account's occupant JID in every room it joins. */
export const occupantJid = (accountJid: string): string => `${accountJid}/${ROOM_RESOURCE}`;

/** The account's localpart when `jid` is one of our accounts' occupant JIDs (localpart@domain/rooms), else null. */
export function occupantLocalpart(jid: string, domain: string): string | null {
  const j = parseJid(jid);
  return j?.local && j.domain === domain && j.resource === ROOM_RESOURCE ? j.local : null;
}

/** Whether `nick` can be the resourcepart of the occupant JID room/nick (XEP-0045 §7.2.2, RFC 7622 §3.4). */
export const isOccupantNick = (nick: string): boolean => prepareResourcepart(nick) !== null;

/** XEP-0045 §7.14: leaving a room is unavailable presence to the occupant's room JID. */
export const exitRoom = (accountJid: string, room: string, nick: string): Stanza => presence(occupantJid(accountJid), `${room}/${nick}`, "unavailable");

/** A room an account joined, as a rejoin needs it. */
export interface JoinedRoom {
  room: string;
  nick: string;
  password: string | null;
  /** The last room message seen, and when the join was confirmed. */
  lastMessageAt: Date | null;
  joinedAt: Date | null;
}

/** A join's history request (XEP-0045 §7.2.15). */
export type HistoryRequest = { since?: string; maxStanzas?: number };

/**
 * A join's `since` as §7.2.15 requires it, XEP-0082's DateTime profile (2002-09-10T23:08:25.000Z),
 * from the RFC 3339 forms an HTTP client may send (a space or a lower-case t, z; an offset):
 * Prosody ignores a `since` it cannot read and sends its default history. Null: no instant.
 */
export function historySince(raw: string): string | null {
  const at = new Date(raw);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

/** A nick some room would show: Prosody refuses one of white space alone ("Invisible Nicknames are forbidden", modify/not-allowed). */
export const visibleNick = (nick: string): boolean => /\S/u.test(nick);

/** Entering a room under `nick` (XEP-0045 §7.2.1), with its password (§7.2.6) and the history asked for (§7.2.15). */
export const joinRoom = (accountJid: string, room: string, j: { nick: string; password?: string | null; history?: HistoryRequest | null }): Stanza => ({
  kind: "muc-join",
  from: occupantJid(accountJid),
  to: `${room}/${j.nick}`,
  password: j.password ?? null,
  history: j.history ?? null,
});

/**
 * Entering a room again (XEP-0045 §7.2), asking only for the history since the last room message
 * seen (§7.2.15; none since the join: since the join), so what was missed while out is not lost.
 * A millisecond after it: the time is kept to the millisecond, and a room that stamps history
 * finer (ejabberd: microseconds) would otherwise send that last message again, as `since` is
 * inclusive.
 */
export const rejoinRoom = (accountJid: string, r: JoinedRoom): Stanza =>
  joinRoom(accountJid, r.room, { nick: r.nick, password: r.password, history: { since: new Date((r.lastMessageAt ?? r.joinedAt ?? new Date()).getTime() + 1).toISOString() } });

/**
 * A rejoin refused for now is sent again after 5 s, then after twice as long each time, at most
 * every 10 minutes (RFC 6120 §8.3.2: an error of type "wait" asks to retry after waiting).
 */
export const REJOIN_RETRY_MS: readonly [number, number] = [5_000, 600_000];
/**
 * A join (a request's, or a rejoin) the room has not answered within 10 s is sent again, then after
 * twice as long each time, at most every 10 minutes, until the room answers (its presence or
 * error can be lost: a room's server restarting, a hung server-to-server link).
 */
export const JOIN_RESEND_MS: readonly [number, number] = [10_000, 600_000];
/** How often the link holder looks for rejoins and unanswered joins due again (one indexed EXISTS when none is). */
export const REJOIN_SWEEP_MS = 2_000;

/**
 * Whether a room's refusal of a rejoin holds only for now: RFC 6120 §8.3.2 type "wait" (Prosody's
 * "Component unavailable", a MUC component that is not connected, is wait/remote-server-timeout),
 * or the room's server could not be reached (§8.3.3.14 remote-server-not-found).
 */
export const refusedForNow = (error: { type: string; condition: string }): boolean => error.type === "wait" || error.condition === "remote-server-not-found" || error.condition === "remote-server-timeout";

/**
 * How the account's latest nick change (§7.6) ended other than renamed, kept for the request
 * waiting on it (src/services/room-joins.ts nickChangeAnswer) until the next change or join:
 * refused (§7.6.3; or the taken nick a rejoin under it fell back from), or cut short, the account
 * out of the room during it (removed by no one's decision, 333/332; or the link lost), entering
 * again under the nick it had. Kept apart from the row's `error`, which a rejoin's refusals for
 * now overwrite and its success clears (src/db/room-rejoins.ts).
 */
export type NickAnswer = { refused: { type: string; condition: string; text?: string } } | { cutShort: true };

/** Id prefix of the instant-room configuration we send (§10.1.2): its answer completes a join that created the room. */
export const INSTANT_PREFIX = "muc-instant-";

/** How long a join waits for the room's answer before it is reported as unavailable. */
export const JOIN_TIMEOUT_MS = 10_000;

/**
 * How long a join, once the room presented the account (status 110), waits for the subject message
 * that ends it (§7.2.16) before answering without it: both servers send it within milliseconds,
 * and one that never does must not make joins fail or stall (within JOIN_TIMEOUT_MS in any case).
 */
export const SUBJECT_GRACE_MS = 2_000;

/**
 * A subject message's text as the room's subject: null when the room has none, which it says with
 * an empty <subject/> (§8.1; Prosody and ejabberd send one to every newcomer, §7.2.16).
 */
export function roomSubject(subject: LangText): LangText | null {
  const texts = typeof subject === "string" ? [subject] : Object.values(subject);
  return texts.every((t) => t === "") ? null : subject;
}

export const MUC_ROLES = ["moderator", "participant", "visitor", "none"] as const;
export type MucRole = (typeof MUC_ROLES)[number];
export const MUC_AFFILIATIONS = ["owner", "admin", "member", "outcast", "none"] as const;
export type MucAffiliation = (typeof MUC_AFFILIATIONS)[number];

/** XEP-0045 §17.1 status codes the gateway acts on. */
export const STATUS = {
  /** The presence is about the receiving occupant itself. */
  self: 110,
  /** The room was created by this join (it is locked until configured: §10.1). */
  created: 201,
  /** The service changed the requested nick. */
  nickAssigned: 210,
  /** Banned from the room. */
  banned: 301,
  /** Nickname changed (the item carries the new nick). */
  nickChanged: 303,
  /** Kicked from the room. */
  kicked: 307,
  /** Removed because of an affiliation change. */
  affiliationRemoved: 321,
  /** Removed because the room became members-only. */
  membersOnly: 322,
  /**
   * Removed because the service is shutting down: ejabberd sends it to every occupant when its
   * MUC module stops, also for a module restart (reload_config, restart_module) that takes seconds.
   */
  shutdown: 332,
  /**
   * Removed because of an error (registered by XEP-0045 §17.1): Prosody removes an occupant whose
   * side answered the room with an error (a bounce) and says so; ejabberd (23.01) removes it too,
   * with no status code but 110 (only a <status/> text).
   */
  errorRemoved: 333,
} as const;

/** The muc#user payload of a presence from a room occupant (room@service/nick). */
export interface MucPresence {
  role: MucRole;
  affiliation: MucAffiliation;
  /** The occupant's real JID, when the room shows it (non-anonymous rooms, or to moderators). */
  jid: string | null;
  /** With status 303: the occupant's new nick. */
  newNick: string | null;
  statuses: number[];
  /** A kick's or ban's <item><reason/> (§8.2, §9.1). */
  reason?: string | null;
  /** The nick of the moderator or admin who kicked or banned (<item><actor nick/>, §8.2, §9.1). */
  actor?: string | null;
  /** The room was destroyed (§10.9: <destroy/>): why, and the room its owner named instead. */
  destroyed?: { reason: string | null; alternate: string | null } | null;
}

/** A mediated invitation (XEP-0045 §7.8.2) or a direct one (XEP-0249), as received. */
export interface RoomInvitation {
  room: string;
  from: string;
  reason: string | null;
  password: string | null;
  /** "mediated": relayed by the room; "direct": sent by the inviter itself. */
  via: "mediated" | "direct";
  /** XEP-0045 §7.8.2: the room relays that `from` declined the account's invitation (not one to the account). */
  declined?: boolean;
}

const asRole = (v: string | undefined): MucRole => ((MUC_ROLES as readonly string[]).includes(v ?? "") ? (v as MucRole) : "none");
const asAffiliation = (v: string | undefined): MucAffiliation => ((MUC_AFFILIATIONS as readonly string[]).includes(v ?? "") ? (v as MucAffiliation) : "none");

/** A muc#user <item/> (its attributes, and its <reason/> and <actor nick/>) and the <status code/> values, normalised (unknown values are "none", bad codes dropped). */
export function mucPresence(
  item: { role?: string; affiliation?: string; jid?: string; nick?: string; reason?: string | null; actor?: string | null } | null,
  codes: string[],
  destroyed: MucPresence["destroyed"] = null,
): MucPresence {
  return {
    destroyed,
    role: asRole(item?.role),
    affiliation: asAffiliation(item?.affiliation),
    jid: item?.jid ?? null,
    newNick: item?.nick ?? null,
    statuses: codes.map((c) => Number.parseInt(c, 10)).filter((n) => Number.isInteger(n) && n >= 100 && n <= 999),
    reason: item?.reason || null,
    actor: item?.actor || null,
  };
}

/**
 * Why an occupant left, from an unavailable presence's status codes (XEP-0045 §17.1) or the room's
 * <destroy/> (§10.9); null: it just left. "dropped": removed by no one's decision, because of an
 * error (333) or because the service is shutting down (332): the room (or the service once it is
 * back) takes the occupant again if it enters again.
 */
export function departure(muc: Pick<MucPresence, "statuses" | "destroyed">): "kicked" | "banned" | "nick-changed" | "removed" | "destroyed" | "dropped" | null {
  const { statuses } = muc;
  if (muc.destroyed) return "destroyed";
  if (statuses.includes(STATUS.banned)) return "banned";
  if (statuses.includes(STATUS.kicked)) return "kicked";
  if (statuses.includes(STATUS.nickChanged)) return "nick-changed";
  if (statuses.includes(STATUS.errorRemoved) || statuses.includes(STATUS.shutdown)) return "dropped";
  if (statuses.includes(STATUS.affiliationRemoved) || statuses.includes(STATUS.membersOnly)) return "removed";
  return null;
}
