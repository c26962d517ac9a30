// Message features (API.md "Message features (1.1)"): one model of a message's state whatever
// happened to it: replies (XEP-0461 with a XEP-0428 fallback quote), attachments (XEP-0066 OOB,
// XEP-0446 metadata in XEP-0447 file sharing), markers (XEP-0333), reactions (XEP-0444),
// corrections (XEP-0308) and retractions (XEP-0424). Pure rules: no I/O.
import { AppError } from "./errors.js";

export interface Attachment {
  url: string;
  mediaType?: string;
  name?: string;
  size?: number;
  description?: string;
}

/** What a message was sent or received with, stored as `message.ext`. */
export interface MessageExt {
  /** XEP-0461: the Balcony id of the message replied to (null: the peer referenced one we do not have). */
  replyTo?: { id: string | null };
  attachments?: Attachment[];
  /** XEP-0333: the sender asked for markers. */
  markable?: boolean;
  /**
   * A room message's sender as far as the room told (XEP-0045): the occupant's real bare JID
   * (§7.2.3: in a non-anonymous room, or to moderators) and its XEP-0421 occupant-id. Corrections
   * and retractions must come from the same (XEP-0308 and XEP-0424 §Business Rules; sameOccupant).
   */
  occupant?: Occupant;
}

/** Who an occupant is beyond its nick, when the room says (MessageExt.occupant). */
export interface Occupant {
  jid?: string;
  id?: string;
}

/**
 * XEP-0308 §Business Rules (a MUC correction's sender: "the real bare JID of the sending occupant
 * didn't change in between") and XEP-0424 (in a semi-anonymous room, "checking the occupant id from
 * XEP-0421"): whether the occupant sending a change now is the one that sent the message. Only
 * what the room told about the message's sender binds: what it did not tell cannot be compared.
 */
export function sameOccupant(then: Occupant | undefined, now: Occupant): boolean {
  if (then?.jid !== undefined && then.jid !== now.jid) return false;
  return then?.id === undefined || then.id === now.id;
}

/** On the wire, a reply names the referenced message's wire id and its author, and quotes it. */
export interface ReplyWire {
  id: string;
  to: string;
  quote: string;
}

/**
 * The id the peer knows a message by in one-to-one chat: ours is our id (our stanza id and
 * origin-id); theirs the stanza 'id' they sent it with (null: they gave none), which XEP-0461
 * (v0.3 §Using the correct ID: "the 'id' attribute on the <message>") and XEP-0333 (§Protocol
 * Format: "the 'id' of the message being marked") reference.
 */
export const wireId = (m: { direction: string; id: string; stanzaId: string | null }): string | null => (m.direction === "out" ? m.id : m.stanzaId);

/**
 * XEP-0461 §Using the correct ID: a reply names a group message by "the ID assigned to the stanza
 * by the group chat itself" (kept as `originId`; null: none, and "group chat messages without a
 * XEP-0359 stanza-id cannot be replied to"), any other by its wire id.
 */
export const replyRef = (m: { type: string; direction: string; id: string; stanzaId: string | null; originId: string | null }): string | null =>
  m.type === "groupchat" ? m.originId : wireId(m);

/**
 * XEP-0444 §Using the correct ID: a reaction names a one-to-one message by "the 'id' from a
 * XEP-0359 <origin-id> if present, or the value of the 'id' attribute on the <message> otherwise".
 * `originId` is stored only where it differs from the stanza id (src/db/inbound-writes.ts). A group
 * message (either direction) by "the ID assigned to the stanza by the group chat itself" (its
 * XEP-0359 <stanza-id by=room>, which room messages keep as `originId`): "group chat messages
 * without a XEP-0359 stanza-id cannot be reacted to" (null).
 */
export const reactionRef = (m: { type?: string; direction: string; id: string; stanzaId: string | null; originId: string | null }): string | null =>
  m.type === "groupchat" ? m.originId : m.direction === "out" ? m.id : (m.originId ?? m.stanzaId);

/**
 * A received body that only repeats an attachment's URL is the fallback for clients without
 * XEP-0066 (Conversations sends an attachment so; src/xmpp/render.ts wireBody sends ours so): no
 * text of its own, so none (null), as the account's own attachment-only message is stored. A body
 * with anything else is kept as it is. For a text by language, every language's must be a URL.
 */
export function withoutUrlEcho<T extends string | Record<string, string>>(body: T | null, attachments: readonly Attachment[] | undefined): T | null {
  if (body === null || !attachments?.length) return body;
  const echo = (t: unknown) => typeof t === "string" && attachments.some((a) => a.url === t.trim());
  return (typeof body === "string" ? echo(body) : Object.values(body).every(echo)) ? null : body;
}

/**
 * Whether a stored message says something: a body, a subject or attachments (SQL twin:
 * src/db/message-state.ts saysSomething). A chat state sent alone (XEP-0085: typing) is a
 * notification, not a message: nothing corrects (XEP-0308 §Business Rules: not "a message that
 * contains non-messaging payloads"), retracts, reacts to or marks it.
 */
export const saysSomething = (m: { body: unknown; subject: unknown; ext: unknown }): boolean =>
  m.body != null || m.subject != null || (m.ext as MessageExt | null)?.attachments != null;

/**
 * XEP-0424 §Using the correct ID: the account retracts its own group message by the stanza-id its
 * room assigned; "if a group chat does not support XEP-0359", by its origin-id (our id). Its own
 * one-to-one message by its id.
 */
