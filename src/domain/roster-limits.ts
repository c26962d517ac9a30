// Bounds on one account's roster (RFC 6121 §2) and on the strangers' subscription requests it
// keeps until answered (§3.1.3). RFC 6121 sets none, but every item is read whole by GET
// /v1/roster, answered at an account's deletion and probed at its first presence; and a stranger's
// request is a row that anyone on the network can add. The blocklist has its own (MAX_BLOCKS).
import type { ItemState } from "./subscription.js";

/** Contacts in one roster: twice the 5,000 issue 10 measures GET /v1/roster and a presence broadcast with. */
export const MAX_ROSTER_ITEMS = 10_000;
/** Strangers' requests waiting for the account's answer (not in the roster: §3.1.3). */
export const MAX_PENDING_REQUESTS = 1_000;
/**
 * Resources of one contact whose presence is kept (§4.4): a new one removes the least recently
 * updated (the contact_presence_room trigger's number, its migration). ejabberd's default
 * configuration gives a user 10 sessions; Prosody sets no bound.
 */
export const MAX_CONTACT_RESOURCES = 100;

export type RosterBound = "roster" | "requests";

export const LIMITS: Record<RosterBound, number> = { roster: MAX_ROSTER_ITEMS, requests: MAX_PENDING_REQUESTS };

/**
 * The bound a change from `before` to `after` takes one more row under: "roster" when the contact
 * joins the roster, "requests" when a stranger's request is stored; null when it adds none (an
 * item that changes, leaves, or stays where it was).
 */
export function growth(before: Pick<ItemState, "inRoster"> | null, after: Pick<ItemState, "inRoster"> | null): RosterBound | null {
  if (!after) return null;
  if (after.inRoster) return before?.inRoster ? null : "roster";
  return before ? null : "requests";
}

/** What a refusal says, for either bound. */
export function fullDetail(bound: RosterBound): string {
  return bound === "roster"
    ? `a roster holds at most ${MAX_ROSTER_ITEMS.toLocaleString("en")} contacts`
    : `at most ${MAX_PENDING_REQUESTS.toLocaleString("en")} subscription requests wait for the account's answer`;
}
