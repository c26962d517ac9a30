// RFC 6121 citizenship, end to end: subscriptions and presence between a Balcony account
// (driven over HTTP) and a real user on a real server, checked on both sides. Runs against
// Prosody and ejabberd, which differ in how they route subscription stanzas.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import { Client } from "undici";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";

const KINDS: XmppServerKind[] = (process.env.ROSTER_SERVERS ?? "prosody,ejabberd").split(",") as XmppServerKind[];
const el = (s: XmlElement) => s as unknown as Element;

for (const kind of KINDS) {
  describe(`RFC 6121 with ${kind}`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;
    let iqs = 0;
    /** Every presence stanza that reached the gateway over the component link, in arrival order. */
    const tapped: { type: string; from: string; to: string }[] = [];
    /** Every stanza the gateway wrote to the component link, serialized, in order. */
    const written: string[] = [];

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      await server.registerUser("nurse", "pw");
      gw = await startTestGateway(server, { SESSION_GRACE_SECONDS: "1", SSE_HEARTBEAT: "1s" });
      gw.running.link.on("stanza", (s) => {
        if (s.name === "presence") tapped.push({ type: s.attrs.type ?? "available", from: s.attrs.from ?? "", to: s.attrs.to ?? "" });
      });
      const link = gw.running.link;
      const write = link.write.bind(link);
      link.write = (stanzas: string[]) => {
        written.push(...stanzas);
        return write(stanzas);
      };
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
      const events = async () => (await call("GET", "/v1/events?since=0&limit=1000")).body.items as { id: number; event: string; data: Record<string, unknown> }[];
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
    /** What `user` received from `from` since `sinceCount`, up to a sentinel sent through the gateway now. */
    async function nothingFrom(user: XmppUser, from: string, sinceCount: number) {
      const end = await gatewaySentinel(user, gw.domain);
      return receivedFrom(user, from, sinceCount, end).map((s) => s.toString());
    }
    /**
     * An event id such that everything `user` sent before, and everything her server sent on her
     * behalf before (e.g. her presence on approving a subscription, §3.1.5), is at or below it: the
     * id of a message she sends now, which the gateway appends after all of those.
     */
    async function logSettled(r: Account, user: XmppUser): Promise<number> {
      const id = uniq("settle-");
      await user.send(xml("message", { to: r.jid, type: "chat", id }, xml("body", {}, "settle")));
      let mark = 0;
      await waitFor(
        async () => {
          const ev = (await r.call("GET", "/v1/events?since=0&limit=1000")).body.items as { id: number; event: string; data: { stanzaId?: string } }[];
          mark = ev.find((e) => e.event === "message" && e.data.stanzaId === id)?.id ?? 0;
          return mark > 0;
        },
        5000,
        "the settling message in the log",
      );
      return mark;
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
      const w0 = written.length;
      const pre = await r.call("POST", "/v1/roster/juliet@localhost/approve");
      assert.equal(pre.status, 200);
      assert.deepEqual([pre.body.subscription, pre.body.approved], ["none", true]);
      // Juliet's server would drop a stray "subscribed" (she asked for nothing), so look at the link too.
      assert.deepEqual(written.slice(w0).filter((x) => x.includes('to="juliet@localhost')), [], "a pre-approval is not written to the link");
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

    it("unsubscribe with only the nurse's request stored is 409 not-subscribed, deny of a JID never seen 200 with nothing stored; nothing sent, her request still waits", async () => {
      const r = await account();
      await sub(nurse, r.jid, "subscribe");
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.length === 1, 5000, "request");
      const mark = nurse.stanzas.length;
      const w0 = written.length;
      const un = await r.call("POST", "/v1/roster/nurse@localhost/unsubscribe");
      assert.equal(un.status, 409, un.text);
      assert.deepEqual([un.body.code, un.body.field], ["not-subscribed", "params.jid"], un.text);
      const stranger = `${uniq("nobody")}@localhost`;
      const denied = await r.call("POST", `/v1/roster/${stranger}/deny`);
      assert.equal(denied.status, 200, denied.text);
      assert.deepEqual([denied.body.jid, denied.body.subscription], [stranger, "none"], denied.text);
      assert.equal(await r.item(stranger), undefined);
      assert.equal(await r.item("nurse@localhost"), undefined, "her request alone is no roster item");
      assert.deepEqual((await r.call("GET", "/v1/subscription-requests")).body.items.map((i: { jid: string }) => i.jid), ["nurse@localhost"]);
      assert.deepEqual(await nothingFrom(nurse, r.jid, mark), [], "nothing reached the nurse");
      assert.deepEqual(written.slice(w0).filter((x) => x.includes(`from="${r.jid}"`)), [], "nothing written for either");
      // Her request can still be refused; a retry of that answers as it did.
      assert.equal((await r.call("POST", "/v1/roster/nurse@localhost/deny")).status, 200);
      await nurse.waitFor((s) => nurse.stanzas.indexOf(s) >= mark && presenceFrom(r.jid, "unsubscribed")(s));
      assert.equal((await r.call("POST", "/v1/roster/nurse@localhost/deny")).status, 200);
    });

    it("judges a path's JID by RFC 7622, however short: a domain JID of one or two letters is a contact, anything else invalid-jid naming params.jid", async () => {
      const r = await account();
      for (const jid of ["ab", "a"]) {
        const put = await r.call("PUT", `/v1/roster/${jid}`, { name: jid });
        assert.equal(put.status, 201, `${jid}: ${put.text}`);
        assert.equal(put.body.jid, jid);
        assert.equal((await r.call("DELETE", `/v1/roster/${jid}`)).status, 204);
      }
      for (const raw of ["@x", "a@", "%40"]) {
        const bad = await r.call("PUT", `/v1/roster/${raw}`);
        assert.equal(bad.status, 400, `${raw}: ${bad.text}`);
        assert.deepEqual([bad.body.code, bad.body.field], ["invalid-jid", "params.jid"], `${raw}: ${bad.text}`);
      }
    });

    it("PUT /v1/presence with no body at all is available presence (every field is optional)", async () => {
      const r = await account();
      const put = await r.call("PUT", "/v1/presence");
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.body, { resource: put.body.resource, type: "available", show: null, status: null, priority: 0 });
      const sessions = await r.call("GET", "/v1/sessions");
      assert.deepEqual(
        sessions.body.items.map((s: { resource: string; available: boolean }) => [s.resource, s.available]),
        [[put.body.resource, true]],
      );
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
      // §2.3.3: a zero-length group name is refused (400, the field named), and nothing changes.
      const empty = await r.call("PUT", "/v1/roster/juliet@localhost", { groups: ["Capulets", ""] });
      assert.equal(empty.status, 400, empty.text);
      assert.equal(empty.body.field, "body.groups.1", empty.text);
      assert.deepEqual((await r.call("GET", "/v1/roster")).body.items.find((i: { jid: string }) => i.jid === "juliet@localhost").groups, ["Capulets", "Verona"]);
      const roster = await gw.request("GET", "/v1/roster", { token: r.token });
      const etag = roster.headers.get("etag")!;
      assert.equal(etag, `"${roster.body.ver}"`);
      assert.equal(roster.headers.get("content-type"), "application/json; charset=utf-8", "as every other JSON response");
      // A strict client (undici's request) refuses a 304 whose Content-Length is not the 200's
      // (RFC 9110 §8.6): it carries none, and the connection stays usable.
      const strict = new Client(gw.url);
      const notModified = await strict.request({ method: "GET", path: "/v1/roster", headers: { authorization: `Bearer ${r.token}`, "if-none-match": etag } });
      assert.equal(notModified.statusCode, 304);
      assert.equal(await notModified.body.text(), "");
      assert.equal(notModified.headers["content-length"], undefined);
      assert.equal(notModified.headers.etag, etag);
      assert.equal((await strict.request({ method: "GET", path: "/healthz" })).statusCode, 200);
      await strict.close();
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

    it("an account deleted and made again under its name goes on from its roster's last version: the old roster's ETag is never the new's (RFC 6121 §2.6)", async () => {
      const lp = `rosaline-${kind}`;
      await gw.createAccount(lp);
      const token = gw.token(lp);
      assert.equal((await gw.request("PUT", "/v1/roster/tybalt@localhost", { token, body: { name: "Tybalt" } })).status, 201);
      const old = await gw.request("GET", "/v1/roster", { token });
      const etag = old.headers.get("etag")!;
      assert.equal((await gw.request("DELETE", `/v1/accounts/${lp}`, { token: gw.adminToken })).status, 204);
      await gw.createAccount(lp);
      // Empty, and already another version than the old roster's last.
      const made = await gw.request("GET", "/v1/roster", { token, headers: { "if-none-match": etag } });
      assert.deepEqual([made.status, made.body.items], [200, []], made.text);
      assert.ok(Number(made.body.ver) > Number(old.body.ver), `${made.body.ver} after ${old.body.ver}`);
      assert.equal((await gw.request("PUT", "/v1/roster/juliet@localhost", { token, body: { name: "Juliet" } })).status, 201);
      const fresh = await gw.request("GET", "/v1/roster", { token, headers: { "if-none-match": etag } });
      assert.equal(fresh.status, 200, "a client's cached roster (Tybalt) is not the account's (Juliet)");
      assert.deepEqual(fresh.body.items.map((i: { jid: string }) => i.jid), ["juliet@localhost"]);
      // Made and deleted again: still after everything before.
      assert.equal((await gw.request("DELETE", `/v1/accounts/${lp}`, { token: gw.adminToken })).status, 204);
      await gw.createAccount(lp);
      assert.ok(Number((await gw.request("GET", "/v1/roster", { token })).body.ver) > Number(fresh.body.ver));
    });

    it("probes on first available presence, broadcasts changes both ways, and never to unsubscribed JIDs (§4)", async () => {
      const r = await account();
      // A stream keeps the session alive: only the account's own unavailable may end it below.
      const stream = await gw.sse("/v1/events?since=0", r.token);
      // Mutual subscription with Juliet; none with the nurse.
      await mutual(r);
      await r.call("PUT", "/v1/roster/nurse@localhost", { name: "Nurse" });
      // Juliet's presence sent by her server when she approved (§3.1.5) is in the log by now: what
      // comes from her after `settled` is an answer to the probe below.
      const settled = await logSettled(r, juliet);
      const nurseMark = nurse.stanzas.length;
      const julietMark = juliet.stanzas.length;

      const set = await r.call("PUT", "/v1/presence", { show: "dnd", status: { en: "At the balcony", it: "Al balcone" }, priority: 5 });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.resource, "phone");
      const got = el(await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= julietMark && presenceFrom(`${r.jid}/phone`)(s)));
      assert.equal(got.getChildText("show"), "dnd");
      assert.equal(got.getChildText("priority"), "5");
      assert.deepEqual(got.getChildren("status").map((x) => [x.attrs["xml:lang"], x.text()]).sort(), [["en", "At the balcony"], ["it", "Al balcone"]]);
      // The first available presence probed Juliet (and only her), and her server answered with her presence.
      await waitFor(async () => (await r.events()).some((e) => e.id > settled && e.event === "presence" && e.data.jid === "juliet@localhost" && e.data.type === "available"), 5000, "Juliet's answer to the probe");
      const answer = (await r.events()).find((e) => e.id > settled && e.event === "presence")!;
      assert.equal(answer.data.from, "juliet@localhost/balcony");
      // Juliet changes her presence: the account sees it.
      await juliet.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, "Sleeping")));
      await waitFor(async () => (await r.events()).some((e) => e.event === "presence" && e.data.show === "away" && e.data.status === "Sleeping"), 5000, "juliet away");
      const pres = (await r.call("GET", "/v1/presence")).body.items.find((i: { jid: string }) => i.jid === "juliet@localhost");
      assert.equal(pres.resources[0].show, "away");
      // Unavailable reaches Juliet; nothing ever reached the unsubscribed nurse.
      const beforeUnavailable = juliet.stanzas.length;
      await r.call("PUT", "/v1/presence", { type: "unavailable" });
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= beforeUnavailable && presenceFrom(`${r.jid}/phone`, "unavailable")(s));
      assert.deepEqual(await nothingFrom(nurse, r.jid, nurseMark), []);
      const sessions = (await r.call("GET", "/v1/sessions")).body.items;
      assert.equal(sessions.find((s: { resource: string }) => s.resource === "phone")?.available, false);
      await stream.close();
    });

    it("answers a subscriber's probe with the presence of each available session; a stranger's probe gets nothing (§4.3.2)", async () => {
      const r = await account();
      await julietSubscribedTo(r); // Juliet: "to"; the nurse: nothing
      // Two available sessions, each kept alive by a stream (the grace period here is 1 s).
      const tablet = gw.token(r.lp, { resource: "tablet" });
      const streams = [await gw.sse("/v1/events?since=0", r.token), await gw.sse("/v1/events?since=0", tablet)];
      const mark = juliet.stanzas.length;
      assert.equal((await r.call("PUT", "/v1/presence", { show: "chat", status: { en: "At the balcony", it: "Al balcone" }, priority: 5 })).status, 200);
      assert.equal((await gw.request("PUT", "/v1/presence", { token: tablet, body: { show: "away", status: "Stepped out", priority: -1 } })).status, 200);
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/phone`)(s));
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && presenceFrom(`${r.jid}/tablet`)(s));
      // Settled: the broadcasts above, the approval and any answer to a probe Juliet's server sent by
      // itself are all in before this sentinel; what comes after it answers her probe below.
      const settled = await gatewaySentinel(juliet, gw.domain);
      const tapMark = tapped.length;

      await juliet.send(xml("presence", { to: r.jid, type: "probe" }));
      const answered = await gatewaySentinel(juliet, gw.domain);
      assert.ok(
        tapped.slice(tapMark).some((t) => t.type === "probe" && t.to === r.jid && t.from.split("/")[0] === "juliet@localhost"),
        `Juliet's probe reached the gateway (${kind} passes a user's probe on)`,
      );
      const answers = receivedFrom(juliet, r.jid, settled + 1, answered).map((s) => {
        const e = el(s);
        const status = e.getChildren("status").map((x) => `${x.attrs["xml:lang"] ?? ""}:${x.text()}`).sort().join("|");
        return [s.attrs.from, s.attrs.type ?? "available", e.getChildText("show"), status, e.getChildText("priority")];
      });
      assert.deepEqual(
        answers.sort(),
        [
          [`${r.jid}/phone`, "available", "chat", "en:At the balcony|it:Al balcone", "5"],
          [`${r.jid}/tablet`, "available", "away", ":Stepped out", "-1"],
        ],
        "one presence per available session, in reply to the probe",
      );

      // The nurse has no subscription: her probe reaches the gateway and goes unanswered.
      const nMark = nurse.stanzas.length;
      const nTap = tapped.length;
      await nurse.send(xml("presence", { to: r.jid, type: "probe" }));
      const nEnd = await gatewaySentinel(nurse, gw.domain);
      assert.ok(tapped.slice(nTap).some((t) => t.type === "probe" && t.to === r.jid && t.from.split("/")[0] === "nurse@localhost"), "the nurse's probe reached the gateway");
      assert.deepEqual(receivedFrom(nurse, r.jid, nMark, nEnd).map((s) => s.toString()), [], "stranger's probe unanswered");
      for (const s of streams) await s.close();
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
