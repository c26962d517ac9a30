// The component's XMPP duties, checked from a real client on Prosody and on ejabberd: disco, ping,
// service-unavailable for everything else and for unknown accounts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";

const KINDS = (process.env.XMPP_SERVERS ?? "prosody,ejabberd").split(",") as XmppServerKind[];

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

    it("answers disco#info for the domain and for an account (XEP-0030)", async () => {
      const dom = await iq(gw.domain, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      assert.equal(dom.attrs.type, "result");
      const q = dom.getChild("query", "http://jabber.org/protocol/disco#info")!;
      assert.ok(q.getChild("identity"));
      const features = q.getChildren("feature").map((f) => f.attrs.var);
      assert.ok(features.includes("urn:xmpp:ping") && features.includes("http://jabber.org/protocol/disco#info"));
      const acc = await iq(`romeo@${gw.domain}`, "get", xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
      assert.equal(acc.attrs.type, "result");
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
