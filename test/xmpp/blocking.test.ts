// Blocking (XEP-0191) as the home server enforces it, end to end on Prosody and ejabberd: the
// blocklist over HTTP; nothing from a blocked JID reaches the account (messages bounce with
// service-unavailable, presence and subscription requests vanish); the account's presence stops
// going to it (unavailable when the block starts, the current presence again when it ends, and a
// probe brings hers back); the account cannot send to it; and no remote entity reads the list over
// XMPP.
//
// "Nothing arrived" is always proven by something that did arrive after it on the same ordered
// path: a bounce of the blocked stanza itself, a gateway sentinel (test/helpers/sentinel.ts), or a
// message from an unblocked sender that the account's log shows.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import pg from "pg";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type Ev } from "../helpers/account-driver.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { grantPresence, startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { gatewaySentinel, isFrom, receivedFrom } from "../helpers/sentinel.js";
import { enterRoom, MUC, NS_USER } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NS_BLOCKING = "urn:xmpp:blocking";
const WAIT = 20_000;
const JULIET = "juliet@localhost";
const NURSE = "nurse@localhost";

const el = (s: XmlElement) => s as unknown as Element;
/** The defined condition of an error stanza (RFC 6120 §8.3.3). */
const condition = (s: XmlElement) => el(s).getChild("error")?.getChildElements().find((c) => c.attrs.xmlns === STANZAS)?.name;
/** A LangText (a string, or texts by language) as one string. */
const text = (v: unknown): string => (typeof v === "string" ? v : v && typeof v === "object" ? Object.values(v as Record<string, string>).join("|") : "");
const statusOf = (s: XmlElement) => el(s).getChildren("status").map((x) => x.text()).join("|");
const path = (jid: string) => `/v1/blocklist/${encodeURIComponent(jid)}`;