export const retractionRef = (m: { type: string; id: string; originId: string | null }): string => (m.type === "groupchat" ? (m.originId ?? m.id) : m.id);

/**
 * The longest peer-supplied id a message row keeps in an indexed column (stanza_id, origin_id:
 * prisma/migrations/20261201200000_message_partial_indexes, 20261203120000_message_origin_id).
 * PostgreSQL's btree refuses an entry over ~2,700 bytes, which would fail the INSERT of the whole
 * batch (src/db/inbound-writes.ts) and leave that message refused on every retry. 256 UTF-16 units are at most 768 bytes of UTF-8,
 * next to a bare JID of at most 1023 + 1 + 253 octets (RFC 7622 §3.1, a DNS domainpart).
 */
const MAX_STORED_ID = 256;

/**
 * A peer's id as a message row stores it: null when longer than MAX_STORED_ID. Nothing can then
 * reference the message by it (XEP-0308, XEP-0424, XEP-0444, XEP-0461 and XEP-0333 references
 * find nothing, as for a message sent without an id), but the message itself is stored and
 * delivered; the event and the receipt (XEP-0184) keep the id as received.
 */
export const storedId = (id: string | null | undefined): string | null => (id != null && id.length <= MAX_STORED_ID ? id : null);

/**
 * The origin-id worth storing for a peer's message (XEP-0359 §3): none when it is the stanza id
 * (what most clients send; references by either then find the stanza id), nor one too long to be
 * an index key (storedId): a reference by it then simply finds nothing.
 */
export function storedOriginId(stanzaId: string | null, originId: string | null): string | null {
  return originId !== stanzaId ? storedId(originId) : null;
}

export const MARKERS = ["received", "displayed", "acknowledged"] as const;
export type Marker = (typeof MARKERS)[number];

/** XEP-0333 §4: markers only move forward (received < displayed < acknowledged). */
export function betterMarker(current: string | null, next: Marker): boolean {
  return MARKERS.indexOf(next) > (current === null ? -1 : MARKERS.indexOf(current as Marker));
}

export const MAX_REACTIONS = 20;
/**
 * XEP-0444 §Business Rules: a reaction is "Unicode codepoints that can be displayed as a single
 * emoji" (Unicode TS #51). An RGI emoji (fully qualified: "❤️", "👍🏽", "🏳️‍🌈"), or one emoji
 * character alone or with the emoji presentation selector U+FE0F (TS #51 ED-3, ED-9a: "❤", "☺",
 * "✔" are emoji whose RGI form adds U+FE0F, and clients send them bare), or a keycap with or
 * without U+FE0F (ED-14c). Digits, '#' and '*' are Emoji code points too, but alone they are
 * text: only with U+FE0F or as a keycap. Built at run time: the `v` flag (Unicode sets, for
 * RGI_Emoji) is newer than the compile target.
 */
const EMOJI = new RegExp("^(?:\\p{RGI_Emoji}|[0-9#*]\\u{FE0F}?\\u{20E3}|[0-9#*]\\u{FE0F}|(?![0-9#*])\\p{Emoji}\\u{FE0F}?)$", "v");

/** XEP-0444 §3: each reaction one emoji (Unicode TS #51), no repeats, a bounded number. */
export function validReactions(emojis: readonly string[]): boolean {
  return emojis.length <= MAX_REACTIONS && new Set(emojis).size === emojis.length && emojis.every(isEmoji);
}

/** One emoji (above); the length bound keeps the pattern off long text. */
export const isEmoji = (e: string): boolean => e.length <= 32 && EMOJI.test(e);

/** Reactions as stored ({jid: [emoji]}) to the view ({emoji: [jid]}), both sorted. */
export function reactionsView(byJid: Record<string, string[]> | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [jid, emojis] of Object.entries(byJid ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) for (const e of emojis) (out[e] ??= []).push(jid);
  return out;
}

/**
 * XEP-0461 §3 / XEP-0428: the fallback quote put before a reply's text for clients without
 * replies: "> author wrote:" and each quoted line behind "> ", each line ending in "\n".
 */
export function replyQuote(author: string, quoted: string): string {
  return [`${author} wrote:`, ...quoted.split("\n")].map((l) => `> ${l}\n`).join("");
}

/**
 * A reply's text, or a correction of a reply's, is one body, not a language map: its fallback
 * quote is marked by a XEP-0428 `<body start end/>` range in the `<fallback/>` (XEP-0461 §3.1),
 * and a range has no xml:lang (XEP-0428 §2.2 and its schema: start and end only), so nothing could say
 * which of several `<body xml:lang>` it is in. Refused rather than sent without the quote.
 */
export function assertReplyBody(body: string | Record<string, string> | null | undefined): void {
  if (body !== null && body !== undefined && typeof body !== "string") {
    throw new AppError("validation-failed", "body: a reply's body is one text, not a language map (its XEP-0428 fallback range cannot name one body among several)", { field: "body.body" });
  }
}

/** Length in Unicode code points (XEP-0426: fallback offsets count code points, not UTF-16 units). */
export const codePoints = (s: string): number => [...s].length;

/** The text after a fallback that spans code points [0, end) (the reply text of a quoted reply). */
export function afterFallback(body: string, end: number): string {
  return [...body].slice(end).join("");
}

/** XEP-0424 §4: the body old clients see instead of a retraction. */
export const RETRACTION_FALLBACK = "/me retracted a previous message, but it's unsupported by your client.";
