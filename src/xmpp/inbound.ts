// The inbound half of the XMPP adapter: every message and presence stanza from the link is
// parsed into data and handed to the inbound use case, in arrival order.
import type { Inbound } from "../services/inbound.js";
import type { XmppLink } from "./link.js";
import { parseStanza } from "./parse.js";

export function routeInbound(link: XmppLink, inbound: Inbound): void {
  link.on("stanza", (el) => {
    const s = parseStanza(el);
    if (s) inbound.receive(s);
  });
}
