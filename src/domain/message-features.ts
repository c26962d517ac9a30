// Message features (API.md "Message features (1.1)"): one model of a message's state whatever
// happened to it: replies (XEP-0461 with a XEP-0428 fallback quote), attachments (XEP-0066 OOB,
// XEP-0446 metadata in XEP-0447 file sharing), markers (XEP-0333), reactions (XEP-0444),
// corrections (XEP-0308) and retractions (XEP-0424). Pure rules: no I/O.

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
}

/** On the wire, a reply names the referenced message's wire id and its author, and quotes it. */
export interface ReplyWire {
  id: string;
  to: string;
  quote: string;
}

/**
 * The id the peer knows a message by (XEP-0461/0444/0333 references in one-to-one chat): ours is
 * our id (our stanza id and origin-id), theirs the id they sent it with (null: they gave none).
 */
export const wireId = (m: { direction: string; id: string; stanzaId: string | null }): string | null => (m.direction === "out" ? m.id : m.stanzaId);

export const MARKERS = ["received", "displayed", "acknowledged"] as const;
export type Marker = (typeof MARKERS)[number];

/** XEP-0333 §4: markers only move forward (received < displayed < acknowledged). */
export function betterMarker(current: string | null, next: Marker): boolean {
  return MARKERS.indexOf(next) > (current === null ? -1 : MARKERS.indexOf(current as Marker));
}

export const MAX_REACTIONS = 20;
// Built at run time: the `v` flag (Unicode sets, for RGI_Emoji) is newer than the compile target.
const EMOJI = new RegExp("^\\p{RGI_Emoji}$", "v");

/** XEP-0444 §3: each reaction one emoji (Unicode TS #51), no repeats, a bounded number. */
export function validReactions(emojis: readonly string[]): boolean {
  return emojis.length <= MAX_REACTIONS && new Set(emojis).size === emojis.length && emojis.every((e) => e.length <= 32 && EMOJI.test(e));
}

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

/** Length in Unicode code points (XEP-0426: fallback offsets count code points, not UTF-16 units). */
export const codePoints = (s: string): number => [...s].length;

/** The text after a fallback that spans code points [0, end) (the reply text of a quoted reply). */
export function afterFallback(body: string, end: number): string {
  return [...body].slice(end).join("");
}

/** XEP-0424 §4: the body old clients see instead of a retraction. */
export const RETRACTION_FALLBACK = "/me retracted a previous message, but it's unsupported by your client.";
