// XEP-0410 (MUC Self-Ping): whether an account is still in a room it believes it is in. A room can
// lose its occupants without a word (a MUC service or server restart, a lost s2s link), and the
// room then looks merely quiet. After a quiet spell the gateway pings the account's own occupant
// JID in the room (§3.2); the answer says whether the account is still there. Pure: the sweep is
// src/services/room-self-pings.ts.
import { occupantJid, refusedForNow } from "./muc.js";
import type { Stanza } from "./stanza.js";

/** Id prefix of our self-pings: their answers are read by src/services/room-self-pings.ts. */
export const SELF_PING_PREFIX = "muc-self-ping-";

/** §3.2: a ping (XEP-0199) from the account's occupant JID to its own nick in the room. */
export const selfPing = (accountJid: string, room: string, nick: string, id: string): Stanza => ({
  kind: "muc-self-ping",
  from: occupantJid(accountJid),
  to: `${room}/${nick}`,
  id: `${SELF_PING_PREFIX}${id}`,
});

/**
 * What a self-ping's answer says (§3.2; `error`: null for a result): "joined"; "gone", the account
 * is no longer an occupant (the recommended not-acceptable, and any other error: some services
 * answer not-allowed or bad-request); "unknown", the room could not be reached (a timeout: try
 * again after another quiet spell). A result, and the errors of a service that relayed the ping to
 * another of the occupant's clients (service-unavailable, feature-not-implemented: it does not do
 * pings), say it is still joined. item-not-found is §3.2's "joined, but the nick just changed
 * (by another client)": the gateway is the only client of its occupant JID, so that is so only
 * while a nick change of its own is under way (`settled` false). A ping to the nick the account
 * settled on that finds no such occupant is answered by a room that does not have it: one that
 * no longer exists (Prosody 0.12 destroys a non-persistent room whose only occupant changes nick,
 * and answers anything sent to it item-not-found), or one that lost it: "gone".
 */
export function selfPingVerdict(error: { type: string; condition: string } | null, settled = true): "joined" | "gone" | "unknown" {
  if (!error) return "joined";
  if (["service-unavailable", "feature-not-implemented"].includes(error.condition)) return "joined";
  if (error.condition === "item-not-found" && !settled) return "joined";
  // RFC 6120 §8.3.2 "wait", or the room's server out of reach: no word on the occupant.
  if (refusedForNow(error)) return "unknown";
  return "gone";
}

/**
 * Whether a room's error answer to what the account sent it as an occupant says the account is not
 * one (XEP-0410 §3.2: a client that finds it is no longer joined rejoins; the self-ping is one way
 * to find out, and this answer another, sooner): to a message to the room's bare JID (a group
 * message, a subject change), not-acceptable, a room's answer to a non-occupant (XEP-0045 §7.4;
 * Prosody and ejabberd), or item-not-found, no such room (RFC 6120 §8.3.3.7: a room that is gone);
 * to a presence (a nick change, §7.6), only item-not-found (Prosody's answer to presence from a
 * non-occupant, and to a room that is gone): not-acceptable refuses a nick change the room's
 * nicks are locked down for (§7.6.3), the account still in the room.
 */
export function outOfRoom(error: { condition: string } | null | undefined, answering: "message" | "presence"): boolean {
  if (!error) return false;
  return error.condition === "item-not-found" || (answering === "message" && error.condition === "not-acceptable");
}

/**
 * How often the link holder looks for rooms quiet for `idleMs`: a quarter of it, between 250 ms
 * and a minute (a room is pinged at most that long after its quiet spell ends).
 */
export const selfPingSweepMs = (idleMs: number): number => Math.min(60_000, Math.max(250, Math.floor(idleMs / 4)));