for (const kind of KINDS) {
  describe(`blocking, XEP-0191 (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;

    let world: XmppWorld<"juliet" | "nurse"> | undefined;

    before(async () => {
      // Interested resources (RFC 6121 §2.1.6): the roster first, then initial presence, so that
      // subscription requests and presence reach these clients.
      world = await startWorld(kind, { juliet: "balcony", nurse: "garden" }, { roster: true });
      ({ server, gw } = world);
      ({ juliet, nurse } = world.users);
    });
    after(() => world?.stop());

    /** A fresh account per test (session "phone"), so tests do not depend on each other. */
    async function account() {
      const driver = await accountDriver(gw, { waitMs: WAIT });
      const { call } = driver;
      const blocklist = async () => {
        const r = await call("GET", "/v1/blocklist");
        assert.equal(r.status, 200, r.text);
        return r.body.items as string[];
      };
      const block = async (jid: string) => {
        const r = await call("PUT", path(jid));
        assert.equal(r.status, 204, `block ${jid}: ${r.text}`);
      };
      const unblock = async (jid: string) => {
        const r = await call("DELETE", path(jid));
        assert.equal(r.status, 204, `unblock ${jid}: ${r.text}`);
      };
      return { ...driver, blocklist, block, unblock };
    }
    type Account = Awaited<ReturnType<typeof account>>;

    const messageBodies = (evs: Ev[]) => evs.filter((e) => e.event === "message").map((e) => text(e.data.body));
    const presenceFrom = (from: string, type = "available") => (s: XmlElement) => s.is("presence") && isFrom(s, from) && (s.attrs.type ?? "available") === type;
    const since = (user: XmppUser, mark: number, pred: (s: XmlElement) => unknown) => (s: XmlElement) => user.stanzas.indexOf(s) >= mark && pred(s);

    /** `user` sends a chat message with a fresh id to `to`; resolves with the id. */
    async function say(user: XmppUser, to: string, body: string): Promise<string> {
      const id = uniq("m-");
      await user.send(xml("message", { to, type: "chat", id }, xml("body", {}, body)));
      return id;
    }
    /** The error stanza that answers message `id` from `user`. */
    const bounceOf = (user: XmppUser, id: string) => user.waitFor((s) => s.is("message") && s.attrs.id === id && s.attrs.type === "error", WAIT);
    function assertServiceUnavailable(err: XmlElement, from: string, what: string) {
      assert.equal(err.attrs.type, "error", what);
      assert.equal(err.attrs.from, from, `${what}: from the JID it was sent to`);
      assert.equal(err.getChild("error")?.attrs.type, "cancel", `${what}: ${err.toString()}`);
      assert.equal(condition(err), "service-unavailable", `${what}: ${err.toString()}`);
    }

    /** `user` (bare `userJid`) and the account subscribe to each other's presence: "both" on the account's side. */
    async function mutual(r: Account, user: XmppUser, userJid: string): Promise<void> {
      await user.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.some((i: { jid: string }) => i.jid === userJid), WAIT, `${userJid}'s request`);
      const approved = await r.call("POST", `/v1/roster/${userJid}/approve`);
      assert.equal(approved.status, 200, approved.text);
      const mark = user.stanzas.length;
      const asked = await r.call("POST", `/v1/roster/${userJid}/subscribe`);
      assert.equal(asked.status, 202, asked.text);
      await user.waitFor(since(user, mark, presenceFrom(r.jid, "subscribe")), WAIT);
      await user.send(xml("presence", { to: r.jid, type: "subscribed" }));
      await waitFor(
        async () => ((await r.call("GET", "/v1/roster")).body.items as { jid: string; subscription: string }[]).some((i) => i.jid === userJid && i.subscription === "both"),
        WAIT,
        `${userJid}: both`,
      );
    }

    it("lists, adds and removes items: sorted, normalised, validated, idempotent, and each account sees only its own", async () => {
      const r = await account();
      assert.deepEqual(await r.blocklist(), [], "a new account blocks no one");
      await r.block(JULIET);
      await r.block("Juliet@LOCALHOST"); // the same JID, normalised: still one item
      await r.block("localhost");
      await r.block(`${NURSE}/Garden`); // a full JID: the resource keeps its case
      await r.block("localhost/otherres");
      assert.deepEqual(await r.blocklist(), [JULIET, "localhost", "localhost/otherres", `${NURSE}/Garden`]);
      const listed = await r.blocklist();
      assert.deepEqual(listed, [...listed].sort(), "sorted");

      // JIDs that do not parse (RFC 7622): 400 invalid-jid, and nothing is stored.
      for (const bad of ["@localhost", "juliet@localhost/", "ju<liet@localhost", "juliet@@localhost"]) {
        const refused = await r.call("PUT", path(bad));
        assert.equal(refused.status, 400, `PUT ${bad}: ${refused.text}`);
        assert.equal(refused.body?.code, "invalid-jid", `PUT ${bad}: ${refused.text}`);
      }
      const badDelete = await r.call("DELETE", path("@localhost"));
      assert.equal(badDelete.status, 400, badDelete.text);
      assert.equal(badDelete.body?.code, "invalid-jid", badDelete.text);
      assert.deepEqual(await r.blocklist(), listed, "the refused JIDs were not stored");

      // Removal, by any spelling of the same JID; a second removal is a no-op 204 (idempotent:
      // XEP-0191 defines no error for unblocking a JID that is not blocked).
      await r.unblock("JULIET@localhost");
      await r.unblock("localhost/otherres");
      assert.deepEqual(await r.blocklist(), ["localhost", `${NURSE}/Garden`]);
      await r.unblock(JULIET);
      // A full JID item is not its bare JID, nor another resource: removing those removes nothing.
      await r.unblock(NURSE);
      await r.unblock(`${NURSE}/garden`);
      assert.deepEqual(await r.blocklist(), ["localhost", `${NURSE}/Garden`]);

      // Another account has its own list: it sees none of this one, and changes none of it.
      const other = await account();
      assert.deepEqual(await other.blocklist(), []);
      await other.unblock("localhost");
      await other.block(JULIET);
      assert.deepEqual(await other.blocklist(), [JULIET]);
      assert.deepEqual(await r.blocklist(), ["localhost", `${NURSE}/Garden`], "untouched by the other account");
      assert.equal((await gw.request("GET", "/v1/blocklist", { token: null })).status, 401);
    });

    it("bounces a blocked user's message with service-unavailable and stores nothing of her; drops her subscription request; lets her through once unblocked", async () => {
      const r = await account();
      await r.block(JULIET);
      const id = await say(juliet, r.jid, "blocked hello");
      assertServiceUnavailable(await bounceOf(juliet, id), r.jid, "the blocked message's bounce");
      // A subscription request from her vanishes; the gateway sentinel proves it was handled.
      await juliet.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await gatewaySentinel(juliet, gw.domain, WAIT);
      // The nurse is not blocked: her request and message arrive, after everything of Juliet's above.
      await nurse.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await say(nurse, r.jid, "nurse sentinel");
      await r.until("the nurse's message", (e) => e.event === "message" && text(e.data.body) === "nurse sentinel");
      const evs = await r.events();
      assert.deepEqual(messageBodies(evs), ["nurse sentinel"], "only the nurse's message is in the log");
      assert.deepEqual(evs.filter((e) => e.event === "subscription").map((e) => `${String(e.data.jid)}:${String(e.data.type)}`), [`${NURSE}:subscribe`], "only the nurse's request");
      assert.deepEqual(evs.filter((e) => JSON.stringify(e.data).includes(JULIET)), [], "no event of any kind names Juliet");
      const requests = (await r.call("GET", "/v1/subscription-requests")).body.items as { jid: string }[];
      assert.deepEqual(requests.map((q) => q.jid), [NURSE]);
      const stored = await r.call("GET", `/v1/messages?with=${encodeURIComponent(JULIET)}`);
      assert.equal(stored.status, 200, stored.text);
      assert.deepEqual(stored.body.items, [], "the blocked message is not stored");
      const nurses = await r.call("GET", `/v1/messages?with=${encodeURIComponent(NURSE)}`);
      assert.deepEqual(nurses.body.items.map((m: { body: unknown }) => text(m.body)), ["nurse sentinel"], "the nurse's is");

      // Unblocked: her next message is delivered and stored; the blocked one never is.
      await r.unblock(JULIET);
      const mark = juliet.stanzas.length;
      const next = await say(juliet, r.jid, "after unblock");
      const got = await r.until("Juliet's message after the unblock", (e) => e.event === "message" && text(e.data.body) === "after unblock");
      assert.equal(got.data.from, `${JULIET}/balcony`);
      assert.deepEqual(messageBodies(await r.events()), ["nurse sentinel", "after unblock"]);
      const end = await gatewaySentinel(juliet, gw.domain, WAIT);
      assert.deepEqual(
        receivedFrom(juliet, r.jid, mark, end).filter((s) => s.attrs.id === next).map((s) => s.toString()),
        [],
        "no bounce once unblocked",
      );
      const history = await r.call("GET", `/v1/messages?with=${encodeURIComponent(JULIET)}`);
      assert.deepEqual(history.body.items.map((m: { body: unknown }) => text(m.body)), ["after unblock"]);
    });

    it("a block the link's instance has not heard of yet (another instance's, its NOTIFY still on the way) bounces her next message all the same: nothing stored or streamed", async () => {
      // Instances share the database; the one holding the component link checks each stanza
      // against its cached copy of the list, which it forgets when the NOTIFY of a change comes.
      // Here the block is committed as another instance commits it, but no NOTIFY ever comes:
      // the cached list (empty, read for her first message) stays stale for its 60 s.
      const r = await account();
      const stream = await gw.sse("/v1/events?since=0", r.token);
      const streamed = () => stream.events.filter((e) => e.event === "message").map((e) => text((e.json as { body?: unknown }).body));
      try {
        await say(juliet, r.jid, "before the block");
        await stream.waitFor(() => streamed().includes("before the block"), WAIT, "her message before the block");
        const db = new pg.Client({ connectionString: gw.db.url });
        await db.connect();
        try {
          const added = await db.query("INSERT INTO block (account_id, jid) SELECT id, $2 FROM account WHERE localpart = $1", [r.lp, JULIET]);
          assert.equal(added.rowCount, 1);
        } finally {
          await db.end();
        }
        const id = await say(juliet, r.jid, "blocked, not yet heard of");
        assertServiceUnavailable(await bounceOf(juliet, id), r.jid, "the message after the unheard-of block");
        // The sentinel: the nurse is not blocked, and her message comes after Juliet's was bounced.
        await say(nurse, r.jid, "nurse sentinel");
        await stream.waitFor(() => streamed().includes("nurse sentinel"), WAIT, "the nurse's message");
        assert.deepEqual(streamed(), ["before the block", "nurse sentinel"], "nothing of the blocked message was streamed");
        assert.deepEqual(messageBodies(await r.events()), ["before the block", "nurse sentinel"], "nor logged");
        const stored = await r.call("GET", `/v1/messages?with=${encodeURIComponent(JULIET)}`);
        assert.deepEqual(stored.body.items.map((m: { body: unknown }) => text(m.body)), ["before the block"], "nor stored");
        // Bounced, her next one is decided by the list as committed: bounced too.
        const again = await say(juliet, r.jid, "blocked, heard of now");
        assertServiceUnavailable(await bounceOf(juliet, again), r.jid, "the next message");
      } finally {
        await stream.close();
      }
    });

    it("a domain item blocks every user at it; a full JID item blocks only that resource", async () => {
      const r = await account();
      await r.block("localhost");
      const fromJuliet = await say(juliet, r.jid, "juliet under a domain block");
      assertServiceUnavailable(await bounceOf(juliet, fromJuliet), r.jid, "Juliet under the domain block");
      const fromNurse = await say(nurse, r.jid, "nurse under a domain block");
      assertServiceUnavailable(await bounceOf(nurse, fromNurse), r.jid, "the nurse under the domain block");
      // Both bounces are in: whatever those messages could have logged is logged. Unblock, and a
      // message from Juliet now shows the log.
      await r.unblock("localhost");
      await say(juliet, r.jid, "domain sentinel");
      await r.until("the sentinel after the domain unblock", (e) => e.event === "message" && text(e.data.body) === "domain sentinel");
      assert.deepEqual(messageBodies(await r.events()), ["domain sentinel"]);

      // juliet@localhost/otherres only: her "balcony" resource still gets through.
      await r.block(`${JULIET}/otherres`);
      const otherres = await connectUser(server, "juliet", "pw-juliet", "otherres");
      try {
        await otherres.sendPresence();
        const fromOther = await say(otherres, r.jid, "from the blocked resource");
        assertServiceUnavailable(await bounceOf(otherres, fromOther), r.jid, "the blocked resource");
        const fromBalcony = await say(juliet, r.jid, "from the balcony");
        const got = await r.until("the other resource's message", (e) => e.event === "message" && text(e.data.body) === "from the balcony");
        assert.equal(got.data.from, `${JULIET}/balcony`);
        assert.deepEqual(messageBodies(await r.events()), ["domain sentinel", "from the balcony"]);
        const end = await gatewaySentinel(juliet, gw.domain, WAIT);
        assert.ok(!juliet.stanzas.slice(0, end).some((s) => s.attrs.id === fromBalcony && s.attrs.type === "error"), "the balcony's message was not bounced");
      } finally {
        await otherres.stop();
      }
    });

    it("stops the account's presence to a blocked subscriber (unavailable at the block, no broadcasts, no probe answers), drops hers, and sends the current presence on unblock", async () => {
      const r = await account();
      // A stream keeps the "phone" session alive throughout.
      const stream = await gw.sse("/v1/events?since=0", r.token);
      try {
        await mutual(r, juliet, JULIET);
        await mutual(r, nurse, NURSE);
        let jMark = juliet.stanzas.length;
        let nMark = nurse.stanzas.length;
        const first = await r.call("PUT", "/v1/presence", { status: "first" });
        assert.equal(first.status, 200, first.text);
        await juliet.waitFor(since(juliet, jMark, (s) => presenceFrom(`${r.jid}/phone`)(s) && statusOf(s) === "first"), WAIT);
        await nurse.waitFor(since(nurse, nMark, (s) => presenceFrom(`${r.jid}/phone`)(s) && statusOf(s) === "first"), WAIT);

        // The block starts: Juliet is told the account went away.
        jMark = juliet.stanzas.length;
        nMark = nurse.stanzas.length;
        await r.block(JULIET);
        const gone = await juliet.waitFor(since(juliet, jMark, presenceFrom(r.jid, "unavailable")), WAIT);
        assert.equal(gone.attrs.from, `${r.jid}/phone`, "from each available session");
        const sinceGone = juliet.stanzas.indexOf(gone) + 1;

        // While blocked: her probe goes unanswered and the account's change is not broadcast to her,
        // but it is to the nurse.
        await juliet.send(xml("presence", { to: r.jid, type: "probe" }));
        const second = await r.call("PUT", "/v1/presence", { show: "away", status: "second" });
        assert.equal(second.status, 200, second.text);
        const toNurse = await nurse.waitFor(since(nurse, nMark, (s) => presenceFrom(`${r.jid}/phone`)(s) && statusOf(s) === "second"), WAIT);
        assert.deepEqual(
          receivedFrom(nurse, r.jid, nMark, nurse.stanzas.indexOf(toNurse) + 1).map((s) => `${s.attrs.type ?? "available"}:${statusOf(s)}`),
          ["available:second"],
          "the nurse got the change, and nothing about Juliet's block",
        );
        const end = await gatewaySentinel(juliet, gw.domain, WAIT);
        assert.deepEqual(receivedFrom(juliet, r.jid, sinceGone, end).map((s) => s.toString()), [], "nothing from the account reached Juliet after the unavailable");

        // Her own presence does not reach the account while blocked; the nurse's does.
        await juliet.send(xml("presence", {}, xml("status", {}, "juliet while blocked")));
        await gatewaySentinel(juliet, gw.domain, WAIT);
        await nurse.send(xml("presence", {}, xml("status", {}, "nurse sentinel")));
        await r.until("the nurse's presence", (e) => e.event === "presence" && e.data.jid === NURSE && text(e.data.status) === "nurse sentinel");
        const evs = await r.events();
        assert.ok(evs.some((e) => e.event === "presence" && e.data.jid === JULIET), "Juliet's presence reached the account before the block");
        assert.deepEqual(
          evs.filter((e) => e.event === "presence" && e.data.jid === JULIET && text(e.data.status) === "juliet while blocked"),
          [],
          "her presence while blocked is no event",
        );
        const contacts = (await r.call("GET", "/v1/presence")).body.items as { jid: string; resources: { status: unknown }[] }[];
        assert.ok(!contacts.some((c) => c.jid === JULIET && c.resources.some((x) => text(x.status) === "juliet while blocked")), "nor the stored presence");

        // Unblocked: Juliet gets the account's current presence again.
        jMark = juliet.stanzas.length;
        await r.unblock(JULIET);
        const back = await juliet.waitFor(since(juliet, jMark, presenceFrom(`${r.jid}/phone`)), WAIT);
        assert.equal(statusOf(back), "second", back.toString());
        assert.equal(el(back).getChildText("show"), "away", back.toString());
        // And the account probed her (RFC 6121 §4.3.1): the block forgot her presence, she stayed
        // online, and her server's answer brings it back.
        await waitFor(
          async () => ((await r.call("GET", "/v1/presence")).body.items as { jid: string; resources: { status: unknown }[] }[]).some((c) => c.jid === JULIET && c.resources.some((x) => text(x.status) === "juliet while blocked")),
          WAIT,
          "Juliet's presence in GET /v1/presence again after the unblock",
        );
      } finally {
        await stream.close();
      }
    });

    it("a stranger who is not blocked: her directed presence reaches the account's session (not stored) and her probe gets unsubscribed (RFC 6121 §4.6.4, §4.3.2); once blocked, neither", async () => {
      const r = await account();
      const stream = await gw.sse("/v1/events?since=0", r.token);
      const requests = async () => ((await r.call("GET", "/v1/subscription-requests")).body.items as { jid: string }[]).map((i) => i.jid);
      try {
        const on = await r.call("PUT", "/v1/presence", { status: "here" });
        assert.equal(on.status, 200, on.text);
        await nurse.send(xml("presence", { to: r.jid }, xml("status", {}, "directed hello")));
        await r.until("the nurse's directed presence", (e) => e.event === "presence" && e.data.jid === NURSE && text(e.data.status) === "directed hello");
        assert.deepEqual((await r.call("GET", "/v1/presence")).body.items, [], "the nurse is no contact: nothing stored");

        // Her server shows her an "unsubscribed" only when it changes her roster (RFC 6121 §3.2.3),
        // so she asks for the account's presence first; on the account's side nothing changes.
        await nurse.send(xml("presence", { to: r.jid, type: "subscribe" }));
        await waitFor(async () => (await requests()).includes(NURSE), WAIT, "the nurse's request");
        let mark = nurse.stanzas.length;
        await nurse.send(xml("presence", { to: r.jid, type: "probe" }));
        const answer = await nurse.waitFor(since(nurse, mark, presenceFrom(r.jid, "unsubscribed")), WAIT);
        assert.equal(answer.attrs.from, r.jid, "from the account's bare JID");
        let end = await gatewaySentinel(nurse, gw.domain, WAIT);
        assert.deepEqual(
          receivedFrom(nurse, r.jid, mark, end).map((s) => s.attrs.type ?? "available"),
          ["unsubscribed"],
          "and never the account's presence",
        );
        assert.deepEqual(await requests(), [NURSE], "her request still waits for an answer");

        // Blocked (her request is pending on her side again, so an answer would reach her client).
        await nurse.send(xml("presence", { to: r.jid, type: "subscribe" }));
        await gatewaySentinel(nurse, gw.domain, WAIT);
        await r.block(NURSE);
        mark = nurse.stanzas.length;
        await nurse.send(xml("presence", { to: r.jid, type: "probe" }));
        await nurse.send(xml("presence", { to: r.jid }, xml("status", {}, "nurse while blocked")));
        end = await gatewaySentinel(nurse, gw.domain, WAIT);
        assert.deepEqual(receivedFrom(nurse, r.jid, mark, end).map((s) => s.toString()), [], "no answer to a blocked prober");
        await juliet.send(xml("presence", { to: r.jid }, xml("status", {}, "juliet sentinel")));
        await r.until("Juliet's directed presence", (e) => e.event === "presence" && e.data.jid === JULIET && text(e.data.status) === "juliet sentinel");
        assert.deepEqual(
          (await r.events()).filter((e) => e.event === "presence" && text(e.data.status) === "nurse while blocked"),
          [],
          "her presence while blocked is no event",
        );
      } finally {
        await stream.close();
      }
    });

    it("refuses to send to a blocked JID or into a blocked domain: 400 blocked, for messages and subscription requests", async () => {
      const r = await account();
      await r.block(JULIET);
      for (const to of [JULIET, `${JULIET}/balcony`, "Juliet@LOCALHOST"]) {
        const refused = await r.call("POST", "/v1/messages", { to, body: `never to ${to}` });
        assert.equal(refused.status, 400, `to ${to}: ${refused.text}`);
        assert.equal(refused.body?.code, "blocked", `to ${to}: ${refused.text}`);
      }
      const ask = await r.call("POST", `/v1/roster/${JULIET}/subscribe`);
      assert.equal(ask.status, 400, ask.text);
      assert.equal(ask.body?.code, "blocked", ask.text);

      // The nurse is not blocked, until her whole domain is.
      const toNurse = await r.call("POST", "/v1/messages", { to: NURSE, body: "to the nurse" });
      assert.equal(toNurse.status, 202, toNurse.text);
      await nurse.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "to the nurse", WAIT);
      await r.block("localhost");
      const inDomain = await r.call("POST", "/v1/messages", { to: NURSE, body: "never to the nurse" });
      assert.equal(inDomain.status, 400, inDomain.text);
      assert.equal(inDomain.body?.code, "blocked", inDomain.text);
      const askNurse = await r.call("POST", `/v1/roster/${NURSE}/subscribe`);
      assert.equal(askNurse.status, 400, askNurse.text);
      assert.equal(askNurse.body?.code, "blocked", askNurse.text);

      // Unblocked: a message goes out; it is the first and only stanza Juliet gets from the account.
      await r.unblock("localhost");
      await r.unblock(JULIET);
      const sent = await r.call("POST", "/v1/messages", { to: JULIET, body: "after unblock" });
      assert.equal(sent.status, 202, sent.text);
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "after unblock", WAIT);
      assert.deepEqual(
        receivedFrom(juliet, r.jid, 0, juliet.stanzas.length).map((s) => `${s.name}:${s.attrs.type ?? ""}:${s.getChildText("body") ?? ""}`),
        ["message:chat:after unblock"],
        "no refused message and no subscription request went out",
      );
      const end = await gatewaySentinel(nurse, gw.domain, WAIT);
      assert.deepEqual(
        receivedFrom(nurse, r.jid, 0, end).map((s) => `${s.name}:${s.getChildText("body") ?? ""}`),
        ["message:to the nurse"],
        "nothing refused reached the nurse",
      );
      const history = await r.call("GET", `/v1/messages?with=${encodeURIComponent(JULIET)}`);
      assert.deepEqual(history.body.items.map((m: { body: unknown }) => text(m.body)), ["after unblock"], "a refused message is not recorded");
    });

    it("subscribe or approve at the same moment as a block: refused (400 blocked, nothing kept) or sent before the block, never kept unsent", async () => {
      // Every stanza the gateway writes to the component link, serialized.
      const link = gw.running.link;
      const write = link.write;
      const written: string[] = [];
      link.write = (stanzas: string[]) => {
        written.push(...stanzas);
        return write.call(link, stanzas);
      };
      const wrote = (from: string, to: string, type: string) => written.some((x) => x.includes(`from="${from}"`) && x.includes(`to="${to}"`) && x.includes(`type="${type}"`));
      const outcomes = { refused: 0, sent: 0 };
      /** PUT /v1/blocklist/{contact} and `action` at once (in either order of sending); checks what came of the action. */
      async function race(r: Account, round: number, contact: string, action: "subscribe" | "approve", stanza: string) {
        const calls = [() => r.call("PUT", path(contact)), () => r.call("POST", `/v1/roster/${contact}/${action}`)];
        const [blocked, acted] = round % 2 ? await Promise.all(calls.map((c) => c())) : (await Promise.all(calls.reverse().map((c) => c()))).reverse();
        assert.equal(blocked!.status, 204, blocked!.text);
        const item = ((await r.call("GET", "/v1/roster")).body.items as { jid: string; subscription: string; ask: string | null }[]).find((i) => i.jid === contact);
        if (acted!.status === 400) {
          assert.equal(acted!.body?.code, "blocked", acted!.text);
          assert.equal(acted!.body?.field, "params.jid", acted!.text);
          assert.ok(!item || (item.subscription === "none" && item.ask === null), `round ${round}: a refused ${action} changed nothing: ${JSON.stringify(item)}`);
          outcomes.refused++;
        } else {
          assert.equal(acted!.status, action === "subscribe" ? 202 : 200, acted!.text);
          // Went through before the block: its stanza went out (nothing drops it after the commit).
          await waitFor(() => wrote(r.jid, contact, stanza), 5000, `round ${round}: the ${stanza} to ${contact} that ${action} answered ${acted!.status} for`);
          outcomes.sent++;
        }
      }
      try {
        const r = await account();
        for (let i = 0; i < 40; i++) await race(r, i, `${uniq("c")}@localhost`, "subscribe", "subscribe");
        // Approving needs a request waiting: the nurse asks a fresh account each round.
        for (let i = 0; i < 12; i++) {
          const fresh = await account();
          await nurse.send(xml("presence", { to: fresh.jid, type: "subscribe" }));
          await waitFor(async () => (await fresh.call("GET", "/v1/subscription-requests")).body.items.length === 1, WAIT, "the nurse's request");
          await race(fresh, i, NURSE, "approve", "subscribed");
          const requests = (await fresh.call("GET", "/v1/subscription-requests")).body.items as { jid: string }[];
          assert.equal(requests.length, wrote(fresh.jid, NURSE, "subscribed") ? 0 : 1, `round ${i}: a refused approval leaves the request waiting`);
        }
      } finally {
        link.write = write;
      }
      assert.ok(outcomes.refused > 0, `some actions came after the block: ${JSON.stringify(outcomes)}`);
    });

    it("changes nothing at a blocked peer: reactions and corrections are 400 blocked, a retraction is a tombstone kept here only, displayed marks the conversation read and sends no marker", async () => {
      const r = await account();
      const mine = await r.send({ to: JULIET, body: "before the block" });
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "before the block", WAIT);
      // Markable (XEP-0333): unblocked, displayed would send her a marker.
      const hersStanza = uniq("m-");
      await juliet.send(xml("message", { to: r.jid, type: "chat", id: hersStanza }, xml("body", {}, "hers, before the block"), xml("markable", { xmlns: "urn:xmpp:chat-markers:0" })));
      const hers = String((await r.until("her message", (e) => e.event === "message" && e.data.stanzaId === hersStanza)).data.id);
      const mark = juliet.stanzas.length;
      await r.block(JULIET);
      const refused = [
        await r.call("POST", `/v1/messages/${hers}/reactions`, { emojis: ["👍"] }),
        await r.call("POST", `/v1/messages/${mine}/reactions`, { emojis: ["👍"] }),
        await r.call("POST", "/v1/messages", { to: JULIET, body: "changed", replace: mine }),
      ];
      assert.deepEqual(
        refused.map((x) => `${x.status} ${x.body?.code} ${x.body?.field}`),
        ["400 blocked params.id", "400 blocked params.id", "400 blocked body.to"],
        refused.map((x) => x.text).join("\n"),
      );
      assert.deepEqual([(await r.view(hers)).reactions, (await r.view(mine)).body], [{}, "before the block"], "nothing changed here either");
      // XEP-0191 §3.3 forbids only the marker stanza: the conversation is read here all the same.
      const conversation = async () => {
        const list = await r.call("GET", "/v1/conversations");
        const c = (list.body.items as { with: string; unread: number; lastReadId: string | null }[]).find((i) => i.with === JULIET);
        return [c?.unread, c?.lastReadId];
      };
      assert.deepEqual(await conversation(), [1, null], "unread before");
      const displayed = await r.call("POST", `/v1/messages/${hers}/displayed`);
      assert.equal(displayed.status, 204, displayed.text);
      assert.deepEqual(await conversation(), [0, hers], "read up to her message");
      // A retraction while blocked: the tombstone is kept here, nothing goes to her.
      assert.equal((await r.call("DELETE", `/v1/messages/${mine}`)).status, 204);
      const tomb = await r.view(mine);
      assert.deepEqual([tomb.body, typeof tomb.retracted], [null, "string"]);
      // Unblocked: the account's next message is the first stanza she gets from it since the block.
      await r.unblock(JULIET);
      await r.send({ to: JULIET, body: "after the unblock" });
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "after the unblock", WAIT);
      assert.deepEqual(
        receivedFrom(juliet, r.jid, mark, juliet.stanzas.length).map((s) => s.getChildText("body")),
        ["after the unblock"],
        "no reaction, marker, correction or retraction reached her while she was blocked",
      );
      assert.equal(receivedFrom(juliet, r.jid, mark, juliet.stanzas.length).filter((s) => s.getChild("displayed", "urn:xmpp:chat-markers:0")).length, 0, "no marker");
      // The sentinel: unblocked, the same request sends her the marker.
      assert.equal((await r.call("POST", `/v1/messages/${hers}/displayed`)).status, 204);
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChild("displayed", "urn:xmpp:chat-markers:0")?.attrs.id === hersStanza, WAIT);
    });

    it("refuses to join a blocked room (or one in a blocked service) at once, leaves a joined room when it is blocked, and refuses its subject and invitations through it or to a blocked JID: 400 blocked, nothing recorded or sent", async () => {
      const r = await account();
      const room = `${uniq("blk-")}@${MUC}`;
      const nick = `${r.lp}-nick`;
      const occupant = `${room}/${nick}`;
      await enterRoom(juliet, room, "juliet");
      const refused = (what: string, res: Awaited<ReturnType<Account["call"]>>, field: string) =>
        assert.deepEqual([res.status, res.body?.code, res.body?.field], [400, "blocked", field], `${what}: ${res.text}`);
      const rooms = async () => ((await r.call("GET", "/v1/rooms")).body.items as { room: string }[]).map((x) => x.room);
      const fromOccupant = (mark: number, pred: (s: XmlElement) => boolean) => juliet.waitFor(since(juliet, mark, (s) => s.attrs.from === occupant && pred(s)), WAIT);

      // XEP-0191 §3.3: the join presence would go to a blocked JID (and the room's answer be dropped).
      let mark = juliet.stanzas.length;
      for (const item of [room, MUC]) {
        await r.block(item);
        const started = Date.now();
        refused(`join under a block of ${item}`, await r.call("PUT", `/v1/rooms/${room}`, { nick }), "params.room");
        assert.ok(Date.now() - started < 5000, "refused at once, not after the join's timeout");
        await r.unblock(item);
      }
      assert.deepEqual(await rooms(), [], "no join recorded");
      const joined = await r.call("PUT", `/v1/rooms/${room}`, { nick });
      assert.equal(joined.status, 200, joined.text);
      // Relayed by the room, the join's presence is the first Juliet saw of the occupant: no refused join went out before it.
      const entered = await fromOccupant(mark, (s) => s.is("presence"));
      assert.equal(entered.attrs.type, undefined, entered.toString());

      // In the room, then blocked: the account's presence stops going there (API.md Blocking), so
      // it leaves (XEP-0045 §7.14) and the room is forgotten, not rejoined; nothing goes through it.
      mark = juliet.stanzas.length;
      await r.block(room);
      assert.deepEqual(await rooms(), [], "the room is left with the block");
      await fromOccupant(mark, (s) => s.is("presence") && s.attrs.type === "unavailable");
      refused("subject", await r.call("PUT", `/v1/rooms/${room}/subject`, { subject: "never" }), "params.room");
      refused("invitation through the room", await r.call("POST", `/v1/rooms/${room}/invitations`, { jid: NURSE }), "params.room");
      await r.unblock(room);

      // In the room again: no invitation to a blocked JID either.
      assert.equal((await r.call("PUT", `/v1/rooms/${room}`, { nick })).status, 200);
      const nMark = nurse.stanzas.length;
      await r.block(NURSE);
      refused("invitation of a blocked JID", await r.call("POST", `/v1/rooms/${room}/invitations`, { jid: NURSE }), "body.jid");
      await r.unblock(NURSE);
      // Sentinels on the same path (the account's outbox, the room): what goes out once unblocked is the first to arrive.
      assert.equal((await r.call("PUT", `/v1/rooms/${room}/subject`, { subject: "after" })).status, 202);
      const subject = await fromOccupant(mark, (s) => s.is("message") && s.getChild("subject") !== undefined);
      assert.equal(subject.getChildText("subject"), "after", "the refused subject change never reached the room");
      assert.equal((await r.call("POST", `/v1/rooms/${room}/invitations`, { jid: NURSE, reason: "sentinel" })).status, 202);
      const invite = await nurse.waitFor(since(nurse, nMark, (s) => s.is("message") && s.attrs.from === room && !!el(s).getChild("x", NS_USER)?.getChild("invite")), WAIT);
      assert.equal(el(invite).getChild("x", NS_USER)!.getChild("invite")!.getChildText("reason"), "sentinel", "the refused invitation never reached the nurse");
    });

    it("drops what a room relays from a JID the account blocked: her mediated invitation (XEP-0045 §7.8.2), named as the room names her", async () => {
      const r = await account();
      const room = `${uniq("relay-")}@${MUC}`;
      await enterRoom(juliet, room, "juliet");
      await enterRoom(nurse, room, "nurse");
      const invite = (user: XmppUser, reason: string) =>
        user.send(xml("message", { to: room, id: uniq("inv-") }, xml("x", { xmlns: NS_USER }, xml("invite", { to: r.jid }, xml("reason", {}, reason)))));
      const invited = (reason: string) => (e: Ev) => e.event === "room" && e.data.kind === "invited" && e.data.reason === reason;
      // Unblocked, it arrives, from the inviter as this server's room names her: ejabberd her real
      // JID, Prosody her occupant JID. That is the JID blocked.
      await invite(juliet, "before the block");
      const inviter = String((await r.until("the invitation before the block", invited("before the block"))).data.from);
      assert.ok(inviter.startsWith(JULIET) || inviter === `${room}/juliet`, inviter);
      await r.block(inviter);
      await invite(juliet, "after the block");
      // Her ping after it comes back once the room has handled her invitation; the nurse's, relayed
      // by the same room to the account after that, is the sentinel.
      const ping = uniq("ping-");
      await juliet.send(xml("iq", { to: room, type: "get", id: ping }, xml("ping", { xmlns: "urn:xmpp:ping" })));
      await juliet.waitFor((s) => s.is("iq") && s.attrs.id === ping, WAIT);
      await invite(nurse, "sentinel");
      await r.until("the nurse's invitation", invited("sentinel"));
      const reasons = (await r.events()).filter((e) => e.event === "room" && e.data.kind === "invited").map((e) => e.data.reason);
      assert.deepEqual(reasons, ["before the block", "sentinel"], "the blocked inviter's second invitation is dropped");
    });

    it("a block another instance committed, not heard of here yet (its NOTIFY on the way): a join of the blocked room and an invitation of the blocked JID are still 400 blocked, nothing recorded or sent", async () => {
      const r = await account();
      const room = `${uniq("unheard-")}@${MUC}`;
      const nick = `${r.lp}-nick`;
      const occupant = `${room}/${nick}`;
      const other = `${uniq("unheard-in-")}@${MUC}`;
      await enterRoom(juliet, room, "juliet");
      assert.equal((await r.call("PUT", `/v1/rooms/${other}`, { nick })).status, 201, "in another room, for the invitation");
      // This instance caches the account's list (empty) as it checks a message; then both blocks
      // are committed as another instance commits them, with no NOTIFY to make it forget.
      assert.equal((await r.call("POST", "/v1/messages", { to: JULIET, body: "the list is cached" })).status, 202);
      const db = new pg.Client({ connectionString: gw.db.url });
      await db.connect();
      try {
        const added = await db.query("INSERT INTO block (account_id, jid) SELECT id, unnest($2::text[]) FROM account WHERE localpart = $1", [r.lp, [room, NURSE]]);
        assert.equal(added.rowCount, 2);
      } finally {
        await db.end();
      }
      const refused = (what: string, res: Awaited<ReturnType<Account["call"]>>, field: string) =>
        assert.deepEqual([res.status, res.body?.code, res.body?.field], [400, "blocked", field], `${what}: ${res.text}`);
      const [jMark, nMark] = [juliet.stanzas.length, nurse.stanzas.length];
      const started = Date.now();
      refused("join of the room blocked elsewhere", await r.call("PUT", `/v1/rooms/${room}`, { nick }), "params.room");
      assert.ok(Date.now() - started < 5000, "refused at once, not after the join's timeout");
      assert.deepEqual(((await r.call("GET", "/v1/rooms")).body.items as { room: string }[]).map((x) => x.room), [other], "no join recorded");
      refused("invitation of the JID blocked elsewhere", await r.call("POST", `/v1/rooms/${other}/invitations`, { jid: NURSE }), "body.jid");
      // Sentinels on the same paths, once unblocked: the join's presence is the first of the
      // occupant's that Juliet sees, and the nurse's first invitation is the one sent now.
      await r.unblock(room);
      await r.unblock(NURSE);
      assert.equal((await r.call("PUT", `/v1/rooms/${room}`, { nick })).status, 200);
      await juliet.waitFor(since(juliet, jMark, (s) => s.is("presence") && s.attrs.from === occupant), WAIT);
      const seen = juliet.stanzas.slice(jMark).filter((s) => s.is("presence") && s.attrs.from === occupant && s.attrs.type === undefined);
      assert.equal(seen.length, 1, "one join reached the room: the one after the unblock");
      assert.equal((await r.call("POST", `/v1/rooms/${other}/invitations`, { jid: NURSE, reason: "sentinel" })).status, 202);
      const invite = await nurse.waitFor(since(nurse, nMark, (s) => s.is("message") && !!el(s).getChild("x", NS_USER)?.getChild("invite")), WAIT);
      assert.equal(el(invite).getChild("x", NS_USER)!.getChild("invite")!.getChildText("reason"), "sentinel", "the refused invitation never reached the nurse");
    });

    it("never shows or changes the blocklist over XMPP: a remote query or block gets an error", async () => {
      const r = await account();
      // Both may see its presence, so its bare JID answers their disco#info (XEP-0030 §8) but for a block.
      for (const user of [juliet, nurse]) await grantPresence(gw, r.jid.split("@")[0]!, user);
      await r.block(NURSE);
      const iq = async (type: "get" | "set", child: ReturnType<typeof xml>) => {
        const id = uniq("iq-");
        await juliet.send(xml("iq", { to: r.jid, type, id }, child));
        return juliet.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), WAIT);
      };
      const query = await iq("get", xml("blocklist", { xmlns: NS_BLOCKING }));
      assert.equal(query.attrs.type, "error", query.toString());
      assert.equal(condition(query), "service-unavailable", query.toString());
      assert.ok(!query.toString().includes(NURSE), `no item leaked: ${query.toString()}`);
      assert.equal(el(query).getChild("blocklist", NS_BLOCKING)?.getChildren("item").length ?? 0, 0);

      const change = await iq("set", xml("block", { xmlns: NS_BLOCKING }, xml("item", { jid: JULIET })));
      assert.equal(change.attrs.type, "error", change.toString());
      const undo = await iq("set", xml("unblock", { xmlns: NS_BLOCKING }, xml("item", { jid: NURSE })));
      assert.equal(undo.attrs.type, "error", undo.toString());
      assert.deepEqual(await r.blocklist(), [NURSE], "the list is as the account made it");

      // The account answers Juliet's disco#info, and is no one to the nurse it blocked (§3.3: get is service-unavailable).
      const disco = async (user: typeof juliet) => {
        const id = uniq("disco-");
        await user.send(xml("iq", { to: r.jid, type: "get", id }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
        return user.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), WAIT);
      };
      assert.equal((await disco(juliet)).attrs.type, "result");
      const refused = await disco(nurse);
      assert.equal(refused.attrs.type, "error", refused.toString());
      assert.equal(condition(refused), "service-unavailable", refused.toString());
    });
  });
}
