// Stanzas from the XMPP network (src/services/inbound.ts), fed as the parsed data the XMPP adapter
// produces (src/domain/inbound.ts), against a real PostgreSQL and a fake outbound port: what is
// stored and logged for the account, and what goes back to the sender (replies are recorded with
// what caused them and drained to the port by Delivery; only a bounce for a stanza the database
// could not take goes to the port directly).
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Blocklists } from "../../src/db/blocklist.js";
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Blocking } from "../../src/services/blocking.js";
import { Delivery } from "../../src/services/delivery.js";
import type { Inbound } from "../../src/services/inbound.js";
import { Presence } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { checkEvent } from "../helpers/event-schema.js";
import { feedBatch, inboundOf, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("Inbound service", () => {
  let env: Env;
  let inbound: Inbound;
  let roster: Roster;
  let presence: Presence;

  before(async () => {
    env = await setup();
    inbound = inboundOf(env);
    roster = new Roster(env.db, env.delivery);
    presence = env.presence({ graceSeconds: 60 });
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** One batch (setup.ts feedBatch). */
  const feed = (...stanzas: (InboundMessage | InboundPresence)[]) => feedBatch(inbound, ...stanzas);

  /** Juliet (bare) with the given subscription to/from the account, made through the state machine. */
  async function contact(a: TestAccount, sub: "from" | "to"): Promise<string> {
    const j = "juliet@example.net";
    if (sub === "from") {
      await env.db.transaction((tx) => applySubscription(tx, a.ref, j, { kind: "inbound", type: "subscribe" }));
      await roster.act(a.ref, j, "subscribed");
    } else {
      await roster.act(a.ref, j, "subscribe");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, j, { kind: "inbound", type: "subscribed" }));
    }
    assert.equal((await env.db.prisma.rosterItem.findFirstOrThrow({ where: { accountId: a.id, jid: j } })).subscription, sub);
    await env.flush();
    env.out.reset();
    return j;
  }

  it("a chat message to an account is stored and appended as a message event; nothing goes back", async () => {
    const a = await env.account("romeo");
    await feed(inboundMessage(JULIET, a.jid, { body: "hello", thread: "th", lang: "en" }));
    const events = await env.events(a.id);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.type, "message");
    const data = e.data as Record<string, unknown>;
    assert.match(String(data.id), UUID);
    assert.ok(!Number.isNaN(Date.parse(String(data.createdAt))));
    assert.deepEqual(
      { ...data, id: "<uuid>", createdAt: "<date>" },
      { id: "<uuid>", from: JULIET, to: a.jid, type: "chat", body: "hello", subject: null, thread: "th", lang: "en", state: null, receiptRequested: false, stanzaId: "s1", createdAt: "<date>" },
    );
    assert.deepEqual({ receiptTo: e.receiptTo, receiptId: e.receiptId, receiptSent: e.receiptSent }, { receiptTo: null, receiptId: null, receiptSent: false });
    const stored = await env.db.prisma.message.findMany({
      where: { accountId: a.id },
      select: { id: true, direction: true, status: true, peer: true, from: true, to: true, body: true, thread: true, lang: true, receipt: true, stanzaId: true },
    });
    assert.deepEqual(stored, [
      { id: data.id, direction: "in", status: "received", peer: "juliet@example.net", from: JULIET, to: a.jid, body: "hello", thread: "th", lang: "en", receipt: false, stanzaId: "s1" },
    ]);
    assert.deepEqual(await env.sent(), []);
  });

  it("stanzas are processed in arrival order", async () => {
    const a = await env.account("romeo");
    await feed(...["one", "two", "three", "four", "five"].map((body, i) => inboundMessage(JULIET, a.jid, { id: `o${i}`, body })));
    assert.deepEqual(
      (await env.events(a.id)).map((e) => (e.data as { body: string }).body),
      ["one", "two", "three", "four", "five"],
    );
  });

  it("a chat state alone is an event but not a stored message", async () => {
    const a = await env.account("romeo");
    await feed(inboundMessage(JULIET, a.jid, { state: "composing" }));
    const events = await env.events(a.id);
    assert.deepEqual(
      events.map((e) => [e.type, (e.data as { state: string }).state, (e.data as { body: unknown }).body]),
      [["message", "composing", null]],
    );
    assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 0);
  });

  it("a message to an unknown localpart: one account-not-found error back to the sender, from the address it was sent to", async () => {
    await feed(inboundMessage(JULIET, `nobody@${env.domain}/x`, { id: "s2", body: "anyone?" }));
    assert.deepEqual(await env.sent(), [{ kind: "error", from: `nobody@${env.domain}/x`, replyTo: { name: "message", from: JULIET, id: "s2" }, code: "account-not-found" }]);
  });

  it("a groupchat message bounces account-not-found; a message for another domain bounces invalid-jid from our domain", async () => {
    const a = await env.account("romeo");
    await feed(inboundMessage(JULIET, a.jid, { id: "g1", type: "groupchat", body: "room" }), inboundMessage(JULIET, "romeo@elsewhere.example", { id: "d1", body: "lost" }));
    const expected: Stanza[] = [
      { kind: "error", from: a.jid, replyTo: { name: "message", from: JULIET, id: "g1" }, code: "account-not-found" },
      { kind: "error", from: env.domain, replyTo: { name: "message", from: JULIET, id: "d1" }, code: "invalid-jid" },
    ];
    assert.deepEqual(await env.sent(), expected);
    assert.deepEqual(await env.events(a.id), []);
  });

  it("a groupchat message to an available or connected session's full JID is delivered to it (RFC 6121 §8.5.3.1); to the bare JID, a resource with no session, or the room resource from no room of ours, it bounces", async () => {
    const a = await env.account("romeo");
    await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
    await env.sessions.streamOpened(a.id, "desk"); // connected (a stream open), no presence sent
    await env.sessions.streamOpened(a.id, "rooms"); // a session may take the room resource's name; room traffic stays as it was
    await presence.set(a.ref, "left", { type: "available", show: null, status: null, priority: 0 });
    await presence.set(a.ref, "left", { type: "unavailable", show: null, status: null, priority: 0 }); // neither any more
    await env.flush();
    env.out.reset();
    const group = (to: string, id: string) => inboundMessage(JULIET, to, { id, type: "groupchat", body: id });
    await feed(
      group(`${a.jid}/phone`, "to-phone"),
      group(a.jid, "to-bare"), // §8.5.2.1.1
      group(`${a.jid}/desk`, "to-desk"),
      group(`${a.jid}/gone`, "to-gone"), // §8.5.3.2.1
      group(`${a.jid}/left`, "to-left"),
      group(`${a.jid}/rooms`, "to-rooms"), // the room resource, from no room joined
    );
    const bounced = (to: string, id: string): Stanza => ({ kind: "error", from: to, replyTo: { name: "message", from: JULIET, id }, code: "account-not-found" });
    assert.deepEqual(await env.sent(), [bounced(a.jid, "to-bare"), bounced(`${a.jid}/gone`, "to-gone"), bounced(`${a.jid}/left`, "to-left"), bounced(`${a.jid}/rooms`, "to-rooms")]);
    const events = (await env.events(a.id)).filter((e) => e.type === "message");
    assert.deepEqual(
      events.map((e) => [(e.data as { body: string }).body, (e.data as { type: string }).type, e.resource]),
      [
        ["to-phone", "groupchat", "phone"],
        ["to-desk", "groupchat", "desk"],
      ],
      "each to its own session only",
    );
    for (const e of events) assert.equal(checkEvent("message", e.data), null);
    const stored = await env.db.prisma.message.findMany({ where: { accountId: a.id }, orderBy: { seq: "asc" }, select: { body: true, type: true, peer: true } });
    assert.deepEqual(stored, [
      { body: "to-phone", type: "groupchat", peer: "juliet@example.net" },
      { body: "to-desk", type: "groupchat", peer: "juliet@example.net" },
    ]);
  });

  it("with the link down, a bounce waits in the outbox (no account) and goes out once the link is up", async () => {
    env.out.online = false;
    await feed(inboundMessage(JULIET, `nobody@${env.domain}`, { id: "w1", body: "anyone?" }));
    const bounce: Stanza = { kind: "error", from: `nobody@${env.domain}`, replyTo: { name: "message", from: JULIET, id: "w1" }, code: "account-not-found" };
    assert.deepEqual(
      (await env.outbox()).map((r) => ({ accountId: r.accountId, stanza: r.stanza })),
      [{ accountId: null, stanza: bounce }],
    );
    assert.deepEqual(env.out.sent, []);
    env.out.online = true;
    assert.deepEqual(await env.sent(), [bounce]);
  });

  it("when the database cannot take a stanza, the sender gets a wait error straight on the link (nothing can be recorded)", async () => {
    const a = await env.account("romeo");
    const refused = () => Promise.reject(new Error("connection refused"));
    const down = new Delivery({ ...env.db, transaction: refused, sqlTransaction: refused }, env.out, env.gate, env.log, env.metrics);
    const broken = inboundOf(env, { delivery: down });
    broken.receive(inboundMessage(JULIET, a.jid, { id: "d1", body: "lost?" }));
    broken.receive(inboundPresence(JULIET, a.jid, "available")); // plain presence: no error
    broken.receive(inboundPresence(JULIET, a.jid, "subscribe", { id: "d2" }));
    await broken.idle();
    const wait = (name: "message" | "presence", id: string): Stanza => ({
      kind: "error",
      from: a.jid,
      replyTo: { name, from: JULIET, id },
      code: "database-unavailable",
      text: "temporarily unable to store this stanza; retry later",
    });
    assert.deepEqual(env.out.sent, [wait("message", "d1"), wait("presence", "d2")], "written directly, without a flush");
    assert.equal(env.out.writes, 1);
    assert.deepEqual(await env.outbox(), []);
    assert.deepEqual(await env.events(a.id), []);
    assert.equal(env.log.entries.filter((e) => e.m.startsWith("inbound stanza could not be stored")).length, 3);
  });

  it("an error-type message never gets an error reply", async () => {
    const a = await env.account("romeo");
    const error = { type: "cancel", condition: "item-not-found" };
    await feed(
      inboundMessage(JULIET, `nobody@${env.domain}`, { id: "e1", type: "error", error }),
      inboundMessage(JULIET, "romeo@elsewhere.example", { id: "e2", type: "error", error }),
      inboundMessage(JULIET, a.jid, { id: "e3", type: "error", error }), // not one of our ids: nothing to mark
    );
    assert.deepEqual(await env.sent(), []);
    assert.deepEqual(await env.events(a.id), []);
  });

  it("a message asking for a receipt: the event carries receipt info (answered later, by a stream)", async () => {
    const a = await env.account("romeo");
    await feed(inboundMessage(JULIET, a.jid, { id: "r1", body: "ack me", receiptRequested: true }), inboundMessage(JULIET, a.jid, { id: null, body: "no id", receiptRequested: true }));
    const events = await env.events(a.id);
    assert.deepEqual(
      events.map((e) => ({ receiptRequested: (e.data as { receiptRequested: boolean }).receiptRequested, receiptTo: e.receiptTo, receiptId: e.receiptId, receiptSent: e.receiptSent })),
      [
        { receiptRequested: true, receiptTo: JULIET, receiptId: "r1", receiptSent: false },
        { receiptRequested: false, receiptTo: null, receiptId: null, receiptSent: false }, // XEP-0184 §5: no id, no receipt
      ],
    );
    assert.deepEqual(await env.sent(), [], "the receipt goes out only once a stream has the event");
  });

  it("a message to a full JID with the session goes to that one only; with no such session, a chat one goes to every session, a normal or headline one bounces (RFC 6121 §8.5.3.2.1), and a receipt is applied", async () => {
    const a = await env.account("romeo");
    await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
    const mine = "3b241101-e2bb-4255-8caf-4136c566a963";
    await env.messages.insertOutbound([{ id: mine, accountId: a.id, peer: "juliet@example.net", from: `${a.jid}/gone`, to: JULIET, type: "chat", body: "hi", idempotencyKey: null, requestHash: null }]);
    await env.flush();
    env.out.reset();
    await feed(
      inboundMessage(JULIET, `${a.jid}/phone`, { id: "f1", body: "to phone" }),
      inboundMessage(JULIET, `${a.jid}/gone`, { id: "f2", body: "to gone" }),
      inboundMessage(JULIET, `${a.jid}/gone`, { id: "f3", type: "normal", body: "normal to gone" }),
      inboundMessage(JULIET, `${a.jid}/gone`, { id: "f4", type: "headline", subject: "headline to gone" }),
      inboundMessage(JULIET, `${a.jid}/phone`, { id: "f5", type: "normal", body: "normal to phone" }),
      inboundMessage(JULIET, `${a.jid}/gone`, { id: "f6", type: "normal", receivedId: mine }),
    );
    const rows = await env.db.prisma.event.findMany({ where: { accountId: a.id, type: { in: ["message", "receipt"] } }, orderBy: { seq: "asc" }, select: { type: true, resource: true, data: true } });
    assert.deepEqual(
      rows.map((r) => `${r.type} ${(r.data as { body?: string; id?: string }).body ?? (r.data as { id: string }).id} -> ${r.resource ?? "all"}`),
      ["message to phone -> phone", "message to gone -> all", "message normal to phone -> phone", `receipt ${mine} -> all`],
    );
    const errors = (await env.sent()).map((e) => (e.kind === "error" ? `${e.replyTo.id} ${e.code}` : e.kind));
    assert.deepEqual(errors, ["f3 account-not-found", "f4 account-not-found"]);
  });

  it("XEP-0184 received for one of our messages marks it delivered and logs a receipt event", async () => {
    const a = await env.account("romeo");
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    await env.messages.insertOutbound([{ id, accountId: a.id, peer: "juliet@example.net", from: a.jid, to: "juliet@example.net", type: "chat", body: "hi", idempotencyKey: null, requestHash: null }]);
    await feed(inboundMessage(JULIET, a.jid, { id: "x", receivedId: id }));
    assert.deepEqual(
      (await env.events(a.id)).map((e) => ({ type: e.type, data: e.data })),
      [{ type: "receipt", data: { id, from: JULIET, status: "delivered" } }],
    );
    assert.equal((await env.messages.get(id))?.status, "delivered");
  });

  describe("probes (RFC 6121 §4.3.2)", () => {
    const unsubscribed = (a: TestAccount, to: string): Stanza => ({ kind: "subscription", from: a.jid, to, type: "unsubscribed" });
    const rosterRows = (a: TestAccount) => env.db.prisma.rosterItem.findMany({ where: { accountId: a.id }, orderBy: { jid: "asc" } });

    it("from a non-subscriber: unsubscribed from the account's bare JID to the prober's, and no presence or roster change", async () => {
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
      await env.flush();
      env.out.reset();
      // No roster item at all; the probe comes from a full JID, the answer goes to the bare one.
      await feed(inboundPresence("stranger@example.net/desk", a.jid, "probe"));
      assert.deepEqual(await env.sent(), [unsubscribed(a, "stranger@example.net")]);
      assert.deepEqual(await rosterRows(a), [], "the answer creates no roster item");
      const to = await contact(a, "to"); // we get their presence; they do not get ours
      const before = await rosterRows(a);
      const head = (await env.events(a.id)).at(-1)?.seq ?? 0;
      await feed(inboundPresence(to, a.jid, "probe"));
      assert.deepEqual(await env.sent(), [unsubscribed(a, to)], "never the account's presence");
      assert.deepEqual(await rosterRows(a), before, "`to` stays `to`");
      assert.deepEqual(await env.events(a.id, head), [], "no roster push, no event");
    });

    it("subscription stanzas and probes to the rooms' resource are the bare JID's (§3.1.3, §4.3.2), as to any other resource", async () => {
      const a = await env.account("romeo");
      const j = await contact(a, "from");
      await feed(inboundPresence("nurse@example.net/x", `${a.jid}/rooms`, "subscribe"), inboundPresence(`${j}/x`, `${a.jid}/rooms`, "probe"));
      assert.deepEqual((await roster.pending(a.id)).map((p) => p.jid), ["nurse@example.net"]);
      assert.deepEqual(await env.sent(), [{ kind: "presence", from: a.jid, to: `${j}/x`, type: "unavailable", show: null, status: null, priority: null }]);
    });

    it("the unsubscribed answer keeps a pre-approval and a pending request (it is no state change)", async () => {
      const a = await env.account("romeo");
      const nurse = "nurse@example.net";
      const tybalt = "tybalt@example.net";
      await roster.act(a.ref, nurse, "subscribed"); // §3.4 pre-approval: no request from her yet
      await env.db.transaction((tx) => applySubscription(tx, a.ref, tybalt, { kind: "inbound", type: "subscribe" })); // §3.1.3: pending
      await env.flush();
      env.out.reset();
      const before = await rosterRows(a);
      assert.deepEqual(
        before.map((r) => [r.jid, r.subscription, r.approved]),
        [
          [nurse, "none", true],
          [tybalt, "none", false],
        ],
      );
      const requests = await roster.pending(a.id);
      assert.deepEqual(
        requests.map((r) => r.jid),
        [tybalt],
      );
      const head = (await env.events(a.id)).at(-1)?.seq ?? 0;
      await feed(inboundPresence(`${nurse}/x`, a.jid, "probe"), inboundPresence(tybalt, a.jid, "probe"));
      assert.deepEqual(await env.sent(), [unsubscribed(a, nurse), unsubscribed(a, tybalt)]);
      assert.deepEqual(await rosterRows(a), before);
      assert.deepEqual(await roster.pending(a.id), requests, "Tybalt's request still waits for an answer");
      assert.deepEqual(await env.events(a.id, head), []);
    });

    it("a blocked prober gets nothing, while a stranger's probe after it is answered, and so is a probe to no account (as if it were a stranger's: an account is not told from one that does not exist)", async () => {
      const blocklists = new Blocklists(env.db.prisma);
      const guarded = inboundOf(env, { blocks: blocklists });
      const a = await env.account("romeo");
      await new Blocking(env.db, blocklists, env.delivery).block(a.ref, "juliet@example.net");
      await env.flush();
      env.out.reset();
      // XEP-0191 §3.3: nothing from a blocked JID; RFC 6121 §4.3.2: a probe to no account SHOULD get
      // unsubscribed (§8.5.1 allows it), from the bare JID asked for.
      guarded.receive(inboundPresence(JULIET, a.jid, "probe"));
      guarded.receive(inboundPresence("stranger@example.net/desk", `nobody@${env.domain}/phone`, "probe"));
      guarded.receive(inboundPresence("stranger@example.net", a.jid, "probe")); // the sentinel
      await guarded.idle();
      assert.deepEqual(await env.sent(), [{ kind: "subscription", from: `nobody@${env.domain}`, to: "stranger@example.net", type: "unsubscribed" }, unsubscribed(a, "stranger@example.net")]);
    });

    it("from a `from` subscriber: the account's presence, or unavailable when no session is available", async () => {
      const a = await env.account("romeo");
      const j = await contact(a, "from");
      await feed(inboundPresence(j, a.jid, "probe"));
      assert.deepEqual(await env.sent(), [{ kind: "presence", from: a.jid, to: j, type: "unavailable", show: null, status: null, priority: null }]);

      await presence.set(a.ref, "phone", { type: "available", show: "away", status: { en: "brb" }, priority: 2 });
      await env.flush();
      env.out.reset();
      await feed(inboundPresence(j, a.jid, "probe"));
      assert.deepEqual(await env.sent(), [{ kind: "presence", from: `${a.jid}/phone`, to: j, type: null, show: "away", status: { en: "brb" }, priority: 2 }]);
    });

    it("with no session available: the account's last unavailable presence, its status and a XEP-0203 delay from when it went (§4.3.2); never to a non-subscriber", async () => {
      const a = await env.account("romeo");
      const j = await contact(a, "from");
      const probed = async (from = j) => {
        await env.flush();
        env.out.reset();
        await feed(inboundPresence(from, a.jid, "probe"));
        return env.sent();
      };
      const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
      /** Runs `away` (the account going unavailable) and returns when it started and ended. */
      const went = async (away: () => Promise<unknown>) => {
        const from = Date.now();
        await away();
        await env.flush();
        return [from, Date.now()] as const;
      };
      const assertAnswer = (got: Stanza[], status: unknown, span: readonly [number, number]) => {
        assert.equal(got.length, 1, JSON.stringify(got));
        const { delay, ...rest } = got[0] as Extract<Stanza, { kind: "presence" }>;
        assert.deepEqual(rest, { kind: "presence", from: a.jid, to: j, type: "unavailable", show: null, status, priority: null });
        assert.equal(delay?.from, env.domain, "XEP-0203: delayed by the server that kept it");
        assert.match(delay?.stamp ?? "", STAMP);
        const at = Date.parse(delay!.stamp);
        assert.ok(at >= span[0] - 1000 && at <= span[1] + 1000, `stamped ${delay!.stamp}, went between ${new Date(span[0]).toISOString()} and ${new Date(span[1]).toISOString()}`);
      };
      const available = { type: "available", show: null, status: null, priority: 0 } as const;

      // PUT /v1/presence unavailable with a status in two languages: kept with its languages.
      await presence.set(a.ref, "phone", available);
      let span = await went(() => presence.set(a.ref, "phone", { type: "unavailable", show: null, status: { en: "at the ball", fr: "au bal" }, priority: 0 }));
      assertAnswer(await probed(), { en: "at the ball", fr: "au bal" }, span);

      // One of two sessions going unavailable is not the account's: the other answers.
      await presence.set(a.ref, "phone", available);
      await presence.set(a.ref, "tablet", available);
      await presence.set(a.ref, "phone", { type: "unavailable", show: null, status: "phone off", priority: 0 });
      assert.deepEqual(await probed(), [{ kind: "presence", from: `${a.jid}/tablet`, to: j, type: null, show: null, status: null, priority: 0 }]);
      // DELETE /v1/sessions of the last one: no status, a later stamp.
      await sleep(20);
      span = await went(() => presence.endSession(a.ref, "tablet"));
      assertAnswer(await probed(), null, span);

      // A contact without a subscription to the account still hears only `unsubscribed`.
      const stranger = "stranger@example.net";
      assert.deepEqual(await probed(`${stranger}/desk`), [{ kind: "subscription", from: a.jid, to: stranger, type: "unsubscribed" }]);
    });

    it("the expiry sweep records the account's unavailable presence too (no status)", async () => {
      const a = await env.account("romeo");
      const j = await contact(a, "from");
      const sweeping = env.presence({ graceSeconds: 0 });
      await sweeping.set(a.ref, "phone", { type: "available", show: null, status: { en: "here" }, priority: 0 });
      await sleep(5); // last_seen_at strictly before the sweep's now()
      const from = Date.now();
      assert.ok((await sweeping.expire()) >= 1);
      await env.flush();
      env.out.reset();
      await feed(inboundPresence(j, a.jid, "probe"));
      const got = await env.sent();
      assert.equal(got.length, 1, JSON.stringify(got));
      const answer = got[0] as Extract<Stanza, { kind: "presence" }>;
      assert.deepEqual([answer.from, answer.type, answer.status, answer.delay?.from], [a.jid, "unavailable", null, env.domain]);
      assert.ok(Math.abs(Date.parse(answer.delay!.stamp) - from) < 2000, answer.delay!.stamp);
    });
  });

  describe("contacts' presence and subscription stanzas", () => {
    it("available presence is recorded and logged only from a contact the account subscribed to", async () => {
      const a = await env.account("romeo");
      await feed(inboundPresence(JULIET, a.jid, "available", { show: "dnd", priority: 1 }));
      assert.deepEqual(await env.events(a.id), [], "not subscribed and no session available: ignored (§4.4.3, §8.5.2.2.2)");
      const seen = (await env.events(a.id)).at(-1)?.seq ?? 0;
      await contact(a, "to");
      const head = (await env.events(a.id)).at(-1)?.seq ?? seen;
      await feed(inboundPresence(JULIET, a.jid, "available", { show: "dnd", priority: 1 }));
      assert.deepEqual(
        (await env.events(a.id, head)).map((e) => ({ type: e.type, data: e.data })),
        [{ type: "presence", data: { jid: "juliet@example.net", from: JULIET, resource: "balcony", type: "available", show: "dnd", status: null, priority: 1 } }],
      );
      assert.deepEqual(
        (await presence.contacts(a.id)).map((c) => ({ jid: c.jid, resources: c.resources.map((r) => [r.resource, r.show, r.priority]) })),
        [{ jid: "juliet@example.net", resources: [["balcony", "dnd", 1]] }],
      );
      assert.deepEqual(await env.sent(), []);
      // Her next presence says no status and no show: what is stored says the same (RFC 6121 §4.7.2).
      await feed(inboundPresence(JULIET, a.jid, "available", { show: "away", status: "In a meeting", priority: 1 }));
      await feed(inboundPresence(JULIET, a.jid, "available"));
      assert.deepEqual(
        (await presence.contacts(a.id)).map((c) => c.resources.map((r) => [r.resource, r.show, r.status, r.priority])),
        [[["balcony", null, null, 0]]],
      );
    });

    it("unavailable from the contact's bare JID (a probe's answer, §4.3.2) ends every stored resource, each with an unavailable event", async () => {
      const a = await env.account("romeo");
      const j = await contact(a, "to");
      await feed(inboundPresence(`${j}/balcony`, a.jid, "available", { show: "dnd" }), inboundPresence(`${j}/garden`, a.jid, "available"));
      assert.deepEqual(
        (await presence.contacts(a.id)).map((c) => [c.jid, c.resources.map((r) => r.resource)]),
        [[j, ["balcony", "garden"]]],
      );
      const seen = (await env.events(a.id)).at(-1)!.seq;
      await feed(inboundPresence(j, a.jid, "unavailable", { status: "gone" }));
      assert.deepEqual(await presence.contacts(a.id), [], "no resource of hers is listed as available any more");
      const gone = (resource: string) => ({ type: "presence", data: { jid: j, from: `${j}/${resource}`, resource, type: "unavailable", show: null, status: "gone", priority: 0 } });
      assert.deepEqual(
        (await env.events(a.id, seen)).map((e) => ({ type: e.type, data: e.data })),
        [gone("balcony"), gone("garden")],
      );

      // With nothing stored, the account hears the bare unavailable itself, as before.
      const again = (await env.events(a.id)).at(-1)!.seq;
      await feed(inboundPresence(j, a.jid, "unavailable"));
      assert.deepEqual(
        (await env.events(a.id, again)).map((e) => ({ type: e.type, data: e.data })),
        [{ type: "presence", data: { jid: j, from: j, resource: null, type: "unavailable", show: null, status: null, priority: 0 } }],
      );
      assert.deepEqual(await env.sent(), []);
    });

    it("a subscribe from a stranger is delivered as a subscription event with its note; a presence to an unknown account is ignored", async () => {
      const a = await env.account("romeo");
      await feed(inboundPresence(JULIET, a.jid, "subscribe", { statusText: "it's me" }), inboundPresence(JULIET, `nobody@${env.domain}`, "subscribe"));
      assert.deepEqual(
        (await env.events(a.id)).map((e) => ({ type: e.type, data: e.data })),
        [{ type: "subscription", data: { jid: "juliet@example.net", type: "subscribe", status: "it's me" } }],
      );
      assert.deepEqual(await env.sent(), [], "§8.5.1: presence to a missing account is dropped silently");
    });
  });

  describe("directed presence from anyone else (RFC 6121 §4.6.4, §8.5.2.1.2, §8.5.3.1)", () => {
    const STRANGER = "stranger@example.net/desk";
    const presenceEvents = async (a: TestAccount, after = 0) => (await env.events(a.id, after)).filter((e) => e.type === "presence").map((e) => e.data);
    const head = async (a: TestAccount) => (await env.events(a.id)).at(-1)?.seq ?? 0;
    const available = { type: "available", show: null, status: null, priority: 0 } as const;

    it("reaches the account's available sessions as a presence event, and is never stored", async () => {
      const a = await env.account("romeo");
      // No session available: ignored, and not kept for later (§8.5.2.2.2).
      await feed(inboundPresence(STRANGER, a.jid, "available", { status: "while you were out" }));
      await presence.set(a.ref, "phone", available);
      await env.flush();
      env.out.reset();
      const seen = await head(a);
      await feed(inboundPresence(STRANGER, a.jid, "available", { show: "chat", status: "hello", priority: 3 }));
      const hello = { jid: "stranger@example.net", from: STRANGER, resource: "desk", type: "available", show: "chat", status: "hello", priority: 3 };
      assert.deepEqual(await presenceEvents(a, seen), [hello]);
      assert.deepEqual(await presence.contacts(a.id), [], "GET /v1/presence lists only contacts the account is subscribed to");
      assert.equal(await env.db.prisma.contactPresence.count({ where: { accountId: a.id } }), 0);
      await feed(inboundPresence(STRANGER, a.jid, "unavailable", { status: "bye" }));
      const bye = { jid: "stranger@example.net", from: STRANGER, resource: "desk", type: "unavailable", show: null, status: "bye", priority: 0 };
      assert.deepEqual(await presenceEvents(a), [hello, bye], "the presence from before the session is nowhere in the log");
      for (const data of [hello, bye]) assert.equal(checkEvent("presence", data), null, "the catalogue's presence event, as for contacts");
      assert.deepEqual(await env.sent(), [], "nothing goes back");
    });

    it("to a full JID only when that session is available (with `to`); a `from` subscriber's presence is treated the same", async () => {
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", available);
      const j = await contact(a, "from"); // she gets our presence; we are not subscribed to hers
      const seen = await head(a);
      await feed(
        inboundPresence(JULIET, `${a.jid}/laptop`, "available", { status: "to the laptop" }), // §8.5.3.2.1: no such session, ignored
        inboundPresence(JULIET, `${a.jid}/phone`, "available", { status: "to the phone" }),
        inboundPresence(JULIET, a.jid, "available", { status: "to the account" }),
      );
      const from = (status: string, to?: string) => ({ jid: j, from: JULIET, resource: "balcony", type: "available", show: null, status, priority: 0, ...(to ? { to } : {}) });
      assert.deepEqual(await presenceEvents(a, seen), [from("to the phone", `${a.jid}/phone`), from("to the account")]);
      assert.deepEqual(await presence.contacts(a.id), []);
    });

    it("to a full JID goes to that session's stream alone, from a contact we are subscribed to as well; to no available session it is ignored and not stored (§8.5.3.1, §8.5.3.2.2)", async () => {
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", available);
      await presence.set(a.ref, "tablet", available);
      const j = await contact(a, "to"); // we hold her presence
      const seen = await head(a);
      await feed(
        inboundPresence(STRANGER, `${a.jid}/phone`, "available", { status: "stranger to the phone" }),
        inboundPresence(JULIET, `${a.jid}/laptop`, "available", { status: "to no session" }),
        inboundPresence(JULIET, `${a.jid}/tablet`, "available", { status: "to the tablet" }),
        inboundPresence(JULIET, a.jid, "available", { status: "to the account" }),
      );
      const events = (await env.events(a.id, seen)).filter((e) => e.type === "presence");
      assert.deepEqual(
        events.map((e) => `${(e.data as { status: string }).status} -> ${e.resource ?? "all"}`),
        ["stranger to the phone -> phone", "to the tablet -> tablet", "to the account -> all"],
      );
      // What is stored of her is her presence to the account's bare JID, not the directed ones.
      const stored = await env.db.prisma.contactPresence.findMany({ where: { accountId: a.id, jid: j } });
      assert.deepEqual(stored.map((r) => r.status), ["to the account"]);
    });

    it("from a contact we are subscribed to, to a session's full JID (directed, §4.6): that session hears it, and her stored presence stays as her broadcast said", async () => {
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", available);
      const j = await contact(a, "to");
      await feed(inboundPresence(JULIET, a.jid, "available", { show: "away", status: "broadcast" }));
      const seen = await head(a);
      await feed(
        inboundPresence(JULIET, `${a.jid}/phone`, "available", { show: "chat", status: "directed" }),
        inboundPresence(`${j}/garden`, `${a.jid}/phone`, "available", { status: "another resource, directed" }),
        inboundPresence(JULIET, `${a.jid}/phone`, "unavailable", { status: "directed bye" }),
        inboundPresence(j, `${a.jid}/phone`, "unavailable", { status: "bare, directed" }),
      );
      const events = (await env.events(a.id, seen)).filter((e) => e.type === "presence");
      assert.deepEqual(
        events.map((e) => `${(e.data as { status: string }).status} -> ${e.resource ?? "all"} (${(e.data as { to?: string }).to})`),
        ["directed -> phone", "another resource, directed -> phone", "directed bye -> phone", "bare, directed -> phone"].map((x) => `${x} (${a.jid}/phone)`),
      );
      assert.deepEqual(
        (await presence.contacts(a.id)).map((c) => [c.jid, c.resources.map((r) => [r.resource, r.show, r.status])]),
        [[j, [["balcony", "away", "broadcast"]]]],
        "neither replaced nor cleared by directed presence",
      );
    });

    it("a muc#user presence outside the room resource is no occupancy of ours: no event", async () => {
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", available);
      const seen = await head(a);
      const muc = { role: "participant" as const, affiliation: "none" as const, jid: null, newNick: null, statuses: [] };
      await feed(inboundPresence("hall@rooms.example.net/tybalt", a.jid, "available", { muc }), inboundPresence(STRANGER, a.jid, "available", { status: "sentinel" }));
      assert.deepEqual(
        (await presenceEvents(a, seen)).map((d) => (d as { from: string }).from),
        [STRANGER],
      );
    });

    it("nothing from a blocked JID (XEP-0191 §3.3), while a stranger's presence after it arrives", async () => {
      const blocklists = new Blocklists(env.db.prisma);
      const guarded = inboundOf(env, { blocks: blocklists });
      const a = await env.account("romeo");
      await presence.set(a.ref, "phone", available);
      await new Blocking(env.db, blocklists, env.delivery).block(a.ref, "juliet@example.net");
      const seen = await head(a);
      guarded.receive(inboundPresence(JULIET, a.jid, "available", { status: "blocked" }));
      guarded.receive(inboundPresence(STRANGER, a.jid, "available", { status: "sentinel" }));
      await guarded.idle();
      assert.deepEqual(
        (await presenceEvents(a, seen)).map((d) => (d as { status: string }).status),
        ["sentinel"],
      );
    });
  });
});
