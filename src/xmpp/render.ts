// Renders the stanzas use cases ask for (src/domain/stanza.ts) as XML. Text is escaped by
// @xmpp/xml; what reaches here has been checked for XML 1.0 characters (src/domain/text.ts), so
// the output is always well-formed.
import { randomUUID } from "node:crypto";
import xml, { type Element } from "@xmpp/xml";

// @xmpp/xml is CommonJS: its helpers are properties of the default export.
const { escapeXML, escapeXMLText } = xml;
import { langTexts, type LangText, type MessageType, type OutboundMessage } from "../domain/message.js";
import { codePoints, RETRACTION_FALLBACK, type Attachment } from "../domain/message-features.js";
import type { Delay, MessageAction, PresenceContent, Stanza } from "../domain/stanza.js";
import { errorReply } from "./errors.js";
import { NS } from "./ns.js";

function texts(name: string, value: LangText | null | undefined): Element[] {
  return langTexts(value).map(([lang, text]) => xml(name, lang === null ? {} : { "xml:lang": lang }, text));
}

/**
 * RFC 6120 §8.1.3: an id on every presence we originate (RECOMMENDED), so the error that may
 * bounce back (§8.3.1 copies it) names the stanza it answers. Drawn as each stanza is written,
 * never stored: a broadcast stays one outbox row for all its recipients (src/db/outbox.ts), and
 * nothing of ours matches presence errors by id (a room's is matched by the room,
 * src/services/inbound-room.ts), so a resend under a new id loses nothing.
 */
const presenceId = (): string => randomUUID();

/** XEP-0359 §4: every message we send names itself with an origin-id (its stanza id), but a receipt (below). */
const originId = (id: string): Element => xml("origin-id", { xmlns: NS.sid, id });

/**
 * RFC 6121 §5.2: a message stanza. The stanza id and the XEP-0359 origin-id are both the
 * message's own id, so a resend after a crash carries the same ids and receivers can drop it.
 * `extra`: payloads that make it a change to an earlier message (a correction's <replace/>).
 */
function message(m: OutboundMessage, extra: Element[] = []): Element {
  const attrs: Record<string, string> = { from: m.from, to: m.to, type: m.type, id: m.id };
  if (m.lang) attrs["xml:lang"] = m.lang;
  const ext = m.ext ?? {};
  return xml(
    "message",
    attrs,
    ...texts("subject", m.subject),
    ...texts("body", wireBody(m)),
    m.thread ? xml("thread", {}, m.thread) : null,
    m.receipt ? xml("request", { xmlns: NS.receipts }) : null,
    m.state ? xml(m.state, { xmlns: NS.chatStates }) : null,
    markable(m) ? xml("markable", { xmlns: NS.markers }) : null,
    ...replyElements(m),
    ...(ext.attachments ?? []).flatMap(attachmentElements),
    ...extra,
    originId(m.id),
  );
}

/** XEP-0333 §5: chat messages ask for markers unless the sender said not to. */
const markable = (m: OutboundMessage) => m.ext?.markable ?? (m.type === "chat" && (!!m.body || !!m.ext?.attachments?.length));

/**
 * The body on the wire: a reply's text behind its fallback quote (XEP-0461 §3); with no body, an
 * attachment's URL, as clients that only know XEP-0066 show a link (and Conversations sends it).
 */
function wireBody(m: OutboundMessage): LangText | null | undefined {
  const reply = m.ext?.reply;
  if (reply && typeof m.body === "string") return reply.quote + m.body;
  if ((m.body === null || m.body === undefined) && m.ext?.attachments?.length) return m.ext.attachments[0]!.url;
  return m.body;
}

/** XEP-0461 §3 reply, and the XEP-0428 fallback marking the quote (code points [0, end)). */
function replyElements(m: OutboundMessage): Element[] {
  const reply = m.ext?.reply;
  if (!reply) return [];
  const els = [xml("reply", { xmlns: NS.reply, to: reply.to, id: reply.id })];
  if (typeof m.body === "string") els.push(xml("fallback", { xmlns: NS.fallback, for: NS.reply }, xml("body", { start: "0", end: String(codePoints(reply.quote)) })));
  return els;
}

