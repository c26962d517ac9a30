// Accounts another gateway instance deleted, or deleted and created again under a new id, before
// this one read the NOTIFY that drops its cache entry (API.md "Several instances"): the Inbound
// use case routes with its cached account (src/db/accounts.ts), and what the batch writes under
// the old id fails (its foreign key, its missing row, its lock). The batch is routed again with
// those accounts read afresh (src/services/inbound-stale.ts): the stanzas are the new account's,
// or, for an account only deleted, handled as to an account that never existed; never bounced as
// a storage failure. Here the Inbound's store cached the accounts and has no listener (its NOTIFY
// never comes); another store, as another instance would, deletes and creates them. Against a
// real PostgreSQL and a fake outbound port.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Accounts as AccountStore } from "../../src/db/accounts.js";
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Blocklists } from "../../src/db/blocklist.js";
import type { AccountRef } from "../../src/domain/account.js";
import { mucPresence } from "../../src/domain/muc.js";
import { presence as presenceStanza } from "../../src/domain/stanza.js";
import { Accounts } from "../../src/services/accounts.js";
import { Blocking } from "../../src/services/blocking.js";
import { Presence } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { Rooms } from "../../src/services/rooms.js";
import { appError, countedInbound, feedBatch, inboundOf, setup, teardown, waitFor, within, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";
const NURSE = "nurse@other.example/garden";

describe("Inbound with a cached account that another instance deleted (and created again)", () => {
  let env: Env;
  /** The other instance: it deletes and creates, with a cache of its own. */
  let elsewhere: { store: AccountStore; accounts: Accounts };

  before(async () => {
    env = await setup();
    const store = new AccountStore(env.db.prisma);
    elsewhere = { store, accounts: new Accounts(store, env.delivery, env.domain, false) };
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  /** Accounts this instance's store caches (created through it), then deleted elsewhere and, with `again`, created anew. */
  const stale = (again: boolean, ...prefixes: string[]) => staleAfter(again, prefixes, async () => undefined);
  /** stale(), with `prep` run on the old accounts before they are deleted. */
  async function staleAfter(again: boolean, prefixes: string[], prep: (old: TestAccount[]) => Promise<void>): Promise<{ old: TestAccount[]; now: (number | null)[] }> {
    const old: TestAccount[] = [];
    for (const p of prefixes) old.push(await env.account(p));
    await prep(old);
    for (const a of old) {
      await elsewhere.accounts.delete(a.localpart);
      if (again) await elsewhere.store.create(a.localpart);
    }
    await env.flush();
    env.out.reset();
    const now = [];
    for (const a of old) now.push((await env.db.prisma.account.findUnique({ where: { localpart: a.localpart } }))?.id ?? null);
    for (const [i, id] of now.entries()) if (again) assert.ok(id !== null && id !== old[i]!.id, "created again under a new id");
    return { old, now };
  }
  /** Each event's type and, for a message, its body or chat state; for a subscription, its sender. */
  const logged = async (accountId: number) =>
    (await env.events(accountId)).map((e) => {
      const d = e.data as { body?: unknown; state?: unknown; jid?: unknown };
      return `${e.type}: ${e.type === "message" ? String(d.body ?? d.state) : String(d.jid)}`;
    });
  const messagesOf = async (accountId: number) => (await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message WHERE account_id = $1", [accountId])).rows[0]!.n;
  const feed = (inbound: ReturnType<typeof countedInbound>["inbound"], ...stanzas: (InboundMessage | InboundPresence)[]) => feedBatch(inbound, ...stanzas);

  it("plain messages (the one-statement path): stored for the new accounts with the batch's others, once, on that path; no bounce", async () => {
    const { old, now } = await stale(true, "romeo", "mercutio");
    const other = await env.account("benvolio");
    const { inbound, counts } = countedInbound(env);
    await feed(
      inbound,
      inboundMessage(JULIET, old[0]!.jid, { id: "r1", body: "to romeo" }),
      inboundMessage(NURSE, other.jid, { id: "b1", body: "to benvolio" }),
      inboundMessage(JULIET, old[1]!.jid, { id: "m1", body: "to mercutio" }),
    );
    assert.deepEqual(await env.sent(), [], "nothing bounced");
    assert.deepEqual(await logged(now[0]!), ["message: to romeo"]);
    assert.deepEqual(await logged(now[1]!), ["message: to mercutio"]);
    assert.deepEqual(await logged(other.id), ["message: to benvolio"], "the batch's other message, once");
    assert.equal(await messagesOf(other.id), 1);
    assert.equal(counts.transactions, 0, "routed again on the one-statement path, not stanza by stanza");

    // Its entries are fresh now: the next batch is the new accounts' at once.
    const before = counts.alone;
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "r2", body: "again" }));
    assert.equal(counts.alone - before, 1, "one statement, as for any batch");
    assert.deepEqual(await logged(now[0]!), ["message: to romeo", "message: again"]);
  });

  it("a chat state alone (events, no message row) and a subscription request (a transaction) are the new accounts'", async () => {
    const { old, now } = await stale(true, "juliet-state", "juliet-sub");
    const { inbound } = countedInbound(env);
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "c1", state: "composing" }));
    await feed(inbound, inboundPresence("nurse@other.example", old[1]!.jid, "subscribe"));
    assert.deepEqual(await env.sent(), [], "nothing bounced");
    assert.deepEqual(await logged(now[0]!), ["message: composing"]);
    assert.deepEqual(await logged(now[1]!), ["subscription: nurse@other.example"]);
    assert.deepEqual((await new Roster(env.db, env.delivery).pending(now[1]!)).map((p) => p.jid), ["nurse@other.example"]);
  });

  it("a chat state alone to a stale account beside a message to another (events only for it): the other's stored once, not again on the second run", async () => {
    const { old, now } = await stale(true, "state-again");
    const { old: gone } = await stale(false, "state-gone");
    const other = await env.account("benvolio");
    const { inbound, counts } = countedInbound(env);
    await feed(inbound, inboundMessage(NURSE, other.jid, { id: "b1", body: "to benvolio" }), inboundMessage(JULIET, old[0]!.jid, { id: "c1", state: "composing" }));
    assert.equal(counts.transactions, 0, "routed again on the one-statement path");
    // A bounce is recorded with what caused it: this batch's second run is a transaction.
    await feed(inbound, inboundMessage(NURSE, other.jid, { id: "b2", body: "again" }), inboundMessage(JULIET, gone[0]!.jid, { id: "c2", state: "paused" }));
    assert.deepEqual(await logged(other.id), ["message: to benvolio", "message: again"], "each message once");
    assert.equal(await messagesOf(other.id), 2);
    assert.deepEqual(await logged(now[0]!), ["message: composing"]);
    assert.deepEqual(await env.sent(), [{ kind: "error", from: gone[0]!.jid, replyTo: { name: "message", from: JULIET, id: "c2" }, code: "account-not-found" }], "the chat state to no account bounced, the message not");
  });

  it("deleted only: a message, a chat state too, is bounced as to an account that never existed; a subscription request vanishes; nothing stored", async () => {
    const { old } = await stale(false, "gone-msg", "gone-sub", "gone-state");
    const { inbound } = countedInbound(env);
    const nobody = `nobody@${env.domain}`;
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "g1", body: "anyone?" }), inboundMessage(JULIET, nobody, { id: "n1", body: "anyone?" }));
    await feed(inbound, inboundPresence("nurse@other.example", old[1]!.jid, "subscribe"));
    await feed(inbound, inboundMessage(JULIET, old[2]!.jid, { id: "g2", state: "composing" }), inboundMessage(JULIET, nobody, { id: "n2", state: "composing" }));
    const bounce = (from: string, id: string): Stanza => ({ kind: "error", from, replyTo: { name: "message", from: JULIET, id }, code: "account-not-found" });
    assert.deepEqual(
      await env.sent(),
      [bounce(old[0]!.jid, "g1"), bounce(nobody, "n1"), bounce(old[2]!.jid, "g2"), bounce(nobody, "n2")],
      "service-unavailable, as to no account (RFC 6121 §8.5.1); no answer to the subscription request",
    );
    assert.deepEqual((await env.db.pool.query("SELECT count(*)::int AS n FROM message WHERE stanza_id IN ('g1', 'g2')")).rows[0], { n: 0 });
  });

  describe("decisions made without a write: made for the account as the database has it", () => {
    const J = "juliet@example.net";
    const available = { type: "available", show: null, status: null, priority: 0 } as const;
    let presence: Presence;
    let roster: Roster;
    before(() => {
      presence = env.presence({ graceSeconds: 60 });
      roster = new Roster(env.db, env.delivery);
    });
    /** The new account (its id from stale()) as the roster and presence use cases take it. */
    const refOf = (old: TestAccount, id: number | null): AccountRef => ({ id: id!, jid: old.jid });
    /** Juliet with a `from` (she gets the account's presence) or `to` (the account gets hers) subscription, through the state machine. */
    async function contact(ref: AccountRef, sub: "from" | "to"): Promise<void> {
      if (sub === "from") {
        await env.db.transaction((tx) => applySubscription(tx, ref, J, { kind: "inbound", type: "subscribe" }));
        await roster.act(ref, J, "subscribed");
      } else {
        await roster.act(ref, J, "subscribe");
        await env.db.transaction((tx) => applySubscription(tx, ref, J, { kind: "inbound", type: "subscribed" }));
      }
      await env.flush();
      env.out.reset();
    }
    /** The store's reads past its cache (Accounts read and recheck), counted from now on. */
    function countReads(): { reads: number; restore(): void } {
      const store = env.accountStore;
      const { read, recheck } = store;
      const c = {
        reads: 0,
        restore: () => Object.assign(store, { read, recheck }),
      };
      store.read = (lp) => (c.reads++, read.call(store, lp));
      store.recheck = (lps) => (c.reads++, recheck.call(store, lps));
      return c;
    }
    const presenceLog = async (accountId: number) => (await env.events(accountId)).filter((e) => e.type === "presence").map((e) => (e.data as { status: unknown }).status);

    it("a probe (RFC 6121 §4.3.2) from the new account's `from` subscriber gets its presence, not unsubscribed; to an account only deleted, unsubscribed, as to no account", async () => {
      const { old, now } = await stale(true, "probed");
      const { old: gone } = await stale(false, "probed-gone");
      const ref = refOf(old[0]!, now[0]!);
      await contact(ref, "from");
      const { inbound } = countedInbound(env);
      await feed(inbound, inboundPresence(JULIET, gone[0]!.jid, "probe"), inboundPresence(JULIET, old[0]!.jid, "probe"));
      assert.deepEqual(
        await env.sent(),
        [{ kind: "subscription", from: gone[0]!.jid, to: "juliet@example.net", type: "unsubscribed" }, presenceStanza(old[0]!.jid, JULIET, "unavailable")],
        "the deleted one's answer, as no account's, then the new account's (no session available)",
      );
      await presence.set(ref, "phone", available);
      await env.flush();
      env.out.reset();
      await feed(inbound, inboundPresence(JULIET, old[0]!.jid, "probe"));
      assert.deepEqual((await env.sent()).map((x) => `${x.kind} ${"from" in x ? x.from : ""}`), [`presence ${old[0]!.jid}/phone`], "its entry is fresh now: its session's presence");
    });

    it("available presence from a contact the new account subscribed to is recorded, and a stranger's to its available session's full JID reaches it (§4.4.3, §8.5.3.1)", async () => {
      const { old, now } = await stale(true, "watching");
      const ref = refOf(old[0]!, now[0]!);
      await contact(ref, "to");
      await presence.set(ref, "phone", available);
      await env.flush();
      env.out.reset();
      const { inbound } = countedInbound(env);
      await feed(inbound, inboundPresence("stranger@example.net/desk", `${old[0]!.jid}/phone`, "available", { status: "to the phone" }));
      await feed(inbound, inboundPresence(JULIET, old[0]!.jid, "available", { status: "here" }));
      assert.deepEqual(await presenceLog(now[0]!), ["to the phone", "here"]);
      assert.deepEqual((await presence.contacts(now[0]!)).map((c) => c.jid), [J], "her presence is stored for the new account");
    });

    it("a headline and a groupchat message to the new account's available session's full JID are delivered to it, not bounced (RFC 6121 §8.5.3.1)", async () => {
      const { old, now } = await stale(true, "full-jid");
      await presence.set(refOf(old[0]!, now[0]!), "phone", available);
      await env.flush();
      env.out.reset();
      const { inbound } = countedInbound(env);
      await feed(
        inbound,
        inboundMessage(JULIET, `${old[0]!.jid}/phone`, { id: "h1", type: "headline", body: "headline" }),
        inboundMessage(JULIET, `${old[0]!.jid}/phone`, { id: "g1", type: "groupchat", body: "group" }),
      );
      assert.deepEqual(await env.sent(), [], "nothing bounced");
      assert.deepEqual(await logged(now[0]!), ["message: headline", "message: group"]);
    });

    it("a marker (XEP-0333) for the new account's message is applied to it", async () => {
      const { old, now } = await stale(true, "marked");
      const id = "3b241101-e2bb-4255-8caf-4136c566a901";
      await env.messages.insertOutbound([{ id, accountId: now[0]!, peer: J, from: old[0]!.jid, to: JULIET, type: "chat", body: "hi", idempotencyKey: null, requestHash: null }]);
      await env.flush();
      env.out.reset();
      const { inbound } = countedInbound(env);
      await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "x1", features: { marker: { name: "displayed", id } } }));
      assert.deepEqual(await env.sent(), []);
      assert.deepEqual((await env.events(now[0]!)).map((e) => e.type), ["message-update"]);
    });

    it("a message from a JID the deleted account had blocked (its list still cached) is the new account's, which blocks no one (XEP-0191 §3.3)", async () => {
      const blocklists = new Blocklists(env.db.prisma);
      const { old, now } = await staleAfter(true, ["blocker"], async ([a]) => {
        await new Blocking(env.db, blocklists, env.delivery).block(a!.ref, "nurse@other.example");
        assert.equal((await blocklists.of(a!.id)).size, 1, "the old account's list, cached");
      });
      const guarded = inboundOf(env, { blocks: blocklists });
      await feed(guarded, inboundMessage(NURSE, old[0]!.jid, { id: "n1", body: "not blocked now" }));
      assert.deepEqual(await env.sent(), [], "nothing bounced");
      assert.deepEqual(await logged(now[0]!), ["message: not blocked now"]);
    });

    it("a room's answers to the new accounts' joins (XEP-0045 §7.2.2, §7.2.9) complete them, and the room's messages are theirs", async () => {
      const { old, now } = await stale(true, "occupant", "refused");
      const room = "stale@conference.example.net";
      const rooms = new Rooms(env.db, env.delivery, env.domain);
      const { inbound } = countedInbound(env);
      const joinSent = (nick: string) => waitFor(async () => (await env.flush(), env.out.sent.some((x) => x.kind === "muc-join" && x.to === `${room}/${nick}`)), `the join presence for ${nick}`);
      const joining = rooms.join(refOf(old[0]!, now[0]!), room, { nick: "romeo" });
      // The check is attached at once: the refusal may come before the test awaits it.
      const refused = assert.rejects(rooms.join(refOf(old[1]!, now[1]!), room, { nick: "tybalt" }), appError("room-nick-conflict"));
      await joinSent("romeo");
      await joinSent("tybalt");
      await feed(
        inbound,
        inboundPresence(`${room}/tybalt`, `${old[1]!.jid}/rooms`, "error", { error: { type: "cancel", condition: "conflict" } }),
        inboundPresence(`${room}/romeo`, `${old[0]!.jid}/rooms`, "available", { muc: mucPresence({ role: "participant", affiliation: "none" }, ["110"]) }),
      );
      await feed(inbound, inboundMessage(room, `${old[0]!.jid}/rooms`, { type: "groupchat", id: null, subject: "" }));
      await within(joining, "the join's answer", 3000);
      await within(refused, "the refusal", 3000);
      await feed(inbound, inboundMessage(`${room}/mercutio`, `${old[0]!.jid}/rooms`, { type: "groupchat", id: "t1", body: "hello room" }));
      assert.deepEqual((await env.sent()).filter((x) => x.kind === "error"), [], "nothing bounced to the room");
      assert.ok((await logged(now[0]!)).includes("message: hello room"), "the room's message is in the new account's log");
    });

    it("a room's refusal (XEP-0045 §8.1) of the new account's subject change is its room event, not dropped", async () => {
      const { old, now } = await stale(true, "subjected");
      const room = "refuses@conference.example.net";
      const ref = refOf(old[0]!, now[0]!);
      const rooms = new Rooms(env.db, env.delivery, env.domain);
      const joining = rooms.join(ref, room, { nick: "romeo" });
      await waitFor(async () => (await env.flush(), env.out.sent.some((x) => x.kind === "muc-join" && x.to === `${room}/romeo`)), "the join presence");
      // The room's answers to the join reach the other instance (it held the link then), whose
      // cache has the new account: this instance's entry stays stale (a write through it, as in
      // the test above, would have refreshed it).
      const there = inboundOf(env, { accounts: elsewhere.store });
      await feed(there, inboundPresence(`${room}/romeo`, `${old[0]!.jid}/rooms`, "available", { muc: mucPresence({ role: "visitor", affiliation: "none" }, ["110"]) }));
      await feed(there, inboundMessage(room, `${old[0]!.jid}/rooms`, { type: "groupchat", id: null, subject: "" }));
      await within(joining, "the join's answer", 3000);
      assert.equal((await env.accountStore.find(old[0]!.localpart))?.id, old[0]!.id, "this instance still caches the old id");
      const { inbound } = countedInbound(env);
      env.out.reset();
      await rooms.setSubject(ref, room, "Verona");
      await env.flush();
      const request = env.out.sent.find((x) => x.kind === "muc-subject");
      assert.ok(request && "id" in request && request.id, "the subject change was sent, with its id");
      env.out.reset();
      const forbidden = { type: "auth", condition: "forbidden" } as const;
      await feed(inbound, inboundMessage(room, `${old[0]!.jid}/rooms`, { type: "error", id: request.id, error: forbidden }));
      assert.deepEqual(await env.sent(), [], "nothing bounced to the room");
      const refusals = (await env.events(now[0]!)).filter((e) => e.type === "room" && (e.data as { kind: string }).kind === "subject-failed");
      assert.deepEqual(
        refusals.map((e) => e.data),
        [{ room, kind: "subject-failed", error: forbidden }],
      );
    });

    it("costs: a decision that found something pays no read of the account; one that found nothing pays one per account and batch", async () => {
      const a = await env.account("current");
      await contact(a.ref, "from");
      await contact(a.ref, "to");
      const { inbound } = countedInbound(env);
      await feed(inbound, inboundMessage(JULIET, a.jid, { id: "warm", body: "warm the cache" }));
      const c = countReads();
      try {
        await feed(
          inbound,
          inboundMessage(JULIET, a.jid, { id: "m1", body: "a plain message" }),
          inboundPresence(JULIET, a.jid, "available", { status: "a contact's presence" }),
          inboundPresence(JULIET, a.jid, "probe"),
        );
        // A receipt for a message already delivered (each of the peer's clients sends one) changes nothing, and reads no account.
        const id = "3b241101-e2bb-4255-8caf-4136c566a9ff";
        await env.messages.insertOutbound([{ id, accountId: a.id, peer: J, from: a.jid, to: JULIET, type: "chat", body: "hi", idempotencyKey: null, requestHash: null }]);
        await feed(inbound, inboundMessage(JULIET, a.jid, { id: "d1", receivedId: id }));
        await feed(inbound, inboundMessage(JULIET, a.jid, { id: "d2", receivedId: id }));
        assert.equal((await env.messages.get(id))?.status, "delivered");
        assert.equal(c.reads, 0, "the common path reads no account");
        await feed(inbound, inboundPresence("stranger@example.net", a.jid, "probe"), inboundPresence("other@example.net", a.jid, "probe"));
        // A probe locks the account's row before it reads the subscription (src/services/inbound-presence.ts): the row found proves the id.
        assert.equal(c.reads, 0, "two probes from strangers: the probe's lock found the account, no read of it");
      } finally {
        c.restore();
      }
      assert.deepEqual(
        (await env.sent()).filter((x) => x.kind !== "message").map((x) => `${x.kind} ${"to" in x ? x.to : ""} ${"type" in x ? x.type : ""}`), // but the outbound message the receipts name
        [`presence ${JULIET} unavailable`, "subscription stranger@example.net unsubscribed", "subscription other@example.net unsubscribed"],
      );
    });
  });
});
