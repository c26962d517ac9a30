// Reads message and presence stanzas into the plain data the inbound use cases act on
// (src/domain/inbound.ts). Anything unknown is normalised here, once: message types (RFC 6121
// §5.2.2), <show/> values (§4.7.2.1), priorities (§4.7.2.3), language-tagged texts (§5.2.3).
import type { Element } from "@xmpp/xml";
import type { InboundFeatures, InboundMessage, InboundMessageType, InboundPresence, InboundStanza, PresenceShow } from "../domain/inbound.js";
import { AttachmentSchema } from "../domain/events.js";
import { codePoints, MARKERS, type Attachment, type Marker } from "../domain/message-features.js";
import { cachedJidParser } from "../services/jid-cache.js";
import { prepareResourcepart } from "../domain/jid.js";
import { CHAT_STATES, type ChatState, type LangText } from "../domain/message.js";
import { LANG_PATTERN } from "../domain/text.js";
import { mucPresence, roomAddress, type RoomInvitation } from "../domain/muc.js";
import { goneTo, readError } from "./errors.js";
import { NS } from "./ns.js";

const MESSAGE_TYPES = new Set(["chat", "normal", "headline", "groupchat", "error"]);
const SHOWS = new Set(["away", "chat", "dnd", "xa"]);

/**
 * Language-tagged text children (<body/>, <subject/>, <status/>), RFC 6121 §5.2.3 / §4.7.2.2: a
 * plain string when there is one in the stanza's language, otherwise a map from xml:lang to text.
 */
export function readLangText(stanza: Element, name: "body" | "subject" | "status"): LangText | null {
  const els = own(stanza, name);
  if (els.length === 0) return null;
  const stanzaLang = langOf(stanza);
  // RFC 5646 §2.1.1: tags are case-insensitive.
  if (els.length === 1 && (langOf(els[0]!) ?? stanzaLang)?.toLowerCase() === stanzaLang?.toLowerCase()) return els[0]!.text();
  const out: Record<string, string> = {};
  for (const el of els) out[langOf(el) ?? stanzaLang ?? "und"] = el.text();
  return out;
}

const LANG_TAG = new RegExp(LANG_PATTERN);

/**
 * An element's xml:lang when it is a language tag (RFC 6120 §8.1.5: BCP 47), the form POST
 * /v1/messages takes too; "" says no language (XML 1.0 §2.12), and anything else is none either.
 */
function langOf(el: Element): string | undefined {
  const v = el.attrs["xml:lang"];
  return typeof v === "string" && LANG_TAG.test(v) ? v : undefined;
}

/** The namespaces a stanza's own children are in: the stream's (this link's is the component one). */
const STANZA_NS = new Set(["jabber:client", "jabber:server", "jabber:component:accept"]);

/**
 * The stanza's own children named `name` (RFC 6121 §5.2, §4.7.2): an element of that name in
 * another namespace is an extension's, which a recipient that does not know it ignores (RFC 6120 §8.4).
 */
function own(stanza: Element, name: string): Element[] {
  return stanza.getChildren(name).filter((c) => c.attrs.xmlns === undefined || c.attrs.xmlns === stanza.attrs.xmlns || STANZA_NS.has(c.attrs.xmlns));
}

const ownText = (stanza: Element, name: string): string | null => own(stanza, name)[0]?.text() ?? null;

/** Stanzas carry the same few addresses over and over. */
const jid = cachedJidParser();

function addressed(stanza: Element) {
  const fromRaw = stanza.attrs.from ?? null;
  const toRaw = stanza.attrs.to ?? null;
  return { fromRaw, toRaw, from: fromRaw === null ? null : jid(fromRaw), to: jid(toRaw ?? ""), id: stanza.attrs.id ?? null };
}

function message(stanza: Element): InboundMessage {
  const type = (MESSAGE_TYPES.has(stanza.attrs.type ?? "normal") ? (stanza.attrs.type ?? "normal") : "normal") as InboundMessageType;
  const state = stanza.getChildElements().find((c) => c.attrs.xmlns === NS.chatStates && (CHAT_STATES as readonly string[]).includes(c.name))?.name ?? null;
  return {
    kind: "message",
    ...addressed(stanza),
    type,
    body: readLangText(stanza, "body"),
    subject: readLangText(stanza, "subject"),
    thread: ownText(stanza, "thread"),
    lang: langOf(stanza) ?? null,
    state: state as ChatState | null,
    receiptRequested: !!stanza.getChild("request", NS.receipts),
    receivedId: stanza.getChild("received", NS.receipts)?.attrs.id ?? null,
    error: type === "error" ? readError(stanza) : null,
    originId: stanza.getChild("origin-id", NS.sid)?.attrs.id ?? null,
    roomStanzaId: assignedId(stanza),
    occupantId: stanza.getChild("occupant-id", NS.occupantId)?.attrs.id ?? null,
    delay: stanza.getChild("delay", NS.delay)?.attrs.stamp ?? null,
    invitation: invitation(stanza),
    mucUser: !!stanza.getChild("x", NS.mucUser),
    features: features(stanza),
  };
}

