// What an Idempotency-Key keeps of its request to know a retry (API.md Messages: "the same key with
// the same payload"): a hash of the payload, read as the stanza would be, not as it was spelt.
import { createHash } from "node:crypto";
import { jidToString, type Jid } from "../domain/jid.js";
import { canonicalJson } from "../domain/message.js";

/** What the fingerprint reads of a request beyond its JSON (POST /v1/messages' body). */
export interface Fingerprinted {
  to: string;
  type?: string;
  body?: unknown;
  attachments?: readonly unknown[];
  receipt?: boolean;
  markable?: boolean;
}

/**
 * The payload's hash, keys in any order. A retry that names the same JID otherwise spelt
 * ("Juliet@LOCALHOST") is the same request: `to` is hashed as prepared (RFC 7622 §3; `prepared`,
 * or as sent when it is no JID), which leaves a canonical one as it was sent, so keys stored before
 * hash the same. So is one that spells out a default or leaves it out (withoutDefaults).
 */
export const requestFingerprint = (m: Fingerprinted, prepared: Jid | null): string => fingerprint(withoutDefaults(m), prepared);

/**
 * The hash keys stored before withoutDefaults was made hold for this request (of it as sent), where
 * it is not requestFingerprint's: only a request that spells out a default; null for any other.
 */
export const formerFingerprint = (m: Fingerprinted, prepared: Jid | null): string | null =>
  m.receipt === false || (m.markable !== undefined && m.markable === markableByDefault(m)) ? fingerprint(m, prepared) : null;

const fingerprint = (m: Fingerprinted, prepared: Jid | null): string =>
  createHash("sha256").update(canonicalJson(prepared ? { ...m, to: jidToString(prepared) } : m)).digest("base64url");

/**
 * A field given as its default says nothing the stanza would not: receipt false, and markable as
 * the type and content would have it (src/xmpp/render.ts). Left out, so that a request that gave
 * neither hashes as it did before.
 */
function withoutDefaults(m: Fingerprinted): Fingerprinted {
  const { receipt, markable, ...rest } = m;
  return { ...rest, ...(receipt ? { receipt } : {}), ...(markable !== undefined && markable !== markableByDefault(m) ? { markable } : {}) };
}

const markableByDefault = (m: Fingerprinted): boolean => (m.type ?? "chat") === "chat" && (!!m.body || !!m.attachments?.length);
