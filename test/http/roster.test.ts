// RFC 6121 citizenship, end to end: subscriptions and presence between a Balcony account
// (driven over HTTP) and a real user on a real server, checked on both sides. Runs against
// Prosody and ejabberd, which differ in how they route subscription stanzas.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";

const KINDS: XmppServerKind[] = (process.env.ROSTER_SERVERS ?? "prosody,ejabberd").split(",") as XmppServerKind[];
const el = (s: XmlElement) => s as unknown as Element;
const QUIET_MS = 400;

for (const kind of KINDS) {
  describe(`RFC 6121 with ${kind}`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;
    let iqs = 0;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      await server.registerUser("nurse", "pw");
      gw = await startTestGateway(server, { SESSION_GRACE_SECONDS: "1", SSE_HEARTBEAT: "1s" });
      // Interested resources (RFC 6121 §2.1.6): fetch the roster, then initial presence.
      juliet = await connectUser(server, "juliet", "pw", "balcony");
      await userRoster(juliet);
      await juliet.sendPresence();
      nurse = await connectUser(server, "nurse", "pw", "garden");
      await userRoster(nurse);
      await nurse.sendPresence();
    });
    after(async () => {
      await juliet?.stop();
      await nurse?.stop();
      await gw?.stop();
      await server?.stop();
    });

    /** A fresh account per test, so tests do not depend on each other. */
    async function account() {
      const lp = uniq("romeo");
      await gw.createAccount(lp);
      const token = gw.token(lp, { resource: "phone" });
      const jid = `${lp}@${gw.domain}`;
      const call = (method: string, path: string, body?: unknown) => gw.request(method, path, { token, body });
      const item = async (contact: string) => ((await call("GET", "/v1/roster")).body.items as { jid: string; subscription: string; ask: string | null; approved: boolean }[]).find((i) => i.jid === contact);
      const events = async () => (await call("GET", "/v1/events?since=0&limit=1000")).body.items as { event: string; data: Record<string, unknown> }[];
      return { lp, jid, token, call, item, events };
    }

    async function userRoster(user: XmppUser): Promise<Map<string, { subscription: string; ask?: string }>> {
      const id = `roster-${++iqs}`;
      await user.send(xml("iq", { type: "get", id }, xml("query", { xmlns: "jabber:iq:roster" })));
      const res = el(await user.waitFor((s) => s.attrs.id === id));
      const items = res.getChild("query", "jabber:iq:roster")?.getChildren("item") ?? [];
      return new Map(items.map((i) => [i.attrs.jid!, { subscription: i.attrs.subscription ?? "none", ...(i.attrs.ask ? { ask: i.attrs.ask } : {}) }]));
    }

    type Account = Awaited<ReturnType<typeof account>>;
    /** Juliet asks for the account's presence and the account approves: the item is "from". */
    async function julietSubscribedTo(r: Account): Promise<void> {
      await sub(juliet, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request");
      await r.call("POST", "/v1/roster/juliet@localhost/approve");
    }
    /** Then the account asks back and Juliet approves: "both". */
    async function mutual(r: Account): Promise<void> {
      await julietSubscribedTo(r);
      await r.call("POST", "/v1/roster/juliet@localhost/subscribe");
      await juliet.waitFor(presenceFrom(r.jid, "subscribe"));
      await sub(juliet, r.jid, "subscribed");
      await waitFor(async () => (await r.item("juliet@localhost"))?.subscription === "both", 5000, "both");
    }

    const presenceFrom = (from: string, type?: string) => (s: XmlElement) =>
      s.is("presence") && (s.attrs.from === from || !!s.attrs.from?.startsWith(`${from}/`)) && (s.attrs.type ?? "available") === (type ?? "available");
    const sub = (user: XmppUser, to: string, type: string) => user.send(xml("presence", { to, type }));
    async function nothingFrom(user: XmppUser, from: string, sinceCount: number) {
      await new Promise((r) => setTimeout(r, QUIET_MS));
      return user.stanzas.slice(sinceCount).filter((s) => s.attrs.from === from || s.attrs.from?.startsWith(`${from}/`));
    }

    it("completes the mutual handshake started by the remote user (§3.1), even with no session, listing the request until answered", async () => {
      const r = await account();
      await sub(juliet, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request listed");
      const reqs = (await r.call("GET", "/v1/subscription-requests")).body.items;
      assert.equal(reqs[0].jid, "juliet@localhost");
      assert.ok(!Number.isNaN(Date.parse(reqs[0].receivedAt)));
      assert.ok((await r.events()).some((e) => e.event === "subscription" && e.data.jid === "juliet@localhost" && e.data.type === "subscribe"));
      assert.equal(await r.item("juliet@localhost"), undefined, "a stranger's request is not a roster item (A.1)");

      const approved = await r.call("POST", "/v1/roster/juliet@localhost/approve");
      assert.equal(approved.status, 200, approved.text);
      assert.equal(approved.body.subscription, "from");
      await juliet.waitFor(presenceFrom(r.jid, "subscribed"));
      await waitFor(async () => (await userRoster(juliet)).get(r.jid)?.subscription === "to", 5000, "juliet: to");
      assert.equal((await r.call("GET", "/v1/subscription-requests")).body.items.length, 0);

      // Now the account asks back and Juliet approves: both.
      const asked = await r.call("POST", "/v1/roster/juliet@localhost/subscribe");
      assert.equal(asked.status, 202);
      assert.equal(asked.body.ask, "subscribe");
      await juliet.waitFor(presenceFrom(r.jid, "subscribe"));
      await sub(juliet, r.jid, "subscribed");
      await waitFor(async () => (await r.item("juliet@localhost"))?.subscription === "both", 5000, "romeo: both");
      assert.equal((await r.item("juliet@localhost"))?.ask, null);
      await waitFor(async () => (await userRoster(juliet)).get(r.jid)?.subscription === "both", 5000, "juliet: both");
      const ev = await r.events();
      assert.ok(ev.some((e) => e.event === "subscription" && e.data.type === "subscribed"));
      assert.ok(ev.some((e) => e.event === "roster" && (e.data.item as { subscription: string } | undefined)?.subscription === "both"));
    });

    it("completes the handshake started by the account (§3.1.2) and receives the contact's presence", async () => {
      const r = await account();
      const sent = await r.call("POST", "/v1/roster/juliet@localhost/subscribe");
      assert.equal(sent.status, 202);
      assert.deepEqual([sent.body.subscription, sent.body.ask], ["none", "subscribe"]);
      await juliet.waitFor(presenceFrom(r.jid, "subscribe"));
      await sub(juliet, r.jid, "subscribed");
      await waitFor(async () => (await r.item("juliet@localhost"))?.subscription === "to", 5000, "romeo: to");
      // Juliet's server sends her presence once she approved (§3.1.5).
      await waitFor(async () => (await r.call("GET", "/v1/presence")).body.items.some((p: { jid: string }) => p.jid === "juliet@localhost"), 5000, "juliet's presence");
      const p = (await r.call("GET", "/v1/presence")).body.items.find((i: { jid: string }) => i.jid === "juliet@localhost");
      assert.equal(p.resources[0].resource, "balcony");
      assert.ok((await r.events()).some((e) => e.event === "presence" && e.data.jid === "juliet@localhost" && e.data.type === "available"));
    });

    it("approves while the remote user is offline; the server keeps it for her", async () => {
      const r = await account();
      const tmpName = uniq("tmp");
      await server.registerUser(tmpName, "pw");
      const tmp = await connectUser(server, tmpName, "pw", "a");
      await userRoster(tmp);
      await tmp.sendPresence();
      await sub(tmp, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request");
      await tmp.stop();
      assert.equal((await r.call("POST", `/v1/roster/${tmpName}@localhost/approve`)).status, 200);
      const back = await connectUser(server, tmpName, "pw", "b");
      await waitFor(async () => (await userRoster(back)).get(r.jid)?.subscription === "to", 5000, "offline approval recorded");
      await back.stop();
      assert.equal((await r.item(`${tmpName}@localhost`))?.subscription, "from");
    });

    it("auto-approves a pre-approved request without asking the account (§3.4)", async () => {
      const r = await account();
      const before = juliet.stanzas.length;
      const pre = await r.call("POST", "/v1/roster/juliet@localhost/approve");
      assert.equal(pre.status, 200);
      assert.deepEqual([pre.body.subscription, pre.body.approved], ["none", true]);
      assert.deepEqual(await nothingFrom(juliet, r.jid, before), [], "a pre-approval is not routed");
      await sub(juliet, r.jid, "subscribe");
      await juliet.waitFor(presenceFrom(r.jid, "subscribed"));
      await waitFor(async () => (await r.item("juliet@localhost"))?.subscription === "from", 5000, "from");
      assert.equal((await r.item("juliet@localhost"))?.approved, false);
      assert.equal((await r.call("GET", "/v1/subscription-requests")).body.items.length, 0);
      assert.ok(!(await r.events()).some((e) => e.event === "subscription" && e.data.type === "subscribe"), "not delivered to the account");
    });

    it("denies a request (§3.2.1) and cancels an existing subscription (§3.2.2)", async () => {
      const r = await account();
      await sub(nurse, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request");
      const denied = await r.call("POST", "/v1/roster/nurse@localhost/deny");
      assert.equal(denied.status, 200);
      assert.equal(denied.body.subscription, "none");
      await nurse.waitFor(presenceFrom(r.jid, "unsubscribed"));
      assert.equal((await r.call("GET", "/v1/subscription-requests")).body.items.length, 0);
      await waitFor(async () => !(await userRoster(nurse)).get(r.jid)?.ask, 5000, "nurse: no pending ask");

      // Cancel: Juliet is subscribed to the account (from), and the account is online.
      await sub(juliet, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request 2");
      await r.call("POST", "/v1/roster/juliet@localhost/approve");
      await r.call("PUT", "/v1/presence", { show: "chat" });
      await juliet.waitFor(presenceFrom(r.jid));
      const mark = juliet.stanzas.length;
      const cancel = await r.call("POST", "/v1/roster/juliet@localhost/deny");
      assert.equal(cancel.body.subscription, "none");
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(r.jid, "unsubscribed")(s));
      await waitFor(async () => ["none", undefined].includes((await userRoster(juliet)).get(r.jid)?.subscription), 5000, "juliet: none");
    });

    it("unsubscribes from the contact (§3.3) and forgets the contact's presence", async () => {
      const r = await account();
      await r.call("POST", "/v1/roster/juliet@localhost/subscribe");
      await juliet.waitFor(presenceFrom(r.jid, "subscribe"));
      await sub(juliet, r.jid, "subscribed");
      await waitFor(async () => (await r.call("GET", "/v1/presence")).body.items.length === 1, 5000, "presence");
      const un = await r.call("POST", "/v1/roster/juliet@localhost/unsubscribe");
      assert.equal(un.status, 200);
      assert.equal(un.body.subscription, "none");
      await juliet.waitFor(presenceFrom(r.jid, "unsubscribe"));
      assert.equal((await r.call("GET", "/v1/presence")).body.items.length, 0);
      await waitFor(async () => ["none", undefined].includes((await userRoster(juliet)).get(r.jid)?.subscription), 5000, "juliet: none");
    });

    it("removes a roster item with unsubscribe and unsubscribed (§2.5.2), and versions the roster", async () => {
      const r = await account();
      await mutual(r);
      const named = await r.call("PUT", "/v1/roster/juliet@localhost", { name: "Juliet", groups: ["Capulets", "Verona"] });
      assert.equal(named.status, 200);
      assert.deepEqual([named.body.name, named.body.groups, named.body.subscription], ["Juliet", ["Capulets", "Verona"], "both"]);
      const roster = await gw.request("GET", "/v1/roster", { token: r.token });
      const etag = roster.headers.get("etag")!;
      assert.equal(etag, `"${roster.body.ver}"`);
      assert.equal((await gw.request("GET", "/v1/roster", { token: r.token, headers: { "if-none-match": etag } })).status, 304);
      const mark = juliet.stanzas.length;
      assert.equal((await r.call("DELETE", "/v1/roster/juliet@localhost")).status, 204);
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(r.jid, "unsubscribe")(s));
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(r.jid, "unsubscribed")(s));
      assert.equal(await r.item("juliet@localhost"), undefined);
      const after = await gw.request("GET", "/v1/roster", { token: r.token, headers: { "if-none-match": etag } });
      assert.equal(after.status, 200);
      assert.ok(Number(after.body.ver) > Number(roster.body.ver));
      assert.ok((await r.events()).some((e) => e.event === "roster" && e.data.jid === "juliet@localhost" && e.data.removed === true));
      assert.equal((await r.call("DELETE", "/v1/roster/juliet@localhost")).status, 404);
      await waitFor(async () => ["none", undefined].includes((await userRoster(juliet)).get(r.jid)?.subscription), 5000, "juliet: none");
    });

    it("probes on first available presence, broadcasts changes both ways, and never to unsubscribed JIDs (§4)", async () => {
      const r = await account();
      // Mutual subscription with Juliet; none with the nurse.
      await mutual(r);
      await r.call("PUT", "/v1/roster/nurse@localhost", { name: "Nurse" });
      const presenceBefore = (await r.events()).filter((e) => e.event === "presence").length;
      const nurseMark = nurse.stanzas.length;
      const julietMark = juliet.stanzas.length;

      const set = await r.call("PUT", "/v1/presence", { show: "dnd", status: { en: "At the balcony", it: "Al balcone" }, priority: 5 });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.resource, "phone");
      const got = el(await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= julietMark && presenceFrom(`${r.jid}/phone`)(s)));
      assert.equal(got.getChildText("show"), "dnd");
      assert.equal(got.getChildText("priority"), "5");
      assert.deepEqual(got.getChildren("status").map((x) => [x.attrs["xml:lang"], x.text()]).sort(), [["en", "At the balcony"], ["it", "Al balcone"]]);
      // The first available presence probed Juliet: her server answered with her presence.
      await waitFor(async () => (await r.events()).filter((e) => e.event === "presence").length > presenceBefore, 5000, "probe answered");
      // Juliet changes her presence: the account sees it.
      await juliet.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "Sleeping")));
      await waitFor(async () => (await r.events()).some((e) => e.event === "presence" && e.data.show === "away" && e.data.status === "Sleeping"), 5000, "juliet away");
      const pres = (await r.call("GET", "/v1/presence")).body.items.find((i: { jid: string }) => i.jid === "juliet@localhost");
      assert.equal(pres.resources[0].show, "away");
      // Unavailable reaches Juliet; nothing ever reached the unsubscribed nurse.
      await r.call("PUT", "/v1/presence", { type: "unavailable" });
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= julietMark && presenceFrom(`${r.jid}/phone`, "unavailable")(s));
      assert.deepEqual(await nothingFrom(nurse, r.jid, nurseMark), []);
      const sessions = (await r.call("GET", "/v1/sessions")).body.items;
      assert.equal(sessions.find((s: { resource: string }) => s.resource === "phone")?.available, false);
    });

    it("answers probes from subscribers only; strangers get nothing (§4.3.2)", async () => {
      const r = await account();
      await julietSubscribedTo(r);
      await r.call("PUT", "/v1/presence", { show: "chat" });
      await juliet.waitFor(presenceFrom(`${r.jid}/phone`));
      const jMark = juliet.stanzas.length;
      const nMark = nurse.stanzas.length;
      await juliet.send(xml("presence", { to: r.jid, type: "probe" }));
      await nurse.send(xml("presence", { to: r.jid, type: "probe" }));
      await new Promise((res) => setTimeout(res, QUIET_MS));
      assert.deepEqual(await nothingFrom(nurse, r.jid, nMark), [], "stranger's probe unanswered");
      // Servers may answer a user's probe themselves or pass it on; either way Juliet is allowed our presence.
      const seen = juliet.stanzas.slice(jMark).filter((s) => s.attrs.from?.startsWith(r.jid));
      assert.ok(seen.every((s) => (s.attrs.type ?? "available") === "available"));
    });

    it("ends a session with unavailable presence, and after the grace period without a stream", async () => {
      const r = await account();
      await julietSubscribedTo(r);
      const mark = juliet.stanzas.length;
      // Session "tablet" lives through a stream; closing it starts the 1 s grace period.
      const tablet = gw.token(r.lp, { resource: "tablet" });
      const stream = await gw.sse("/v1/events", tablet);
      await gw.request("PUT", "/v1/presence", { token: tablet, body: {} });
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/tablet`)(s));
      await stream.close();
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/tablet`, "unavailable")(s), 8000);
      // Session "phone" is ended explicitly.
      await r.call("PUT", "/v1/presence", {});
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/phone`)(s));
      assert.equal((await r.call("DELETE", "/v1/sessions/phone")).status, 204);
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/phone`, "unavailable")(s));
      assert.equal((await r.call("DELETE", "/v1/sessions/phone")).status, 404);
    });

    it("deletes an account: unavailable to its subscribers, then unsubscribe/unsubscribed to every contact", async () => {
      const r = await account();
      await mutual(r);
      await r.call("PUT", "/v1/presence", {});
      await juliet.waitFor(presenceFrom(`${r.jid}/phone`));
      const mark = juliet.stanzas.length;
      assert.equal((await gw.request("DELETE", `/v1/accounts/${r.lp}`)).status, 204);
      const after = () => juliet.stanzas.slice(mark).filter((s) => s.attrs.from?.startsWith(r.jid));
      await waitFor(() => after().some((s) => s.attrs.type === "unsubscribed"), 5000, "unsubscribed");
      const types = after().map((s) => s.attrs.type ?? "available");
      assert.ok(types.indexOf("unavailable") >= 0 && types.indexOf("unavailable") < types.indexOf("unsubscribed"), types.join());
      assert.ok(types.includes("unsubscribe"), types.join());
      await waitFor(async () => ["none", undefined].includes((await userRoster(juliet)).get(r.jid)?.subscription), 5000, "juliet: none");
    });
  });
}
