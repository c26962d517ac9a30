// The message model shared by HTTP, storage and the XMPP link (RFC 6121 §5, XEP-0184,
// XEP-0085, XEP-0359). Pure data and rules: no I/O.
import { isUuid } from "./ids.js";
import type { MessageExt, ReplyWire } from "./message-features.js";
import { isXmlText } from "./text.js";

/** A message's stored extensions plus what its wire form needs (the reply's reference and quote). */
export type WireExt = MessageExt & { reply?: ReplyWire };

/** What an account may send; "groupchat" only to a room it joined (XEP-0045 §7.4). */
export const MESSAGE_TYPES = ["chat", "normal", "headline", "groupchat"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const CHAT_STATES = ["active", "composing", "paused", "inactive", "gone"] as const;
export type ChatState = (typeof CHAT_STATES)[number];

/** Text with an optional language per variant (RFC 6121 §5.2.3: several <body/> with xml:lang). */
export type LangText = string | Record<string, string>;

export interface OutboundMessage {
  id: string;
  from: string;
  to: string;
  type: MessageType;
  body?: LangText | null;
  subject?: LangText | null;
  thread?: string | null;
  lang?: string | null;
  receipt?: boolean;
  state?: ChatState | null;
  /** Extensions (src/domain/message-features.ts): reply, attachments, markable. */
  ext?: WireExt | null;
}

/** Whether an id can be one of ours: our message ids (also our stanza and origin ids) are UUIDs. */
export const isMessageId = isUuid;

/** Canonical JSON of a request, so a retried request can be recognised whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function langTexts(text: LangText | null | undefined): [lang: string | null, text: string][] {
  if (text === null || text === undefined) return [];
  if (typeof text === "string") return [[null, text]];
  return Object.entries(text);
}

const LANG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;

/**
 * Two keys of a language map that name one language, or null: language tags are case-insensitive
 * (RFC 5646 §2.1.1), and a stanza carries at most one <status/>, <body/> or <subject/> per
 * language (RFC 6121 §4.7.2.2, §5.2.3, §5.2.4).
 */
export function sameLanguage(tags: readonly string[]): [string, string] | null {
  const seen = new Map<string, string>();
  for (const tag of tags) {
    const first = seen.get(tag.toLowerCase());
    if (first !== undefined) return [first, tag];
    seen.set(tag.toLowerCase(), tag);
  }
  return null;
}

/**
 * Whether a message can be put on the wire as it is: every text a string of XML 1.0 characters,
 * every language tag well-formed. What the HTTP schemas let in always is; this guards the outbox
 * against rows that were not (an older release, a hand edit), which would otherwise make the
 * XMPP server drop the link every time they are sent.
 */
export function isSendable(m: OutboundMessage): boolean {
  const textOk = (v: unknown) => typeof v === "string" && isXmlText(v);
  const langTextOk = (v: LangText | null | undefined) =>
    v === null || v === undefined || textOk(v) || (typeof v === "object" && Object.entries(v).every(([k, t]) => LANG.test(k) && textOk(t)));
  return langTextOk(m.body) && langTextOk(m.subject) && (m.thread == null || textOk(m.thread)) && (m.lang == null || LANG.test(m.lang));
}

/** A message stanza's bytes beyond its texts (element names, attributes, ids, fixed extensions): a generous allowance. */
const FRAME_BYTES = 1024;
/** Bytes a text character can take rendered: 6 for `&apos;` or `&quot;`, at most 3 of UTF-8 for any UTF-16 unit. */
const BYTES_PER_CHAR = 6;
/** Characters allowed per language variant for its element around the text (`<body xml:lang="…">`, `</body>`). */
const PER_VARIANT = 16;

const textChars = (t: LangText | null | undefined): number => {
  if (t == null) return 0;
  if (typeof t === "string") return t.length;
  let n = 0;
  for (const lang in t) n += PER_VARIANT + lang.length + t[lang]!.length;
  return n;
};

/**
 * An upper bound on the bytes of a message's stanza, from the lengths of what it carries, without
 * rendering it: a message under the XMPP server's stanza limit by this bound needs no rendering to
 * be measured (src/services/messaging.ts). The other extensions, rare, count as their JSON.
 */
export function stanzaBytesBound(m: OutboundMessage): number {
  // An attachment's URL can go out three times (XEP-0066's, XEP-0447's, the body of a message
  // without one): such a message is rendered to be measured.
  if (m.ext?.attachments?.length) return Infinity;
  const chars = m.to.length + m.from.length + textChars(m.body) + textChars(m.subject) + (m.thread?.length ?? 0) + (m.lang?.length ?? 0);
  return FRAME_BYTES + BYTES_PER_CHAR * (chars + (m.ext ? JSON.stringify(m.ext).length : 0));
}
