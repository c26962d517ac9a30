// The accounts use case (src/services/accounts.ts) against a real PostgreSQL and a fake outbound
// port: the caller's account with and without auto-provisioning (and its first-request race), and
// deletion, which must tell the account's contacts before its data goes (its goodbye stanzas are
// recorded with the deletion and reach the link through Delivery, even if the link is down then),
// and must not drop the messages it still has queued: they go out first, once, also when a drain
// step is sending them at that moment.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../../src/db/generated/client.js";
import { Accounts as AccountStore } from "../../src/db/accounts.js";
import { markFailed, markJoined, recordJoin } from "../../src/db/rooms.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Accounts } from "../../src/services/accounts.js";
import { MessageActions } from "../../src/services/message-actions.js";
import type { Messaging, SendMessage } from "../../src/services/messaging.js";
import { Presence } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { appError, setup, teardown, waitFor, type Env, type TestAccount } from "./setup.js";

const CONTACT = "juliet@example.net";

/** A stable order for stanzas whose order the service does not define (roster rows come back unordered). */
/** In one order whatever the order of their stanzas and of each stanza's fields. */
const sortStanzas = (stanzas: Stanza[]) => {
  const key = (s: Stanza) => JSON.stringify(Object.entries(s).sort(([a], [b]) => a.localeCompare(b)));
  return [...stanzas].sort((x, y) => key(x).localeCompare(key(y)));
};

