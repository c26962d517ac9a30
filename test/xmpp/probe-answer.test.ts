// The answer to a probe while the account has no available session (RFC 6121 §4.3.2), end to end
// on Prosody and ejabberd: a contact subscribed to the account logs in after the account set
// itself unavailable with a status; her server probes the account's bare JID as her initial
// presence goes out (§4.2.1), and she receives unavailable presence from that bare JID with the
// status it left with (each language) and a XEP-0203 delay stamped when it went.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver } from "../helpers/account-driver.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { fetchRoster, startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const DELAY = "urn:xmpp:delay";
const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

for (const kind of KINDS) {
  describe(`the answer to a probe for an account with no session available (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    let again: XmppUser | undefined;
    let world: XmppWorld<"juliet"> | undefined;

    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { roster: true });
      ({ server, gw } = world);
      ({ juliet } = world.users);
    });
    after(async () => {
      await again?.stop();
      await world?.stop();
    });

    it("is unavailable from the bare JID with the status it left with and a delay stamped when it went", async () => {
      const r = await accountDriver(gw, { waitMs: WAIT });
      // Juliet subscribes to the account's presence, which approves: `from` on its side.
      await juliet.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.some((i: { jid: string }) => i.jid === JULIET), WAIT, "Juliet's request");
      const approved = await r.call("POST", `/v1/roster/${JULIET}/approve`);
      assert.equal(approved.status, 200, approved.text);
      await juliet.waitFor((s) => s.is("presence") && s.attrs.from === r.jid && s.attrs.type === "subscribed", WAIT);

      // Online, then away with a status in two languages; Juliet sees both go by.
      const mark = juliet.stanzas.length;
      assert.equal((await r.call("PUT", "/v1/presence", { type: "available" })).status, 200);
      const from = Date.now();
      const away = await r.call("PUT", "/v1/presence", { type: "unavailable", status: { en: "at the ball", fr: "au bal" } });
      assert.equal(away.status, 200, away.text);
      const to = Date.now();
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.from === `${r.jid}/phone` && s.attrs.type === "unavailable", WAIT);
      await juliet.stop();

      // She logs in again: her initial presence makes her server probe the account.
      again = await connectUser(server, "juliet", "pw-juliet", "later");
      await fetchRoster(again);
      await again.sendPresence();
      const answer = await again.waitFor((s) => s.is("presence") && s.attrs.from === r.jid, WAIT);
      const got = answer.toString();
      assert.equal(answer.attrs.type, "unavailable", got);
      const statuses = Object.fromEntries(answer.getChildren("status").map((s: XmlElement) => [s.attrs["xml:lang"] ?? "", s.text()]));
      assert.deepEqual(statuses, { en: "at the ball", fr: "au bal" }, got);
      const delay = answer.getChild("delay", DELAY);
      assert.ok(delay, `a XEP-0203 delay: ${got}`);
      assert.equal(delay.attrs.from, gw.domain, got);
      assert.match(delay.attrs.stamp ?? "", STAMP, got);
      const at = Date.parse(delay.attrs.stamp!);
      assert.ok(at >= from - 1000 && at <= to + 1000, `stamped ${delay.attrs.stamp}, went between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}`);
    });
  });
}
