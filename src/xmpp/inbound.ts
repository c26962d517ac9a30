// The inbound half of the XMPP adapter: every message and presence stanza from the link is
// parsed into data and handed to the inbound use case, in arrival order.
import { INSTANT_PREFIX } from "../domain/muc.js";
import { SELF_PING_PREFIX } from "../domain/muc-self-ping.js";
import type { Inbound } from "../services/inbound.js";
import type { RoomSelfPings } from "../services/room-self-pings.js";
import type { Rooms } from "../services/rooms.js";
import { readError } from "./errors.js";
import type { XmppLink } from "./link.js";
import { parseStanza } from "./parse.js";
import type { Element } from "@xmpp/xml";

/** Stanzas waiting to be stored at which the link stops reading, and below which it reads again. */
export const INBOUND_HIGH = 2_000;
export const INBOUND_LOW = 500;

export function routeInbound(
  link: XmppLink,
  inbound: Inbound,
  rooms: Pick<Rooms, "configured">,
  selfPings: Pick<RoomSelfPings, "answered">,
  log: { warn(o: object, m: string): void; info(o: object, m: string): void },
): void {
  let holding = false;
  link.on("stanza", (el) => {
    if (el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error") && ownAnswer(el)) return;
    const s = parseStanza(el);
    if (s) inbound.receive(s);
    // Back-pressure: past INBOUND_HIGH stanzas waiting to be stored, the link stops reading and
    // the XMPP server holds the rest (TCP), until the backlog is down to INBOUND_LOW. Without it a
    // burst while PostgreSQL lags was all parsed and held in memory (the load audit: 55 MiB).
    if (holding || inbound.backlog < INBOUND_HIGH) return;
    const socket = link.xmpp.socket;
    holding = true;
    socket?.pause();
    void inbound.below(INBOUND_LOW).then(() => {
      holding = false;
      socket?.resume();
    });
  });

  /** An answer to an iq the rooms sent, handed to them; false for any other answer. */
  function ownAnswer(el: Element): boolean {
    const id = String(el.attrs.id ?? "");
    const instant = id.startsWith(INSTANT_PREFIX);
    if (!instant && !id.startsWith(SELF_PING_PREFIX)) return false;
    const from = String(el.attrs.from ?? "");
    const to = String(el.attrs.to ?? "");
    const error = el.attrs.type === "error" ? readError(el) : null;
    if (instant) {
      // The answer to an instant-room configuration we sent (XEP-0045 §10.1.2) completes a join.
      void rooms.configured(from, to, error).catch((err: unknown) => log.warn({ err: String(err) }, "recording a room configuration failed"));
    } else {
      // The answer to a self-ping (XEP-0410 §3.2): the account may be out of the room.
      void selfPings
        .answered(from, to, error)
        .then((rejoined) => rejoined && log.info({ room: from, occupant: to, error }, "self-ping: no longer in the room; entering it again"))
        .catch((err: unknown) => log.warn({ err: String(err) }, "reading a self-ping's answer failed"));
    }
    return true;
  }
}