/** XEP-0066 OOB for every client; with metadata, XEP-0447 file sharing of a XEP-0446 file too. */
function attachmentElements(a: Attachment): Element[] {
  const oob = xml("x", { xmlns: NS.oob }, xml("url", {}, a.url), a.description ? xml("desc", {}, a.description) : null);
  if (a.mediaType === undefined && a.name === undefined && a.size === undefined) return [oob];
  const file = xml(
    "file",
    { xmlns: NS.fileMetadata },
    a.mediaType ? xml("media-type", {}, a.mediaType) : null,
    a.name ? xml("name", {}, a.name) : null,
    a.size !== undefined ? xml("size", {}, String(a.size)) : null,
    a.description ? xml("desc", {}, a.description) : null,
  );
  const sources = xml("sources", {}, xml("url-data", { xmlns: NS.urlData, target: a.url }));
  return [oob, xml("file-sharing", { xmlns: NS.sfs, disposition: "attachment" }, file, sources)];
}

const attr = (name: string, value: string) => ` ${name}="${escapeXML(value)}"`;
const textTags = (name: string, value: LangText | null | undefined) =>
  langTexts(value)
    .map(([lang, text]) => `<${name}${lang === null ? "" : attr("xml:lang", lang)}${text === "" ? "/>" : `>${escapeXMLText(text)}</${name}>`}`)
    .join("");

/**
 * The message above written straight to text, byte for byte what message(m).toString() gives
 * (test/xmpp/render.test.ts): outbound messages are the hot path, and building an element tree
 * per message only to serialise it cost a third of the link's write time.
 */
function messageText(m: OutboundMessage): string {
  // Replies and attachments are rare enough to take the element path.
  if (m.ext?.reply || m.ext?.attachments) return message(m).toString();
  return (
    `<message${attr("from", m.from)}${attr("to", m.to)}${attr("type", m.type)}${attr("id", m.id)}${m.lang ? attr("xml:lang", m.lang) : ""}>` +
    textTags("subject", m.subject) +
    textTags("body", m.body) +
    (m.thread ? `<thread>${escapeXMLText(m.thread)}</thread>` : "") +
    (m.receipt ? `<request xmlns="${NS.receipts}"/>` : "") +
    (m.state ? `<${m.state} xmlns="${NS.chatStates}"/>` : "") +
    (markable(m) ? `<markable xmlns="${NS.markers}"/>` : "") +
    `<origin-id xmlns="${NS.sid}"${attr("id", m.id)}/></message>`
  );
}

/** The presence below as text, as presence(...).toString() gives it (broadcasts go to thousands at once). */
function presenceText(from: string, to: string, type: string | null, p: PresenceContent & { delay?: Delay }): string {
  const children =
    (p.show ? `<show>${escapeXMLText(p.show)}</show>` : "") +
    textTags("status", p.status) +
    (p.priority ? `<priority>${p.priority}</priority>` : "") +
    (p.delay ? `<delay xmlns="${NS.delay}"${attr("from", p.delay.from)}${attr("stamp", p.delay.stamp)}/>` : "");
  const head = `<presence${attr("from", from)}${attr("to", to)}${type ? attr("type", type) : ""}${attr("id", presenceId())}`;
  return children ? `${head}>${children}</presence>` : `${head}/>`;
}

/** A stanza as the text written to the link. */
export function renderText(s: Stanza): string {
  switch (s.kind) {
    case "message": {
      const { kind: _kind, ...m } = s;
      return messageText(m);
    }
    case "presence":
      return presenceText(s.from, s.to, s.type, s);
    default:
      return render(s).toString();
  }
}

/** RFC 6121 §4.7: a presence stanza; `type` null means available. XEP-0203 `<delay/>` last, if given. */
function presence(from: string, to: string, type: string | null, p: PresenceContent & { delay?: Delay }): Element {
  return xml(
    "presence",
    { from, to, ...(type ? { type } : {}), id: presenceId() },
    p.show ? xml("show", {}, p.show) : null,
    ...texts("status", p.status),
    p.priority ? xml("priority", {}, String(p.priority)) : null,
    p.delay ? xml("delay", { xmlns: NS.delay, from: p.delay.from, stamp: p.delay.stamp }) : null,
  );
}

/**
 * A message that changes an earlier one, of the original's type (a room's: groupchat, to the room,
 * XEP-0045 §7.4); `<store/>` (XEP-0334) so archives keep it.
 */
