// XEP-0184 §8: "a recipient SHOULD NOT return message delivery receipts to senders who are not
// otherwise authorized to view its presence". Balcony answers a receipt once a stream (or a
// webhook) has the message, so a receipt tells its sender that the account is taking messages
// now. Juliet, whom the account lets see its presence (a subscription `from`), gets hers; Iago,
// a stranger, gets none, though his message reaches the stream. Found by the audit of stop 63.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";
import { grantPresence, startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const RECEIPTS = "urn:xmpp:receipts";
const WAIT = 10_000;

for (const kind of KINDS) {
  describe(`receipts and who may see the account's presence (${kind})`, () => {
    let world: XmppWorld<"juliet" | "iago">;
    before(async () => {
      world = await startWorld(kind, { juliet: "x", iago: "y" }, { roster: true });
    });
    after(async () => world?.stop());

    it("answers a subscriber's receipt request, not a stranger's (XEP-0184 §8)", async () => {
      const { gw, users } = world;
      await gw.createAccount("romeo");
      const romeo = `romeo@${gw.domain}`;
      await grantPresence(gw, "romeo", users.juliet);
      const stream = await gw.sse("/v1/events?resource=desk", gw.token("romeo", { resource: "desk" }));
      try {
        // Iago's first: his message reaches the stream, and its receipt would be answered then.
        const mark = users.iago.stanzas.length;
        await users.iago.send(xml("message", { to: romeo, type: "chat", id: "i1" }, xml("body", {}, "who is there?"), xml("request", { xmlns: RECEIPTS })));
        await stream.waitFor((evs) => evs.some((e) => e.event === "message" && (e.json as { body?: string }).body === "who is there?"), WAIT, "iago's message on the stream");
        // Juliet's after it: her receipt is answered after any of Iago's would have been, on the same link.
        await users.juliet.send(xml("message", { to: romeo, type: "chat", id: "j1" }, xml("body", {}, "hello"), xml("request", { xmlns: RECEIPTS })));
        const receipt = await users.juliet.waitFor((s) => s.is("message") && s.getChild("received", RECEIPTS)?.attrs.id === "j1", WAIT);
        assert.equal(receipt.attrs.from, romeo);
        // Anything the gateway sent Iago before Juliet's receipt is in before this bounce.
        const end = await gatewaySentinel(users.iago, gw.domain, WAIT);
        const receipts = receivedFrom(users.iago, romeo, mark, end).filter((s) => s.getChild("received", RECEIPTS));
        assert.deepEqual(receipts.map((s) => s.toString()), [], "no receipt to a sender not authorized to see romeo's presence");
        const owed = await gw.request("GET", "/v1/events?since=0", { token: gw.token("romeo") });
        assert.ok((owed.body.items as { event: string }[]).some((e) => e.event === "message"), "the stranger's message is kept all the same");
      } finally {
        await stream.close();
      }
    });
  });
}
