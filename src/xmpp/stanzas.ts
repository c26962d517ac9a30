// Builds the stanzas Balcony sends. Text is escaped by @xmpp/xml; what reaches here has been
// checked for XML 1.0 characters by the HTTP schemas (src/domain/text.ts), so the output is
// always well-formed.
import xml, { type Element } from "@xmpp/xml";
import { langTexts, type OutboundMessage } from "../domain/message.js";

export const NS = {
  receipts: "urn:xmpp:receipts", // XEP-0184
  chatStates: "http://jabber.org/protocol/chatstates", // XEP-0085
  sid: "urn:xmpp:sid:0", // XEP-0359
  discoInfo: "http://jabber.org/protocol/disco#info", // XEP-0030
  discoItems: "http://jabber.org/protocol/disco#items",
  ping: "urn:xmpp:ping", // XEP-0199
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas", // RFC 6120 §8.3
} as const;

function texts(name: string, value: OutboundMessage["body"]): Element[] {
  return langTexts(value).map(([lang, text]) => xml(name, lang === null ? {} : { "xml:lang": lang }, text));
}

/**
 * RFC 6121 §5.2: a message stanza. The stanza id and the XEP-0359 origin-id are both the
 * message's own id, so a resend after a crash carries the same ids and receivers can drop it.
 */
export function messageStanza(m: OutboundMessage): Element {
  const attrs: Record<string, string> = { from: m.from, to: m.to, type: m.type, id: m.id };
  if (m.lang) attrs["xml:lang"] = m.lang;
  return xml(
    "message",
    attrs,
    ...texts("subject", m.subject),
    ...texts("body", m.body),
    m.thread ? xml("thread", {}, m.thread) : null,
    m.receipt ? xml("request", { xmlns: NS.receipts }) : null,
    m.state ? xml(m.state, { xmlns: NS.chatStates }) : null,
    xml("origin-id", { xmlns: NS.sid, id: m.id }),
  );
}

/** XEP-0184 §5: the receipt answering a message that asked for one. */
export function receiptStanza(from: string, to: string, id: string, stanzaId: string): Element {
  return xml("message", { from, to, id: stanzaId }, xml("received", { xmlns: NS.receipts, id }));
}

/**
 * RFC 6120 §8.3: an error reply to a stanza, addressed back to its sender, from `replyFrom` (the
 * entity addressed, when it is a valid address of ours; the XMPP server closes a component stream
 * that sends from anything else).
 */
export function errorReply(stanza: Element, replyFrom: string, type: "cancel" | "modify" | "auth" | "wait", condition: string, text?: string): Element {
  const { from, id } = stanza.attrs;
  return xml(
    stanza.name,
    { from: replyFrom, to: from, id, type: "error" },
    xml("error", { type }, xml(condition, { xmlns: NS.stanzas }), text ? xml("text", { xmlns: NS.stanzas }, text) : null),
  );
}

export interface PresenceContent {
  show?: string | null;
  status?: OutboundMessage["body"];
  priority?: number | null;
}

/** RFC 6121 §4.7: a presence stanza; `type` absent means available. */
export function presenceStanza(from: string, to: string, type: "unavailable" | "probe" | null, p: PresenceContent = {}): Element {
  return xml(
    "presence",
    { from, to, ...(type ? { type } : {}) },
    p.show ? xml("show", {}, p.show) : null,
    ...texts("status", p.status),
    p.priority ? xml("priority", {}, String(p.priority)) : null,
  );
}

/** RFC 6121 §3: subscribe, subscribed, unsubscribe, unsubscribed, from the account's bare JID. */
export function subscriptionStanza(from: string, to: string, type: "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed", id?: string): Element {
  return xml("presence", { from, to, type, ...(id ? { id } : {}) });
}
