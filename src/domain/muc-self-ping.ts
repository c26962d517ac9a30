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
 * pings; item-not-found: the nick just changed), say it is still joined.
 */
export function selfPingVerdict(error: { type: string; condition: string } | null): "joined" | "gone" | "unknown" {
  if (!error) return "joined";
  if (["service-unavailable", "feature-not-implemented", "item-not-found"].includes(error.condition)) return "joined";
  // RFC 6120 §8.3.2 "wait", or the room's server out of reach: no word on the occupant.
  if (refusedForNow(error)) return "unknown";
  return "gone";
}

/**
 * How often the link holder looks for rooms quiet for `idleMs`: a quarter of it, between 250 ms
 * and a minute (a room is pinged at most that long after its quiet spell ends).
 */
export const selfPingSweepMs = (idleMs: number): number => Math.min(60_000, Math.max(250, Math.floor(idleMs / 4)));
