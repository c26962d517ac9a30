// Simple Communications Blocking (XEP-0191, version 1.1): which JIDs a blocklist item covers.
// Pure: the blocklist is read by src/db/blocklist.ts, enforced by the inbound path, the message
// and subscription use cases and the presence broadcasts.
import { AppError } from "./errors.js";
import { jidToString, parseJid, type Jid } from "./jid.js";
import { ROOM_RESOURCE } from "./muc.js";

/** Items per account: a blocklist is read whole into memory for every inbound stanza's check. */
export const MAX_BLOCKS = 1000;

/** XEP-0191 §3.3: nothing is routed to a blocked JID; what the account would send to it is refused (400 blocked, naming `field`). */
export const blockedError = (jid: string, field: string): AppError =>
  new AppError("blocked", `${jid} is blocked by this account (DELETE /v1/blocklist/{jid} first)`, { field });

/** Reads an account's blocklist items (src/db/blocklist.ts caches them). */
export interface BlockLookup {
  of(accountId: number): Promise<ReadonlySet<string>>;
  /** Drops what is cached of the account's list: the next `of` reads it. */
  forget?(accountId: number): void;
}

/** For wiring without blocking (unit tests of other use cases). */
export const NO_BLOCKS: BlockLookup = { of: async () => new Set<string>() };

/** A blocklist item in its normal form (RFC 7622 preparation), or null when it is no JID. */
export function blockItem(raw: string): string | null {
  const jid = parseJid(raw);
  return jid ? jidToString(jid) : null;
}

/**
 * Whether a stanza from `from` is blocked, by XEP-0191 §3 "JID Matching" (as XEP-0016): a full JID
 * item matches only that resource, a bare JID any of its resources, `domain/resource` only that
 * address, and a domain itself, every address at it and every subdomain's.
 */
export function isBlocked(items: ReadonlySet<string>, from: Jid): boolean {
  if (items.size === 0) return false;
  const { local, domain, resource } = from;
  if (local) {
    if (resource && items.has(`${local}@${domain}/${resource}`)) return true;
    if (items.has(`${local}@${domain}`)) return true;
  } else if (resource && items.has(`${domain}/${resource}`)) return true;
  for (let d = domain; ; ) {
    if (items.has(d)) return true;
    const dot = d.indexOf(".");
    if (dot < 0) return false;
    d = d.slice(dot + 1);
  }
}

/**
 * Whether a message from a blocked JID is answered with an error (XEP-0191 §3.3: "SHOULD return an
 * error"; API.md: `service-unavailable`) rather than dropped. What a room sends is dropped: its
 * group messages, and its occupants' private messages, which come to the account's occupant JID.
 * An error sent to a room occupant makes the room remove the account (XEP-0045 status 333), which
 * is why Prosody's mod_blocklist drops group messages and messages to a full JID (its issue #690).
 */
export function bouncesBlocked(type: string, toResource: string | null | undefined): boolean {
  return type !== "groupchat" && toResource !== ROOM_RESOURCE;
}
