// The inbound half of the XMPP adapter: every message and presence stanza from the link is
// parsed into data and handed to the inbound use case, in arrival order.
import { INSTANT_PREFIX } from "../domain/muc.js";
import type { Inbound } from "../services/inbound.js";
import type { Rooms } from "../services/rooms.js";
import { readError } from "./errors.js";
import type { XmppLink } from "./link.js";
import { parseStanza } from "./parse.js";

export function routeInbound(link: XmppLink, inbound: Inbound, rooms: Pick<Rooms, "configured">, log: { warn(o: object, m: string): void }): void {
  link.on("stanza", (el) => {
    // The answer to an instant-room configuration we sent (XEP-0045 §10.1.2) completes a join.
    if (el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error") && String(el.attrs.id ?? "").startsWith(INSTANT_PREFIX)) {
      const error = el.attrs.type === "error" ? readError(el) : null;
      void rooms.configured(String(el.attrs.from ?? ""), String(el.attrs.to ?? ""), error).catch((err: unknown) => log.warn({ err: String(err) }, "recording a room configuration failed"));
      return;
    }
    const s = parseStanza(el);
    if (s) inbound.receive(s);
  });
}
