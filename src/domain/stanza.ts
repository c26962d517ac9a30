// Stanzas a use case asks to send, described as data (never XML): the outbound port renders them
// (src/xmpp/render.ts) and owns the link. Keeping them as data lets services be tested without an
// XMPP server and lets one adapter decide how and when they reach the wire.
import type { ErrorCode } from "./errors.js";
import type { LangText, MessageType, OutboundMessage } from "./message.js";
import type { SubscriptionStanza } from "./subscription.js";

export interface PresenceContent {
  show?: string | null;
  status?: LangText | null;
  priority?: number | null;
}

/** XEP-0203 §4: the time a stanza was first sent, and the entity that delayed it. */
export interface Delay {
  stamp: string;
  from: string;
}

/** A stanza we received, as far as an error reply needs it (RFC 6120 §8.3: same name and id, back to the sender). */
export interface StanzaRef {
  name: "message" | "presence" | "iq";
  from: string;
  id: string | null;
}

export type Stanza =
  /** RFC 6121 §5.2 message; id and XEP-0359 origin-id are the message id. */
  | ({ kind: "message" } & OutboundMessage)
  /**
   * RFC 6121 §4.7 presence: available (type null), unavailable or probe. `delay` (XEP-0203): when
   * it was sent first and who kept it since, on the account's last unavailable presence answering
   * a probe (§4.3.2); `stamp` in UTC, `YYYY-MM-DDThh:mm:ss.sssZ` (XEP-0082).
   */
  | ({ kind: "presence"; from: string; to: string; type: "unavailable" | "probe" | null; delay?: Delay } & PresenceContent)
  /** RFC 6121 §3 subscription stanza from the account's bare JID. */
  | { kind: "subscription"; from: string; to: string; type: SubscriptionStanza }
  /** XEP-0184 §5 `received` for the message `id` we were sent, of its type (ackType; none: an outbox row from before). */
  | { kind: "receipt"; from: string; to: string; id: string; stanzaId: string; type?: AckType | null }
  /** RFC 6120 §8.3 error reply to a stanza we received, from `from` (one of our addresses). */
  | { kind: "error"; from: string; replyTo: StanzaRef; code: ErrorCode; text?: string }
  /** XEP-0045 §7.2: enter a room (`to`: room@service/nick), with what history to send (§7.2.15). */
  | { kind: "muc-join"; from: string; to: string; password: string | null; history: { since?: string; maxStanzas?: number } | null }
  /** XEP-0045 §10.1.2: accept the default configuration of a room we just created (an instant room). */
  | { kind: "muc-instant"; from: string; to: string; id: string }
  /** XEP-0410 §3.2: a ping to the account's own nick in a room (src/domain/muc-self-ping.ts). */
  | { kind: "muc-self-ping"; from: string; to: string; id: string }
  /** XEP-0045 §8.1: change a room's subject. */
  | { kind: "muc-subject"; from: string; to: string; id: string; subject: string }
  /**
   * A change to an earlier message (src/services/message-actions.ts): `ref` is its wire id. `type`:
   * the original's (absent: chat; groupchat to a room, XEP-0045 §7.4).
   */
  | { kind: "message-action"; from: string; to: string; id: string; type?: MessageType; action: MessageAction }
  /** XEP-0045 §7.8.2: ask the room to invite `invitee`. */
  | { kind: "muc-invite"; from: string; to: string; id: string; invitee: string; reason: string | null };

export type MessageAction =
  /**
   * XEP-0308: the message's new text. `resend`: the rest of the original, which a correction repeats
   * (§Business Rules: "re-send the entire stanza, only altering id and the payloads being
   * corrected"); absent in outbox rows older than it, which carry the new text alone.
   */
  | { kind: "replace"; ref: string; body: LangText; lang: string | null; resend?: Resend }
  /** XEP-0424 (v0.4): unsend it. */
  | { kind: "retract"; ref: string }
  /** XEP-0444: the account's whole set of reactions to it (empty: none). */
  | { kind: "reactions"; ref: string; emojis: string[] }
  /** XEP-0333: displayed (everything up to it was read), in the thread of the message marked (absent in outbox rows older than it). */
  | { kind: "displayed"; ref: string; thread?: string | null };

/** What a correction repeats of the message it corrects (its id, addresses, type and text aside). */
export type Resend = Pick<OutboundMessage, "subject" | "thread" | "receipt" | "state" | "ext">;

/** A presence stanza; only show, status and priority are taken from `content` (a session row, an HTTP body). */
export const presence = (from: string, to: string, type: "unavailable" | "probe" | null, content: PresenceContent = {}, delay?: Delay): Stanza => ({
  kind: "presence",
  from,
  to,
  type,
  show: content.show ?? null,
  status: content.status ?? null,
  priority: content.priority ?? null,
  ...(delay ? { delay } : {}),
});

export const subscription = (from: string, to: string, type: SubscriptionStanza): Stanza => ({ kind: "subscription", from, to, type });

export type AckType = "chat" | "normal" | "headline";

/**
 * XEP-0184 §5: "It is a good practice to use the same message type as the message that requested
 * the receipt". Not for groupchat: such a receipt goes to the room's bare JID, and the ones owed
 * here are to a sender's own JID (a room's messages ask for none: src/services/inbound-room.ts),
 * so it goes without a type (normal).
 */
export function ackType(acknowledged: string | null | undefined): AckType | null {
  return acknowledged === "chat" || acknowledged === "normal" || acknowledged === "headline" ? acknowledged : null;
}
