// Every stanza error Balcony sends is built here: the error vocabulary (src/domain/errors.ts)
// mapped once onto RFC 6120 §8.3 error types and defined conditions.
import xml, { type Element } from "@xmpp/xml";
import type { ErrorCode } from "../domain/errors.js";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { NS } from "./ns.js";

type ErrorType = "cancel" | "modify" | "auth" | "wait";

const CONDITIONS: Partial<Record<ErrorCode, [ErrorType, string]>> = {
  "account-not-found": ["cancel", "service-unavailable"], // RFC 6121 §8.5.2.2 / §8.5.1
  "not-found": ["cancel", "item-not-found"], // RFC 6120 §8.3.3.7
  "validation-failed": ["modify", "bad-request"],
  "invalid-jid": ["modify", "jid-malformed"], // RFC 6120 §8.3.3.8
  "invalid-text": ["modify", "bad-request"],
  forbidden: ["auth", "forbidden"],
  blocked: ["cancel", "not-acceptable"], // XEP-0191 §3.3
  "rate-limited": ["wait", "resource-constraint"],
  "too-many-contacts": ["wait", "resource-constraint"], // RFC 6120 §8.3.3.18: a stranger's request while MAX_PENDING_REQUESTS wait
  "database-unavailable": ["wait", "internal-server-error"],
  "not-implemented": ["cancel", "feature-not-implemented"], // RFC 6120 §8.3.3.3
};

export function stanzaError(code: ErrorCode): [ErrorType, string] {
  return CONDITIONS[code] ?? ["cancel", "internal-server-error"];
}

/** The <error/> child for a code (RFC 6120 §8.3.2), with an optional human-readable text. */
export function errorElement(code: ErrorCode, text?: string): Element {
  const [type, condition] = stanzaError(code);
  return xml("error", { type }, xml(condition, { xmlns: NS.stanzas }), text ? xml("text", { xmlns: NS.stanzas }, text) : null);
}

/** RFC 6120 §8.3.1: an error reply to a stanza: same name and id, back to its sender. */
export function errorReply(name: string, from: string, to: string, id: string | null, code: ErrorCode, text?: string): Element {
  return xml(name, { from, to, ...(id ? { id } : {}), type: "error" }, errorElement(code, text));
}

/** The error carried by an error stanza we received. */
export function readError(stanza: Element): { type: string; condition: string; text?: string } {
  const err = stanza.getChild("error");
  const condition = err?.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas && c.name !== "text")?.name ?? "undefined-condition";
  const text = err?.getChildText("text", NS.stanzas) ?? undefined;
  return { type: err?.attrs.type ?? "cancel", condition, ...(text ? { text } : {}) };
}

/**
 * RFC 6120 §8.3.3.5: a <gone/> may carry the entity's new address, as an XMPP URI (RFC 5122;
 * Prosody's tombstone of a destroyed room: "xmpp:hall@conference.example.com?join"). Its bare JID,
 * or null when it names none.
 */
export function goneTo(stanza: Element): string | null {
  const uri = stanza.getChild("error")?.getChild("gone", NS.stanzas)?.text().trim() ?? "";
  if (!uri.startsWith("xmpp:")) return null;
  let address: string;
  try {
    address = decodeURIComponent(uri.slice("xmpp:".length).split(/[?#]/)[0]!);
  } catch {
    return null;
  }
  const jid = parseJid(address);
  return jid ? jidToString(bare(jid)) : null;
}
