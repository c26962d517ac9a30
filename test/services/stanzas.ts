// Inbound stanzas as the XMPP adapter parses them (src/domain/inbound.ts), for the service tests
// that feed the Inbound use case directly: addresses both as received and as JIDs, every optional
// part absent unless given.
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import { parseJid } from "../../src/domain/jid.js";

export function inboundMessage(from: string, to: string, extra: Partial<InboundMessage> = {}): InboundMessage {
  return {
    kind: "message",
    fromRaw: from,
    toRaw: to,
    from: parseJid(from),
    to: parseJid(to),
    id: "s1",
    type: "chat",
    body: null,
    subject: null,
    thread: null,
    lang: null,
    state: null,
    receiptRequested: false,
    receivedId: null,
    error: null,
    originId: null,
    delay: null,
    invitation: null,
    mucUser: false,
    ...extra,
  };
}

export function inboundPresence(from: string, to: string, type: string, extra: Partial<InboundPresence> = {}): InboundPresence {
  return { kind: "presence", fromRaw: from, toRaw: to, from: parseJid(from), to: parseJid(to), id: null, type, show: null, status: null, statusText: null, priority: 0, muc: null, error: null, ...extra };
}