/**
 * XEP-0359 §3: the <stanza-id/> that the sender's bare JID assigned (a room's, by=room@service, is
 * how group chats name their messages: XEP-0424 and XEP-0444 §Using the correct ID); one by anyone
 * else is not the sender's to give and is ignored.
 */
function assignedId(stanza: Element): string | null {
  const from = stanza.attrs.from as string | undefined;
  const by = from === undefined ? undefined : from.split("/")[0];
  return stanza.getChildren("stanza-id", NS.sid).find((s) => s.attrs.by !== undefined && s.attrs.by === by)?.attrs.id ?? null;
}

const MARKER_NAMES = new Set<string>(MARKERS);
const FEATURE_NS = new Set<string>([NS.correct, NS.retract, NS.fasten, NS.reactions, NS.markers, NS.reply, NS.oob, NS.sfs]);

/** Message features (API.md "Message features"): one pass over the children, null when there are none. */
function features(stanza: Element): InboundFeatures | null {
  const children = stanza.getChildElements();
  if (!children.some((c) => FEATURE_NS.has(c.attrs.xmlns ?? ""))) return null;
  const f: InboundFeatures = {};
  const attachments: Attachment[] = [];
  for (const c of children) {
    const id = c.attrs.id as string | undefined;
    switch (c.attrs.xmlns) {
      case NS.correct:
        if (c.name === "replace" && id) f.replace = id;
        break;
      case NS.retract:
        if (c.name === "retract" && id) f.retract = id;
        break;
      // XEP-0424 before v0.4 (still sent by clients such as slixmpp 1.8): a retract fastened to the message.
      case NS.fasten:
        if (c.name === "apply-to" && id && c.getChild("retract", NS.retract0)) f.retract ??= id;
        break;
      case NS.reactions:
        if (c.name === "reactions" && id) f.reactions = { id, emojis: [...new Set(c.getChildren("reaction").map((r) => r.text()))] };
        break;
      case NS.markers:
        if (c.name === "markable") f.markable = true;
        else if (MARKER_NAMES.has(c.name) && id) f.marker = { name: c.name as Marker, id };
        break;
      case NS.reply:
        if (c.name === "reply" && id) f.reply = { id, quoteEnd: quoteEnd(stanza) };
        break;
      case NS.oob: {
        const url = c.getChildText("url");
        if (c.name === "x" && url) attachments.push({ url, ...(c.getChildText("desc") ? { description: c.getChildText("desc")! } : {}) });
        break;
      }
      case NS.sfs:
        if (c.name === "file-sharing") fileSharing(c, attachments);
        break;
    }
  }
  const shown = attachments.flatMap((a) => documented(a) ?? []);
  if (shown.length > 0) f.attachments = shown.slice(0, 10);
  return f;
}

/**
 * A peer's attachment as the API documents one (AttachmentSchema, the views' and events'): one
 * whose URL is not http(s) (javascript:, data:) or is too long is dropped, a field out of its
 * bounds (a media type that is none, a name of 5,000 characters) left out.
 */
const A = AttachmentSchema.properties;
const [URL_FORM, MEDIA_TYPE] = [new RegExp(A.url.pattern!, "u"), new RegExp(A.mediaType.pattern!, "u")];
function documented({ url, mediaType, name, description, ...rest }: Attachment): Attachment | null {
  if (url.length > A.url.maxLength! || !URL_FORM.test(url)) return null;
  return {
    url,
    ...rest,
    ...(mediaType && MEDIA_TYPE.test(mediaType) ? { mediaType } : {}),
    ...(name && name.length <= A.name.maxLength! ? { name } : {}),
    ...(description && description.length <= A.description.maxLength! ? { description } : {}),
  };
}

/**
 * XEP-0461 §Compatibility Fallback's own example marks the quote in urn:xmpp:feature-fallback:0
 * (the namespace before XEP-0428's, still sent by clients such as slixmpp's xep_0461).
 */
const FALLBACK_NS = new Set<string>([NS.fallback, "urn:xmpp:feature-fallback:0"]);

/**
 * XEP-0428 §Fallback Indicator: where the reply's fallback quote ends, when it starts the body
 * (code points). A <body/> without start and end is the whole body, and so is a <fallback/>
 * without children ("every message <body/> and <subject/>"): the reply then has no text of its own.
 */
function quoteEnd(stanza: Element): number | null {
  const whole = codePoints(ownText(stanza, "body") ?? "");
  for (const fb of stanza.getChildElements()) {
    if (fb.name !== "fallback" || !FALLBACK_NS.has(fb.attrs.xmlns ?? "") || fb.attrs.for !== NS.reply) continue;
    const parts = fb.getChildElements();
    if (parts.length === 0) return whole || null;
    for (const body of parts.filter((p) => p.name === "body")) {
      if (body.attrs.start === undefined && body.attrs.end === undefined) return whole || null;
      const start = Number(body.attrs.start ?? "0");
      const end = Number(body.attrs.end);
      if (start === 0 && Number.isInteger(end) && end > 0) return end;
    }
  }
  return null;
}