describe("Accounts service", () => {
  let env: Env;
  let closed: Accounts;
  let open: Accounts;
  let roster: Roster;
  let presence: Presence;
  let messaging: Messaging;
  let actions: MessageActions;

  before(async () => {
    env = await setup();
    closed = new Accounts(env.accountStore, env.delivery, env.domain, false);
    open = new Accounts(env.accountStore, env.delivery, env.domain, true);
    roster = new Roster(env.db, env.delivery);
    presence = env.presence({ graceSeconds: 60 });
    messaging = env.messaging();
    actions = new MessageActions(env.delivery, env.out, env.domain);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  const rows = (localpart: string) => env.db.prisma.account.count({ where: { localpart } });

  it("caller() without auto-provisioning: account-not-found, and no account is made", async () => {
    await assert.rejects(closed.caller("ghost", null), appError("account-not-found"));
    await assert.rejects(closed.mayMint("ghost"), appError("account-not-found"));
    assert.equal(await rows("ghost"), 0);
  });

  it("caller() with auto-provisioning creates the account once; an existing one is found either way", async () => {
    const first = await open.caller("newcomer", null);
    assert.equal(first.localpart, "newcomer");
    assert.ok(first.id > 0);
    assert.equal(await rows("newcomer"), 1);
    const again = await open.caller("newcomer", null);
    assert.deepEqual(again, first);
    assert.equal((await closed.caller("newcomer", null)).id, first.id, "once it exists, auto-provisioning does not matter");
    await open.mayMint("brand-new"); // would be provisioned: allowed
    assert.equal(await rows("brand-new"), 0, "minting a token does not create the account");
  });

  it("32 concurrent first requests for one localpart all get the same account (INSERT ... ON CONFLICT)", async () => {
    // A store of its own with an empty cache, so that every call reaches Postgres.
    const accounts = new Accounts(new AccountStore(env.db.prisma), env.delivery, env.domain, true);
    const results = await Promise.all(Array.from({ length: 32 }, () => accounts.caller("crowd", null)));
    const ids = new Set(results.map((r) => r.id));
    assert.equal(ids.size, 1, `ids: ${[...ids].join(", ")}`);
    assert.ok(results.every((r) => r.localpart === "crowd"));
    assert.equal(await rows("crowd"), 1);
  });

  it("32 concurrent first requests across two stores (two gateway instances) agree too", async () => {
    const one = new Accounts(new AccountStore(env.db.prisma), env.delivery, env.domain, true);
    const two = new Accounts(new AccountStore(env.db.prisma), env.delivery, env.domain, true);
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 ? one : two).caller("crowd2", null)));
    assert.equal(new Set(results.map((r) => r.id)).size, 1);
    assert.equal(await rows("crowd2"), 1);
  });

  it("create refuses an existing localpart with account-exists", async () => {
    assert.equal(await closed.create("dup"), `dup@${env.domain}`);
    await assert.rejects(closed.create("dup"), appError("account-exists"));
  });

  describe("delete", () => {
    // A token's iat is whole seconds: one from the second before now is certainly from before a deletion made now.
    const secondAgo = () => (Math.floor(Date.now() / 1000) - 1) * 1000;

    // DELETION_REVOKES_TOKENS on (the store is shared with closed/open: the same cache).
    const revoking = (autoProvision: boolean) => new Accounts(env.accountStore, env.delivery, env.domain, autoProvision, true);

    it("by default a credential issued before the deletion is the account created again's (API.md: an account is its localpart)", async () => {
      const a = await env.account("romeo");
      const old = secondAgo();
      await closed.delete(a.localpart);
      const made = await open.caller(a.localpart, old);
      assert.notEqual(made.id, a.id, "AUTO_PROVISION: provisioned anew");
      assert.equal((await closed.caller(a.localpart, old, true)).id, made.id);
      await assert.rejects(revoking(false).caller(a.localpart, old), appError("unauthorized"), "with DELETION_REVOKES_TOKENS: refused");
    });

    it("DELETION_REVOKES_TOKENS: a credential issued before the deletion is refused for the account created again (cached and fresh), and provisions nothing", async () => {
      const [closed, open] = [revoking(false), revoking(true)];
      const a = await env.account("romeo");
      const old = secondAgo();
      assert.equal((await closed.caller(a.localpart, old)).id, a.id, "valid for the account it was issued for");
      await closed.delete(a.localpart);
      await assert.rejects(open.caller(a.localpart, old), appError("unauthorized"));
      assert.equal(await rows(a.localpart), 0, "AUTO_PROVISION: the earlier account's token creates nothing");
      await assert.rejects(closed.caller(a.localpart, old), appError("account-not-found"), "without: 404, as for any token");
      await closed.create(a.localpart);
      await assert.rejects(closed.caller(a.localpart, old), appError("unauthorized"), "from the cache");
      await assert.rejects(closed.caller(a.localpart, old, true), appError("unauthorized"), "read fresh");
      // Issued in the deletion's second or later: the new account's (iat cannot tell which side of the deletion).
      const now = Math.floor(Date.now() / 1000) * 1000;
      const created = await closed.caller(a.localpart, now);
      assert.notEqual(created.id, a.id);
      assert.equal((await closed.caller(a.localpart, null)).id, created.id, "no iat: accepted");
    });

    it("DELETION_REVOKES_TOKENS, AUTO_PROVISION: a credential issued after the deletion provisions the account anew", async () => {
      const [closed, open] = [revoking(false), revoking(true)];
      const a = await env.account("romeo");
      await closed.delete(a.localpart);
      const made = await open.caller(a.localpart, Math.floor(Date.now() / 1000) * 1000);
      assert.notEqual(made.id, a.id);
      await assert.rejects(open.caller(a.localpart, secondAgo() - 1000), appError("unauthorized"), "and the earlier one's is refused for it");
    });

    it("creating an account spends a statement on the deletion mark only with DELETION_REVOKES_TOKENS (one), and caches the mark either way", async () => {
      // A store of its own (an empty cache) on a pool that records each statement's text.
      const texts: string[] = [];
      const pool = new pg.Pool({ connectionString: env.tdb.url, max: 1, options: "-c TimeZone=UTC" });
      pool.on("connect", (c) => {
        const query = c.query.bind(c) as (...args: unknown[]) => unknown;
        (c as { query: unknown }).query = (...args: unknown[]) => {
          const q = args[0] as string | { text: string };
          texts.push(typeof q === "string" ? q : q.text);
          return query(...args);
        };
      });
      const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
      try {
        const store = new AccountStore(prisma);
        /** Statements that read the mark alone, during `fn`. */
        const markReads = async (fn: () => Promise<unknown>) => {
          texts.length = 0;
          await fn();
          return texts.filter((t) => /^\s*SELECT\b[^]*\bFROM account_deletion\b/i.test(t) && !/\baccount a\b/.test(t)).length;
        };
        const gone = await env.account("romeo");
        const old = secondAgo();
        await closed.delete(gone.localpart);
        const [setOff, setOn] = [new Accounts(store, env.delivery, env.domain, true), new Accounts(store, env.delivery, env.domain, true, true)];
        const [offAdmin, onAdmin] = [new Accounts(store, env.delivery, env.domain, false), new Accounts(store, env.delivery, env.domain, false, true)];
        assert.equal(await markReads(() => setOff.caller(gone.localpart, old)), 0, "AUTO_PROVISION, setting off");
        // The cache has the mark all the same: with the setting on, the old token is refused from it.
        texts.length = 0;
        await assert.rejects(setOn.caller(gone.localpart, old), appError("unauthorized"));
        assert.deepEqual(texts, [], "from the cache");
        assert.equal(await markReads(() => setOn.caller("fresh-on", null)), 1, "AUTO_PROVISION, setting on");
        assert.equal(await markReads(() => offAdmin.create("admin-off")), 0, "POST /v1/accounts, setting off");
        assert.equal(await markReads(() => onAdmin.create("admin-on")), 0, "POST /v1/accounts, setting on: nothing to admit");
      } finally {
        await prisma.$disconnect();
        await pool.end();
      }
    });

    it("with a `both` contact and an available session: unavailable, then unsubscribe and unsubscribed; the account is gone", async () => {
      const a = await env.account("romeo");
      // Both, made through the state machine.
      await roster.act(a.ref, CONTACT, "subscribe");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, CONTACT, { kind: "inbound", type: "subscribed" }));
      await env.db.transaction((tx) => applySubscription(tx, a.ref, CONTACT, { kind: "inbound", type: "subscribe" }));
      await roster.act(a.ref, CONTACT, "subscribed");
      await presence.set(a.ref, "phone", { type: "available", show: null, status: "here", priority: 0 });
      assert.equal((await env.db.prisma.rosterItem.findFirstOrThrow({ where: { accountId: a.id } })).subscription, "both");
      await env.flush();
      env.out.reset();

      await closed.delete(a.localpart);
      await env.flush();
      assert.deepEqual(env.out.sent, [
        { kind: "presence", from: `${a.jid}/phone`, to: CONTACT, type: "unavailable", show: null, status: null, priority: null },
        { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribe" },
        { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribed" },
      ]);
      assert.equal(env.out.writes, 1, "one batch, one write, after commit");
      assert.equal(await rows(a.localpart), 0);
      assert.equal(await closed.find(a.localpart), null, "the cache forgot it too");
      assert.equal(await env.db.prisma.rosterItem.count({ where: { accountId: a.id } }), 0);
      assert.equal(await env.db.prisma.session.count({ where: { accountId: a.id } }), 0);
      assert.equal(await env.db.prisma.event.count({ where: { accountId: a.id } }), 0);
      await assert.rejects(closed.caller(a.localpart, null), appError("account-not-found"));
    });

    it("answers a stranger's pending request with unsubscribed and withdraws its own pending request", async () => {
      const a = await env.account("romeo");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, "stranger@example.net", { kind: "inbound", type: "subscribe" }));
      await env.flush();
      env.out.reset();
      await closed.delete(a.localpart);
      await env.flush();
      assert.deepEqual(env.out.sent, [{ kind: "subscription", from: a.jid, to: "stranger@example.net", type: "unsubscribed" }]);

      const b = await env.account("romeo");
      await roster.act(b.ref, "asked@example.net", "subscribe");
      await env.flush();
      env.out.reset();
      await closed.delete(b.localpart);
      await env.flush();
      assert.deepEqual(env.out.sent, [{ kind: "subscription", from: b.jid, to: "asked@example.net", type: "unsubscribe" }]);
    });

    // The lifecycle audit of stop 65: a blocked contact left out kept her subscription on her
    // server, and the account made again under the name received her presence.
    it("ends the subscriptions of contacts the account blocked too (by JID or by domain), but sends them no presence (XEP-0191 §3.3)", async () => {
      const a = await env.account("romeo");
      const both = async (contact: string) => {
        await roster.act(a.ref, contact, "subscribe");
        await env.db.transaction((tx) => applySubscription(tx, a.ref, contact, { kind: "inbound", type: "subscribed" }));
        await env.db.transaction((tx) => applySubscription(tx, a.ref, contact, { kind: "inbound", type: "subscribe" }));
        await roster.act(a.ref, contact, "subscribed");
      };
      for (const contact of ["tybalt@example.org", "paris@blocked.example", CONTACT]) await both(contact);
      await env.db.transaction((tx) => applySubscription(tx, a.ref, "stranger@blocked.example", { kind: "inbound", type: "subscribe" }));
      await env.db.prisma.block.createMany({ data: [{ accountId: a.id, jid: "tybalt@example.org" }, { accountId: a.id, jid: "blocked.example" }] });
      await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
      await env.flush();
      env.out.reset();
      await closed.delete(a.localpart);
      await env.flush();
      const goodbye = (to: string): Stanza[] => [
        { kind: "subscription", from: a.jid, to, type: "unsubscribe" },
        { kind: "subscription", from: a.jid, to, type: "unsubscribed" },
      ];
      assert.deepEqual(sortStanzas(env.out.sent), sortStanzas([
        { kind: "presence", from: `${a.jid}/phone`, to: CONTACT, type: "unavailable", show: null, status: null, priority: null },
        ...goodbye(CONTACT),
        ...goodbye("tybalt@example.org"),
        ...goodbye("paris@blocked.example"),
        { kind: "subscription", from: a.jid, to: "stranger@blocked.example", type: "unsubscribed" },
      ]));
    });

    it("while the link is down: accepted and the account goes; its goodbyes wait in the outbox, then go out in the order recorded", async () => {
      const a = await env.account("romeo");
      const b = await env.account("benvolio");
      // a: From with an available session (unavailable + unsubscribed), plus its own pending request (unsubscribe).
      await env.db.transaction((tx) => applySubscription(tx, a.ref, CONTACT, { kind: "inbound", type: "subscribe" }));
      await roster.act(a.ref, CONTACT, "subscribed");
      await roster.act(a.ref, "asked@example.net", "subscribe");
      await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
      await env.flush();
      env.out.reset();

      env.out.online = false;
      await roster.act(b.ref, "nurse@example.net", "subscribe"); // recorded before the deletion...
      await closed.delete(a.localpart);
      await roster.act(b.ref, "nurse@example.net", "unsubscribe"); // ...and after it
      assert.equal(await rows(a.localpart), 0, "the deletion does not wait for the link");
      assert.equal(await env.db.prisma.rosterItem.count({ where: { accountId: a.id } }), 0);
      env.delivery.kick();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(env.out.sent, [], "nothing is written while the link is down");
      assert.equal(env.out.writes, 0);

      const waiting = await env.outbox();
      const nurse = (type: "subscribe" | "unsubscribe") => ({ kind: "subscription", from: b.jid, to: "nurse@example.net", type });
      const goodbyes = waiting.slice(1, -1);
      assert.deepEqual(waiting[0], { seq: waiting[0]!.seq, accountId: b.id, stanza: nurse("subscribe") });
      assert.deepEqual(waiting.at(-1), { seq: waiting.at(-1)!.seq, accountId: b.id, stanza: nurse("unsubscribe") });
      assert.deepEqual(goodbyes[0]?.stanza, { kind: "presence", from: `${a.jid}/phone`, to: CONTACT, type: "unavailable", show: null, status: null, priority: null }, "unavailable first");
      assert.deepEqual(
        sortStanzas(goodbyes.slice(1).map((r) => r.stanza)),
        sortStanzas([
          { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribed" },
          { kind: "subscription", from: a.jid, to: "asked@example.net", type: "unsubscribe" },
        ]),
      );
      assert.ok(
        goodbyes.every((r) => r.accountId === a.id),
        "the goodbyes keep the deleted account's id (the outbox has no foreign key)",
      );
      assert.deepEqual(
        waiting.map((r) => r.seq),
        waiting.map((r) => r.seq).sort((x, y) => x - y),
      );

      env.out.online = true;
      await env.flush();
      assert.deepEqual(env.out.sent, waiting.map((r) => r.stanza), "sent in the order recorded");
      assert.deepEqual(await env.outbox(), []);
    });

    it("leaves the rooms the account is in (XEP-0045 §7.14), not one whose join failed", async () => {
      const a = await env.account("romeo");
      await env.db.transaction(async (tx) => {
        await recordJoin(tx, a.id, "lobby@conference.example.net", "Romeo", null, null);
        await markJoined(tx, a.id, "lobby@conference.example.net", "participant", "none", false);
        await recordJoin(tx, a.id, "crypt@conference.example.net", "R", null, null); // still joining
        await recordJoin(tx, a.id, "locked@conference.example.net", "R", null, null);
        await markFailed(tx, a.id, "locked@conference.example.net", { type: "auth", condition: "forbidden" });
      });
      await env.flush();
      env.out.reset();
      await closed.delete(a.localpart);
      await env.flush();
      const exit = (room: string): Stanza => ({ kind: "presence", from: `${a.jid}/rooms`, to: room, type: "unavailable", show: null, status: null, priority: null });
      assert.deepEqual(sortStanzas(env.out.sent), sortStanzas([exit("crypt@conference.example.net/R"), exit("lobby@conference.example.net/Romeo")]));
      assert.equal(await env.db.prisma.room.count({ where: { accountId: a.id } }), 0);
    });

    it("two deletions at once: one deletes, the other finds no account (404, not 500); goodbyes are recorded once", async () => {
      const a = await env.account("romeo");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, "stranger@example.net", { kind: "inbound", type: "subscribe" }));
      await env.flush();
      env.out.reset();
      // Two stores, as on two instances: both find the account before either deletes it.
      const one = new Accounts(new AccountStore(env.db.prisma), env.delivery, env.domain, false);
      const two = new Accounts(new AccountStore(env.db.prisma), env.delivery, env.domain, false);
      const results = await Promise.allSettled([one.delete(a.localpart), two.delete(a.localpart)]);
      assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      assert.equal((refused.reason as { code?: string }).code, "account-not-found", String(refused.reason));
      await env.flush();
      assert.deepEqual(env.out.sent, [{ kind: "subscription", from: a.jid, to: "stranger@example.net", type: "unsubscribed" }]);
    });

    /** An account whose deletion sends one goodbye: `unsubscribed` to a stranger's pending request. */
    const withGoodbye = async () => {
      const a = await env.account("romeo");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, "stranger@example.net", { kind: "inbound", type: "subscribe" }));
      await env.flush();
      // The flush's last kick may still be draining: a step in flight when a test takes the link
      // down could claim part of what it sends next, and write it when the link is back.
      await env.delivery.idle();
      env.out.reset();
      return { a, goodbye: { kind: "subscription", from: a.jid, to: "stranger@example.net", type: "unsubscribed" } as Stanza };
    };
    const send = async (a: TestAccount, m: SendMessage) => (await messaging.send(a, "phone", m, null)).id;
    const ids = (stanzas: Stanza[]) => stanzas.map((s) => (s.kind === "message" ? `message ${s.id}` : `${s.kind} ${s.from}`));

    it("messages still queued (link down) go out after the deletion, in order, before the goodbyes, each once, as the drain writes them (API.md 1.1)", async () => {
      const { a, goodbye } = await withGoodbye();
      const b = await env.account("benvolio");
      env.out.online = false;
      const rich: SendMessage = { to: "Juliet@Example.NET/Balcony", body: { en: "one", it: "uno" }, lang: "en", thread: "t1", receipt: true, state: "active", markable: false };
      const first = await send(a, rich);
      const twin = await send(b, rich); // b's is drained as usual: what the drain writes for the same request
      const plain = await send(a, { to: CONTACT, body: "two" });
      const corrected = await send(a, { to: CONTACT, body: "three" });
      await actions.correct(a, "phone", corrected, { to: CONTACT, body: "three, corrected", lang: null });
      const retracted = await send(a, { to: CONTACT, body: "four" });
      await actions.retract(a, retracted);
      const delivered = await send(a, { to: CONTACT, body: "five" });
      await env.db.transaction((tx) => env.messages.markDelivered(tx, a.id, delivered, CONTACT));
      // Stored before a check existed, say: malformed XML text, which the server would close the link for.
      const malformed = { id: randomUUID(), accountId: a.id, peer: CONTACT, from: a.jid, to: CONTACT, type: "chat" as const, body: "bad \u0001", idempotencyKey: null, requestHash: null };
      await env.messages.insertOutbound([malformed]);
      const last = await send(a, { to: CONTACT, body: "six" });

      await closed.delete(a.localpart);
      assert.equal(await rows(a.localpart), 0, "the deletion does not wait for the link");
      env.delivery.kick();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(env.out.writes, 0, "nothing is written while the link is down");

      env.out.online = true;
      await env.flush();
      const sent = env.out.sent;
      // The retracted message is withdrawn with its retraction; the correction is in the text sent;
      // the one a receipt reached first and the malformed one are not sent (src/db/outbox.ts drainOnce, MOOT).
      assert.deepEqual(ids(sent), ids([{ kind: "message", id: first } as Stanza, { kind: "message", id: twin } as Stanza, ...[plain, corrected, last].map((id) => ({ kind: "message", id }) as Stanza), goodbye]));
      const message = (id: string) => sent.find((s) => s.kind === "message" && s.id === id) as Stanza & { kind: "message" };
      const wire = { kind: "message", to: "juliet@example.net/Balcony", type: "chat", body: { en: "one", it: "uno" }, subject: null, thread: "t1", lang: "en", receipt: true, state: "active", ext: { markable: false } };
      assert.deepEqual(message(first), { ...wire, id: first, from: `${a.jid}/phone` });
      assert.deepEqual(message(twin), { ...wire, id: twin, from: `${b.jid}/phone` }, "the same stanza as the drain writes for a message");
      assert.deepEqual(message(corrected), { ...message(plain), id: corrected, body: "three, corrected" }, "once, with its latest text");
      assert.equal(sent.at(-1)?.kind, "subscription");
      assert.deepEqual(await env.outbox(), []);
      env.out.reset();
      env.delivery.kick();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(env.out.sent, [], "nothing goes out twice");
    });

    /** Holds the port's next confirmations until `release(ok)`: a drain step that wrote its batch stays open, its rows claimed. */
    const holdConfirm = () => {
      let release!: (ok: boolean) => void;
      const held = new Promise<boolean>((r) => (release = r));
      env.out.confirm = () => held;
      return (ok: boolean) => {
        release(ok);
        delete (env.out as Partial<typeof env.out>).confirm; // back to the prototype's
      };
    };

    it("a drain step that claimed the account's messages and is writing them: the deletion waits for it, without a deadlock, and they go out once", async () => {
      const { a, goodbye } = await withGoodbye();
      env.out.online = false;
      const queued = [await send(a, { to: CONTACT, body: "one" }), await send(a, { to: CONTACT, body: "two" })];
      // Withdrawn by the same step, which records its failure under the account row's lock.
      await actions.retract(a, await send(a, { to: CONTACT, body: "three" }));
      const logged = env.log.entries.length;
      const release = holdConfirm();
      try {
        env.out.online = true;
        env.delivery.kick();
        await waitFor(() => env.out.sent.length === 2, "the drain's write");
        let done = false;
        const deletion = closed.delete(a.localpart).finally(() => (done = true));
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(done, false, "the deletion waits for the claim");
        const released = Date.now();
        release(true);
        await deletion;
        // PostgreSQL takes deadlock_timeout (1 s) to break a deadlock, and then aborts one of the two.
        assert.ok(Date.now() - released < 700, `the deletion ended ${Date.now() - released} ms after the step: no deadlock`);
      } finally {
        release(true);
      }
      await env.flush();
      assert.deepEqual(ids(env.out.sent), ids([...queued.map((id) => ({ kind: "message", id }) as Stanza), goodbye]));
      assert.deepEqual(env.log.entries.slice(logged).filter((e) => e.level === "warn"), [], "the drain step committed");
    });

    it("a message written straight to the link whose confirmation is under way when the account is deleted: handed over, then not written again once confirmed; written again if the confirmation fails", async () => {
      for (const confirmed of [true, false]) {
        const { a, goodbye } = await withGoodbye();
        const steps = env.delivery.stats.drainSteps;
        // The barrier behind the write waits for `answer` (as holdConfirm, counting the calls).
        let answer!: (ok: boolean) => void;
        const held = new Promise<boolean>((r) => (answer = r));
        let asked = 0;
        env.out.confirm = () => (asked++, held);
        let id: string;
        try {
          id = await send(a, { to: CONTACT, body: `direct, ${confirmed ? "confirmed" : "lost"}` });
          await waitFor(() => asked > 0, "the barrier behind the write");
          assert.deepEqual([env.out.sent.filter((s) => s.kind === "message" && s.id === id).length, env.delivery.stats.drainSteps], [1, steps], "written by the direct path, not by a drain step");
          await closed.delete(a.localpart);
          assert.equal((await env.db.pool.query("SELECT 1 FROM outbox WHERE stanza->>'id' = $1", [id])).rowCount, 1, "handed over to the outbox");
          answer(confirmed);
        } finally {
          answer(true);
          delete (env.out as Partial<typeof env.out>).confirm;
        }
        await env.flush();
        const message = { kind: "message", id } as Stanza;
        // A lost confirmation: the peer may or may not have it, so it goes again (at least once, same id).
        assert.deepEqual(ids(env.out.sent), ids(confirmed ? [message, goodbye] : [message, message, goodbye]));
      }
    });

    it("a drain step whose link drops before the confirmation rolls back: the deletion then hands its messages over, and they go out when the link is back", async () => {
      const { a, goodbye } = await withGoodbye();
      env.out.online = false;
      const queued = [await send(a, { to: CONTACT, body: "one" }), await send(a, { to: CONTACT, body: "two" })];
      const release = holdConfirm();
      try {
        env.out.online = true;
        env.delivery.kick();
        await waitFor(() => env.out.sent.length === 2, "the drain's write");
        const deletion = closed.delete(a.localpart);
        await new Promise((r) => setTimeout(r, 100));
        env.out.online = false;
        release(false);
        await deletion;
      } finally {
        release(false);
      }
      assert.equal(await rows(a.localpart), 0);
      env.out.online = true;
      await env.flush();
      // At least once: the unconfirmed write may have reached the peer, so the messages go again.
      const message = (id: string) => ({ kind: "message", id }) as Stanza;
      assert.deepEqual(ids(env.out.sent), ids([...queued.map(message), ...queued.map(message), goodbye]));
    });

    it("while the deletion waits for the account row, a drain sends none of the account's rows, not even those recorded behind its messages", async () => {
      const { a, goodbye } = await withGoodbye();
      const b = await env.account("benvolio");
      env.out.online = false;
      const first = await send(a, { to: CONTACT, body: "one" });
      await roster.act(a.ref, "nurse@example.net", "subscribe"); // recorded behind it
      const sentinel = await send(b, { to: CONTACT, body: "b's" });
      // Another transaction holds the account row (as an inbound batch appending events would).
      const locker = new pg.Client({ connectionString: env.tdb.url });
      await locker.connect();
      try {
        await locker.query("BEGIN");
        await locker.query("SELECT id FROM account WHERE id = $1 FOR UPDATE", [a.id]);
        const deletion = closed.delete(a.localpart);
        const waiting = async () => (await locker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")).rows[0]!.n > 0;
        await waitFor(waiting, "the deletion to wait for the account row");
        env.out.online = true;
        env.delivery.kick();
        await waitFor(() => env.out.sent.length > 0, "the drain's write");
        assert.deepEqual(ids(env.out.sent), ids([{ kind: "message", id: sentinel } as Stanza]), "only the other account's message");
        await locker.query("COMMIT");
        await deletion;
      } finally {
        await locker.end();
      }
      await env.flush();
      const subscribe: Stanza = { kind: "subscription", from: a.jid, to: "nurse@example.net", type: "subscribe" };
      const unsubscribe: Stanza = { kind: "subscription", from: a.jid, to: "nurse@example.net", type: "unsubscribe" };
      assert.deepEqual(ids(env.out.sent.slice(0, 3)), ids([{ kind: "message", id: sentinel } as Stanza, { kind: "message", id: first } as Stanza, subscribe]));
      assert.deepEqual(env.out.sent[2], subscribe);
      assert.deepEqual(sortStanzas(env.out.sent.slice(3)), sortStanzas([goodbye, unsubscribe]));
    });

    it("an unknown account: account-not-found, and nothing is recorded", async () => {
      await assert.rejects(closed.delete("nobody-here"), appError("account-not-found"));
      assert.deepEqual(await env.outbox(), []);
      await env.flush();
      assert.deepEqual(env.out.sent, []);
    });
  });
});