function messageAction(from: string, to: string, id: string, a: MessageAction, type: MessageType = "chat"): Element {
  const store = xml("store", { xmlns: NS.hints });
  const origin = originId(id);
  const attrs = { from, to, type, id };
  switch (a.kind) {
    // XEP-0308 §3: a new message with the whole new text, naming the original. §Business Rules:
    // "the sender MUST re-send the entire stanza, only altering id and the payloads being
    // corrected": the original's thread, markable, reply, attachments… with the new text.
    case "replace":
      if (a.resend) return message({ ...a.resend, id, from, to, type, body: a.body, lang: a.lang }, [xml("replace", { xmlns: NS.correct, id: a.ref })]);
      return xml("message", a.lang ? { ...attrs, "xml:lang": a.lang } : attrs, ...texts("body", a.body), xml("replace", { xmlns: NS.correct, id: a.ref }), origin);
    // XEP-0424 §4 (v0.4.2): retract, with a XEP-0428 fallback body for clients without it.
    case "retract":
      return xml(
        "message",
        attrs,
        xml("retract", { xmlns: NS.retract, id: a.ref }),
        xml("fallback", { xmlns: NS.fallback, for: NS.retract }),
        xml("body", {}, RETRACTION_FALLBACK),
        store,
        origin,
      );
    // XEP-0444 §3: the sender's complete set; an empty <reactions/> removes it.
    case "reactions":
      return xml("message", attrs, xml("reactions", { xmlns: NS.reactions, id: a.ref }, ...a.emojis.map((e) => xml("reaction", {}, e))), store, origin);
    // XEP-0333 §Protocol Format: a marker carries only the marker and, when the message marked had
    // one, its thread ("MUST have a 'thread' child element"); and, as every message we send, its origin-id.
    case "displayed":
      return xml("message", attrs, a.thread ? xml("thread", {}, a.thread) : null, xml("displayed", { xmlns: NS.markers, id: a.ref }), store, origin);
  }
}

export function render(s: Stanza): Element {
  switch (s.kind) {
    case "message": {
      const { kind: _kind, ...m } = s;
      return message(m);
    }
    case "presence":
      return presence(s.from, s.to, s.type, s);
    // RFC 6121 §3: subscribe, subscribed, unsubscribe, unsubscribed, from the account's bare JID.
    case "subscription":
      return xml("presence", { from: s.from, to: s.to, type: s.type, id: presenceId() });
    // XEP-0184 §5: the receipt answering a message that asked for one, of that message's type,
    // whose only child "SHOULD" be <received/>: no origin-id (XEP-0359 names messages a receiver
    // may refer to later; nothing refers to a receipt).
    case "receipt":
      return xml("message", s.type ? { from: s.from, to: s.to, type: s.type, id: s.stanzaId } : { from: s.from, to: s.to, id: s.stanzaId }, xml("received", { xmlns: NS.receipts, id: s.id }));
    case "error":
      return errorReply(s.replyTo.name, s.from, s.replyTo.from, s.replyTo.id, s.code, s.text);
    // XEP-0045 §7.2.1 (entering), §7.2.6 (password), §7.2.15 (history: only what we missed).
    case "muc-join":
      return xml(
        "presence",
        { from: s.from, to: s.to, id: presenceId() },
        xml(
          "x",
          { xmlns: NS.muc },
          s.history ? xml("history", { ...(s.history.since ? { since: s.history.since } : {}), ...(s.history.maxStanzas !== undefined ? { maxstanzas: String(s.history.maxStanzas) } : {}) }) : null,
          s.password ? xml("password", {}, s.password) : null,
        ),
      );
    // XEP-0045 §10.1.2: an empty submitted form accepts the default configuration (instant room).
    case "muc-instant":
      return xml("iq", { from: s.from, to: s.to, type: "set", id: s.id }, xml("query", { xmlns: NS.mucOwner }, xml("x", { xmlns: NS.xdata, type: "submit" })));
    // XEP-0410 §3.2: a ping (XEP-0199) to our own occupant JID in the room.
    case "muc-self-ping":
      return xml("iq", { from: s.from, to: s.to, type: "get", id: s.id }, xml("ping", { xmlns: NS.ping }));
    // XEP-0045 §8.1: a groupchat message with only a <subject/>.
    case "muc-subject":
      return xml("message", { from: s.from, to: s.to, type: "groupchat", id: s.id }, xml("subject", {}, s.subject), originId(s.id));
    case "message-action":
      return messageAction(s.from, s.to, s.id, s.action, s.type);
    // XEP-0045 §7.8.2: a mediated invitation goes to the room, which relays it.
    case "muc-invite":
      return xml("message", { from: s.from, to: s.to, id: s.id }, xml("x", { xmlns: NS.mucUser }, xml("invite", { to: s.invitee }, s.reason ? xml("reason", {}, s.reason) : null)), originId(s.id));
  }
}
