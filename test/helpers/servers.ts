// Which XMPP servers the suites that run on both run on: XMPP_SERVERS=prosody,ejabberd (the
// default) or one of them, e.g. while working on one server's behaviour.
import type { XmppServerKind } from "../../scripts/harness/xmpp-server.js";

export const KINDS = (process.env.XMPP_SERVERS ?? "prosody,ejabberd").split(",") as XmppServerKind[];
