// The component's XMPP duties, checked from a real client on Prosody and on ejabberd: disco, ping,
// service-unavailable for everything else and for unknown accounts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { KINDS } from "../helpers/servers.js";
import { grantPresence } from "../helpers/xmpp-world.js";

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

for (const kind of KINDS) {
  describe(`xmpp duties (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    let n = 0;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      gw = await startTestGateway(server);
      await gw.createAccount("romeo");
      juliet = await connectUser(server, "juliet", "pw", "x");
      await juliet.sendPresence();
    });
    after(async () => {
      await juliet?.stop();
      await gw?.stop();
      await server?.stop();
    });

    async function iq(to: string, type: "get" | "set", child: ReturnType<typeof xml>) {
      const id = `iq-${++n}`;
      await juliet.send(xml("iq", { to, type, id }, child));
      return juliet.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"));
    }
    const condition = (s: XmlElement) => (s.getChild("error") as unknown as Element | undefined)?.getChildElements().find((c) => c.attrs.xmlns === STANZAS)?.name;

    it("answers disco#info for the domain, and for an account to a subscriber only (XEP-0030 §8)", async () => {
      const dom = await iq(gw.domain, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      assert.equal(dom.attrs.type, "result");
      const q = dom.getChild("query", "http://jabber.org/protocol/disco#info")!;
      assert.ok(q.getChild("identity"));
      const features = q.getChildren("feature").map((f) => f.attrs.var);
      assert.ok(features.includes("urn:xmpp:ping") && features.includes("http://jabber.org/protocol/disco#info"));
      // XEP-0030 §8: the account's bare JID answers only an entity that may see its presence (a
      // subscription from or both); to anyone else it is service-unavailable, as if there were none.
      // Benvolio's, so that romeo's subscriptions stay as the tests below need them.
      await gw.createAccount("benvolio");
      const info = () => iq(`benvolio@${gw.domain}`, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      const stranger = await info();
      assert.equal(condition(stranger), "service-unavailable", stranger.toString());
      await grantPresence(gw, "benvolio", juliet);
      const acc = await info();
      assert.equal(acc.attrs.type, "result", acc.toString());
      assert.equal(acc.getChild("query")!.getChild("identity")!.attrs.category, "account");
      const items = await iq(gw.domain, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }));
      assert.equal(items.attrs.type, "result");
    });

    it("answers ping (XEP-0199) for the domain and accounts", async () => {
      assert.equal((await iq(gw.domain, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))).attrs.type, "result");
      assert.equal((await iq(`romeo@${gw.domain}`, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))).attrs.type, "result");
    });

    it("returns service-unavailable for unknown iqs and for accounts that do not exist", async () => {
      const vcard = await iq(gw.domain, "get", xml("vCard", { xmlns: "vcard-temp" }));
      assert.equal(vcard.attrs.type, "error");
      assert.equal(condition(vcard), "service-unavailable");
      const set = await iq(`romeo@${gw.domain}`, "set", xml("query", { xmlns: "jabber:iq:private" }));
      assert.equal(condition(set), "service-unavailable");
      const ghost = await iq(`ghost@${gw.domain}`, "get", xml("ping", { xmlns: "urn:xmpp:ping" }));
      assert.equal(condition(ghost), "service-unavailable");
    });

    // What Balcony implements both ways (src/xmpp/parse.ts and render.ts), announced on the bare
    // JID and on each online session's full JID.
    const MESSAGE_FEATURES = [
      "urn:xmpp:receipts",
      "http://jabber.org/protocol/chatstates",
      "urn:xmpp:chat-markers:0",
      "urn:xmpp:reactions:0",
      "urn:xmpp:message-correct:0",
      "urn:xmpp:message-retract:1",
      "jabber:x:oob",
      "urn:xmpp:sfs:0",
      "urn:xmpp:reply:0",
      "http://jabber.org/protocol/muc",
      "jabber:x:conference",
    ];
    const featuresOf = (res: XmlElement) => res.getChild("query", "http://jabber.org/protocol/disco#info")!.getChildren("feature").map((f) => f.attrs.var as string);

    it("advertises the message features it implements on the account's bare JID (XEP-0030) to a subscriber", async () => {
      const acc = await iq(`benvolio@${gw.domain}`, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      assert.equal(acc.attrs.type, "result");
      const features = featuresOf(acc);
      for (const f of MESSAGE_FEATURES) assert.ok(features.includes(f), `${f} in ${features.join(" ")}`);
      // Only what is implemented: the retraction of XEP-0424 before v0.4 is read, never sent.
      assert.ok(!features.includes("urn:xmpp:message-retract:0"), features.join(" "));
      assert.equal(new Set(features).size, features.length, "no feature twice (XEP-0030 §3.1)");
    });

    it("answers for an online session's full JID as its client, and service-unavailable for other resources (RFC 6121 §8.5.3)", async () => {
      const tok = gw.token("romeo");
      assert.equal((await gw.request("PUT", "/v1/presence?resource=desk", { token: tok, body: { type: "available" } })).status, 200);
      const full = `romeo@${gw.domain}/desk`;
      const info = await iq(full, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      assert.equal(info.attrs.type, "result", info.toString());
      assert.equal(info.attrs.from, full);
      const identity = info.getChild("query")!.getChild("identity")!;
      assert.equal(identity.attrs.category, "client", info.toString());
      const features = featuresOf(info);
      for (const f of ["http://jabber.org/protocol/disco#info", "urn:xmpp:ping", ...MESSAGE_FEATURES]) assert.ok(features.includes(f), `${f} in ${features.join(" ")}`);
      assert.equal((await iq(full, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))).attrs.type, "result");
      assert.equal((await iq(full, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }))).attrs.type, "result");

      // §8.5.3.1: no such resource (never there, or gone unavailable without a stream) is no one to answer for.
      assert.equal((await gw.request("PUT", "/v1/presence?resource=gone", { token: tok, body: { type: "available" } })).status, 200);
      assert.equal((await gw.request("PUT", "/v1/presence?resource=gone", { token: tok, body: { type: "unavailable" } })).status, 200);
      for (const to of [`romeo@${gw.domain}/nobody`, `romeo@${gw.domain}/gone`, `ghost@${gw.domain}/desk`]) {
        assert.equal(condition(await iq(to, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }))), "service-unavailable", to);
        assert.equal(condition(await iq(to, "get", xml("ping", { xmlns: "urn:xmpp:ping" }))), "service-unavailable", to);
      }
    });

    it("gives the presence and subscription stanzas it sends an id (RFC 6120 §8.1.3)", async () => {
      const romeo = `romeo@${gw.domain}`;
      const tok = gw.token("romeo");
      assert.equal((await gw.request("PUT", "/v1/presence?resource=desk", { token: tok, body: { type: "available" } })).status, 200);
      // Juliet subscribes; the approval sends her the account's presence from each available session (RFC 6121 §3.1.5).
      await juliet.send(xml("presence", { to: romeo, type: "subscribe" }));
      await waitFor(async () => (await gw.request("GET", "/v1/subscription-requests", { token: tok })).body.items.some((i: { jid: string }) => i.jid === "juliet@localhost"), 5000, "juliet's request");
      assert.equal((await gw.request("POST", "/v1/roster/juliet@localhost/approve", { token: tok })).status, 200);
      const available = await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${romeo}/desk` && !s.attrs.type);
      assert.match(available.attrs.id ?? "", /^[0-9a-f-]{36}$/, available.toString());
      const asked = await gw.request("POST", "/v1/roster/juliet@localhost/subscribe", { token: tok });
      assert.equal(asked.status, 202, asked.text);
      const subscribe = await juliet.waitFor((s) => s.is("presence") && s.attrs.from === romeo && s.attrs.type === "subscribe");
      assert.match(subscribe.attrs.id ?? "", /^[0-9a-f-]{36}$/, subscribe.toString());
    });

    it("bounces messages to unknown accounts with service-unavailable (RFC 6121 §8.5.2)", async () => {
      await juliet.send(xml("message", { to: `ghost@${gw.domain}`, type: "chat", id: "to-ghost" }, xml("body", {}, "anyone?")));
      const err = await juliet.waitFor((s) => s.is("message") && s.attrs.id === "to-ghost" && s.attrs.type === "error");
      assert.equal(err.attrs.from, `ghost@${gw.domain}`);
      assert.equal(condition(err), "service-unavailable");
    });

    it("reports the link in /readyz and comes back after the XMPP server restarts", async () => {
      assert.equal((await gw.request("GET", "/readyz", { token: null })).status, 200);
      await server.kill();
      const deadline = Date.now() + 5000;
      let down = await gw.request("GET", "/readyz", { token: null });
      while (down.status !== 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        down = await gw.request("GET", "/readyz", { token: null });
      }
      assert.equal(down.status, 503);
      assert.equal(down.body.xmpp, "down");
      assert.equal(down.body.database, "up");
      const queued = await gw.request("POST", "/v1/messages", { token: gw.token("romeo"), body: { to: "juliet@localhost", body: "while down" } });
      assert.equal(queued.status, 202);
      assert.equal(queued.body.status, "queued");
      // The gateway reconnects only once Juliet is back: if its link returned first, ejabberd would
      // store the message offline while Juliet's new session becomes available, and its offline
      // flush can miss it (a race inside the server, as in test/faults/link-loss.test.ts).
      const { reconnect } = gw.running.link.xmpp;
      reconnect.stop();
      await server.restart();
      await juliet.stop();
      juliet = await connectUser(server, "juliet", "pw", "x2");
      await juliet.sendPresence();
      reconnect.start();
      reconnect.scheduleReconnect?.();
      const until = Date.now() + 10_000;
      let up = await gw.request("GET", "/readyz", { token: null });
      while (up.status !== 200 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        up = await gw.request("GET", "/readyz", { token: null });
      }
      assert.equal(up.status, 200);
      // What was accepted while the link was down goes out after it returns.
      const m = await juliet.waitFor((s) => s.is("message") && s.attrs.id === queued.body.id, 10_000);
      assert.equal(m.getChildText("body"), "while down");
      // Recorded as sent once the server confirmed it (a moment after Juliet may already have it).
      await waitFor(async () => (await gw.request("GET", `/v1/messages/${queued.body.id}`, { token: gw.token("romeo") })).body.status === "sent", 5000, "status sent");
    });
  });
}