/** XEP-0447 with XEP-0446 metadata: adds the file's metadata to its OOB attachment, or adds it. */
function fileSharing(el: Element, attachments: Attachment[]): void {
  const file = el.getChild("file", NS.fileMetadata);
  const url = el.getChild("sources")?.getChild("url-data", NS.urlData)?.attrs.target as string | undefined;
  if (!file || !url) return;
  const size = Number(file.getChildText("size"));
  const meta = {
    ...(file.getChildText("media-type") ? { mediaType: file.getChildText("media-type")! } : {}),
    ...(file.getChildText("name") ? { name: file.getChildText("name")! } : {}),
    ...(Number.isSafeInteger(size) && size >= 0 && file.getChild("size") ? { size } : {}),
    ...(file.getChildText("desc") ? { description: file.getChildText("desc")! } : {}),
  };
  const known = attachments.find((a) => a.url === url);
  if (known) Object.assign(known, meta);
  else attachments.push({ url, ...meta });
}

/**
 * XEP-0045 §7.8.2 (from the room: <x muc#user><invite from/></x>, or <decline from/> of the account's
 * own invitation) or XEP-0249 (<x jabber:x:conference jid/>).
 * An error is no invitation: a room that refuses the account's own mediated invitation may send it
 * back with its payload (<invite to/>, RFC 6120 §8.3.1), which must not read as one received.
 */
function invitation(stanza: Element): RoomInvitation | null {
  if (stanza.attrs.type === "error") return null;
  const x = stanza.getChild("x", NS.mucUser);
  // §7.8.2: a mediated invitation, and the invitee's decline of the account's, are relayed by the
  // room, from its bare JID: from anyone else (a user's full JID) it is no room's word, nor is an
  // inviter that is no JID.
  const relayed = x?.getChild("invite") ?? x?.getChild("decline");
  const room = roomAddress(stanza.attrs.from ? jid(stanza.attrs.from) : null);
  if (relayed && room && relayed.attrs.from && jid(relayed.attrs.from)) {
    const declined = relayed.name === "decline";
    return { room, from: relayed.attrs.from, reason: relayed.getChildText("reason"), password: declined ? null : x!.getChildText("password"), via: "mediated", ...(declined ? { declined } : {}) };
  }
  // XEP-0249 §2: the room's address in 'jid' (a bare room JID, as API.md names rooms).
  const direct = stanza.getChild("x", NS.conference);
  const invited = roomAddress(direct?.attrs.jid ? jid(direct.attrs.jid) : null);
  if (invited && stanza.attrs.from) {
    return { room: invited, from: stanza.attrs.from, reason: direct!.attrs.reason ?? null, password: direct!.attrs.password ?? null, via: "direct" };
  }
  return null;
}

function presence(stanza: Element): InboundPresence {
  const show = ownText(stanza, "show");
  const prio = Number.parseInt(ownText(stanza, "priority") ?? "0", 10);
  return {
    kind: "presence",
    ...addressed(stanza),
    type: stanza.attrs.type ?? "available",
    show: show && SHOWS.has(show) ? (show as PresenceShow) : null,
    status: readLangText(stanza, "status"),
    statusText: ownText(stanza, "status"),
    priority: Number.isFinite(prio) ? Math.max(-128, Math.min(127, prio)) : 0,
    muc: muc(stanza),
    error: stanza.attrs.type === "error" ? readError(stanza) : null,
    goneTo: stanza.attrs.type === "error" ? goneTo(stanza) : null,
  };
}

/**
 * XEP-0045 §7.2.3: the muc#user <x/> of an occupant's presence: its item and status codes; a kick
 * (§8.2) or ban (§9.1) says why and by whom in the item: <reason/>, <actor nick/>.
 */
function muc(stanza: Element) {
  const x = stanza.getChild("x", NS.mucUser);
  if (!x) return null;
  const item = x.getChild("item");
  // A new nick (§7.6.2, status 303) becomes the occupant JID's resourcepart: one that cannot be
  // (RFC 7622 §3.4, at most 1023 octets) is none, so it can never fail the occupant's indexed row;
  // prepared, it matches the resource of the presence that follows from it.
  const nick = typeof item?.attrs.nick === "string" ? (prepareResourcepart(item.attrs.nick) ?? undefined) : undefined;
  const details = item ? { nick, reason: item.getChildText("reason"), actor: (item.getChild("actor")?.attrs.nick as string | undefined) ?? null } : null;
  // §10.9: a destroyed room tells each occupant why, and may name a room to go to instead.
  const destroy = x.getChild("destroy");
  const destroyed = destroy ? { reason: destroy.getChildText("reason") || null, alternate: typeof destroy.attrs.jid === "string" ? destroy.attrs.jid : null } : null;
  return mucPresence(item ? { ...item.attrs, ...details } : null, x.getChildren("status").map((s) => s.attrs.code ?? ""), destroyed);
}

/** A message or presence stanza as data; null for anything else (iq is handled by src/xmpp/iq.ts). */
export function parseStanza(stanza: Element): InboundStanza | null {
  if (stanza.name === "message") return message(stanza);
  if (stanza.name === "presence") return presence(stanza);
  return null;
}
