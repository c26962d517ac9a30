// Stanzas from the XMPP network, parsed and validated by the XMPP adapter into plain data that
// the inbound use cases act on (src/services/inbound.ts). Addresses are kept both as received
// (for replies and for what the account is shown) and parsed (null when not a valid JID).
import type { Attachment, Marker } from "./message-features.js";
import type { Jid } from "./jid.js";
import type { ChatState, LangText } from "./message.js";
import { ROOM_RESOURCE, type MucPresence, type RoomInvitation } from "./muc.js";

interface Addressed {
  /** The stanza's `from` and `to` as received. */
  fromRaw: string | null;
  toRaw: string | null;
  from: Jid | null;
  to: Jid | null;
  id: string | null;
}

export type InboundMessageType = "chat" | "normal" | "headline" | "groupchat" | "error";

export interface InboundMessage extends Addressed {
  kind: "message";
  /** RFC 6121 §5.2.2: an unknown type is handled as "normal". */
  type: InboundMessageType;
  body: LangText | null;
  subject: LangText | null;
  thread: string | null;
  lang: string | null;
  state: ChatState | null;
  /** XEP-0184 <request/>. */
  receiptRequested: boolean;
  /** XEP-0184 <received id=.../>: the id of one of our messages. */
  receivedId: string | null;
  /** RFC 6120 §8.3: the error of a type="error" message. */
  error: { type: string; condition: string; text?: string } | null;
  /** XEP-0359 <origin-id/>: the sender's own id (a room's reflection of our message carries ours). */
  originId: string | null;
  /** XEP-0359 <stanza-id by/> given by the sender's bare JID: a room's id for its message (absent: none, or not from a room). */
  roomStanzaId?: string | null;
  /** XEP-0421 <occupant-id/>: a room's stable id for the sending occupant (absent: the room gives none). */
  occupantId?: string | null;
  /** XEP-0203 <delay stamp/>: when the message was first sent (room history, offline storage). */
  delay: string | null;
  /** A room invitation it carries (XEP-0045 §7.8.2 mediated, XEP-0249 direct). */
  invitation: RoomInvitation | null;
  /** It carries a muc#user payload: from a room occupant (a private message, XEP-0045 §7.5). */
  mucUser: boolean;
  /** Message features it carries (null: none, the common case). */
  features?: InboundFeatures | null;
}

/**
 * A note to self routed back (RFC 6121 §8.5.3): a message from the account to its own JID goes out
 * over the link and the server hands it back. Only this gateway sends from its domain, so it is
 * the account's own; its outbound row is what its sessions see, as of any message it sends, and
 * stored again it would be a second copy, received and unread. An error is the server's bounce.
 */
export const ownEcho = (m: Pick<InboundMessage, "type" | "from" | "to">, domain: string): boolean =>
  m.type !== "error" && m.from?.domain === domain && !!m.from.local && m.from.local === m.to?.local && m.to.domain === domain;

/**
 * Whether a message to a full JID with no session to take it is refused (RFC 6121 §8.5.3.2.1): one
 * of type normal or headline that says something new (chat is taken as if to the bare JID, and
 * groupchat is the rooms' concern). What only acknowledges or changes an earlier message (a
 * receipt, a marker, a correction, a retraction, reactions) is applied whatever its type, so that
 * a peer's answer to a session that has since ended is not lost.
 */
export function refusedWithoutSession(m: Pick<InboundMessage, "type" | "body" | "subject" | "receivedId" | "features">): boolean {
  if (m.type !== "normal" && m.type !== "headline") return false;
  const f = m.features;
  if (m.receivedId !== null || f?.replace || f?.retract || f?.reactions || f?.marker) return false;
  return m.body !== null || m.subject !== null || !!f?.attachments;
}

/** What a message says about itself or an earlier message (API.md "Message features"). */
export interface InboundFeatures {
  /** XEP-0308: it corrects the sender's message with this id. */
  replace?: string;
  /** XEP-0424: it retracts the sender's message with this id. */
  retract?: string;
  /** XEP-0444: the sender's whole set of reactions to the message with this id. */
  reactions?: { id: string; emojis: string[] };
  /** XEP-0333 marker for one of our messages. */
  marker?: { name: Marker; id: string };
  /** XEP-0461: it replies to the message with this id; `quoteEnd`: the fallback quote's end (XEP-0428). */
  reply?: { id: string; quoteEnd: number | null };
  attachments?: Attachment[];
  /** XEP-0333: the sender asks for markers. */
  markable?: boolean;
}

export type PresenceShow = "away" | "chat" | "dnd" | "xa";

export interface InboundPresence extends Addressed {
  kind: "presence";
  /** The type attribute, "available" when absent (RFC 6121 §4.7.1). */
  type: string;
  show: PresenceShow | null;
  status: LangText | null;
  /** The first <status/> text, as a subscription request's note. */
  statusText: string | null;
  /** Clamped to -128..127 (RFC 6121 §4.7.2.3). */
  priority: number;
  /** From a room occupant: its muc#user payload (XEP-0045 §7.2.3). */
  muc: MucPresence | null;
  /** RFC 6120 §8.3: the error of a type="error" presence (a room refusing a join, §7.2.6-§7.2.10). */
  error: { type: string; condition: string; text?: string } | null;
  /** RFC 6120 §8.3.3.5: the new address a <gone/> error names (a destroyed room's alternate), as a bare JID. */
  goneTo?: string | null;
}

export type InboundStanza = InboundMessage | InboundPresence;

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);

/**
 * Presence to the account's occupant JID (its rooms' resource) that is the rooms' to handle: not
 * subscription stanzas and probes, which are the bare JID's whatever the resource (RFC 6121
 * §3.1.3, §3.2.3, §4.3.2).
 */
export const toRooms = (s: InboundPresence): boolean => s.to?.resource === ROOM_RESOURCE && !SUBSCRIPTION_TYPES.has(s.type) && s.type !== "probe";
