// Which XMPP servers the suites that run on both run on: XMPP_SERVERS=prosody,ejabberd (the
// default) or one of them, e.g. while working on one server's behaviour; FAULT_SERVERS does the
// same for the fault suites (test/faults/), the slowest.
import type { XmppServerKind } from "../../scripts/harness/xmpp-server.js";

const kinds = (list: string | undefined): XmppServerKind[] => (list ?? "prosody,ejabberd").split(",") as XmppServerKind[];

export const KINDS = kinds(process.env.XMPP_SERVERS);
export const FAULT_KINDS = kinds(process.env.FAULT_SERVERS);
