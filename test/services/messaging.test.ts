// Sending messages (src/services/messaging.ts) and the delivery of everything recorded for the link
// (src/services/delivery.ts) against a real PostgreSQL and a fake outbound port: what is stored, what
// is written, when it counts as sent, idempotent retries, refusals, the drain after the link comes
// back, unconfirmed batches, the one sequence order of messages and stanzas, and the lease fence.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import pg from "pg";
import type { NewOutbound } from "../../src/db/messages.js";
import { subscription, type Stanza } from "../../src/domain/stanza.js";
import { AppError } from "../../src/domain/errors.js";
import { Delivery } from "../../src/services/delivery.js";
import { Messaging, type SendMessage } from "../../src/services/messaging.js";
import { requestFingerprint } from "../../src/services/request-fingerprint.js";
import { correctionOf, MessageActions } from "../../src/services/message-actions.js";
import { Roster } from "../../src/services/roster.js";
import { Blocking } from "../../src/services/blocking.js";
import { Blocklists } from "../../src/db/blocklist.js";
import { FakeOutbound } from "./fake-port.js";
import { appError, setup, teardown, waitFor, type Env, type TestAccount } from "./setup.js";
import { statusSql } from "../../src/db/message-status.js";
import { listConversations } from "../../src/db/conversations.js";
import { Conversations } from "../../src/services/conversations.js";

const TO = "juliet@example.net";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DRAIN_FAILED = "outbound drain failed; retrying";

/**
 * The message stanza as the wire sees it: the OutboundMessage fields, absent ones as null. (The
 * drain hands the port the row read back, with nulls; this keeps the assertions independent of that.)
 */
function wire(s: Stanza | undefined) {
  assert.ok(s, "a stanza");
  assert.equal(s.kind, "message");
  return {
    kind: s.kind,
    id: s.id,
    from: s.from,
    to: s.to,
    type: s.type,
    body: s.body ?? null,
    subject: s.subject ?? null,
    thread: s.thread ?? null,
    lang: s.lang ?? null,
    receipt: s.receipt ?? false,
    state: s.state ?? null,
  };
}

/** A short name for a stanza on the port, to compare orders: `message <id>` or `subscribe <from> <to>`. */
const tag = (s: Stanza): string => {
  if (s.kind === "message") return `message ${s.id}`;
  if (s.kind === "subscription") return `${s.type} ${s.from} ${s.to}`;
  return `${s.kind} ${s.from} ${s.kind === "error" ? s.replyTo.from : s.to}`;
};

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Messaging + Delivery", () => {
  let env: Env;
  let delivery: Delivery;
  let messaging: Messaging;
  let roster: Roster;

  before(async () => {
    env = await setup();
    delivery = env.delivery;
    messaging = env.messaging();
    roster = new Roster(env.db, delivery);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  const status = async (a: TestAccount, id: string) => (await messaging.get(a, id)).status;
  const queuedIds = async () => (await env.db.pool.query<{ id: string }>(`SELECT id::text FROM message m WHERE direction = 'out' AND ${statusSql("m")} = 'queued' ORDER BY seq`)).rows.map((r) => r.id);
  /** Kicks the delivery, lets it run, and checks it wrote nothing (the link is down, or the claim is fenced). */
  const kickWritesNothing = async (port: FakeOutbound = env.out) => {
    delivery.kick();
    await pause(50);
    assert.equal(port.writes, 0, "nothing written");
    assert.deepEqual(port.sent, []);
  };

  it("send: queued, then one message stanza with the same id from the full JID, and sent once confirmed", async () => {
    const a = await env.account("romeo");
    const written = env.metrics.written;
    const res = await messaging.send(a, "phone", { to: "Juliet@Example.NET/Balcony", body: "hello", thread: "t1", receipt: true }, null);
    assert.equal(res.status, "queued");
    assert.equal(res.replayed, false);
    assert.match(res.id, UUID);
    await env.flush();
    assert.equal(env.out.sent.length, 1);
    assert.deepEqual(wire(env.out.sent[0]), {
      kind: "message",
      id: res.id,
      from: `${a.localpart}@${env.domain}/phone`,
      to: "juliet@example.net/Balcony",
      type: "chat",
      body: "hello",
      subject: null,
      thread: "t1",
      lang: null,
      receipt: true,
      state: null,
    });
    assert.equal(env.out.confirmCalls, 1, "confirmed before it was recorded as sent");
    assert.equal(await status(a, res.id), "sent");
    assert.equal(env.metrics.written - written, 1);
    const view = await messaging.get(a, res.id);
    assert.equal(view.direction, "out");
    assert.equal(view.to, "juliet@example.net/Balcony");
  });

  it("without a resource the message is from the bare JID", async () => {
    const a = await env.account("romeo");
    const res = await messaging.send(a, null, { to: TO, type: "headline", subject: { en: "Hi", fr: "Salut" } }, null);
    await env.flush();
    assert.deepEqual(wire(env.out.sent[0]), {
      kind: "message",
      id: res.id,
      from: `${a.localpart}@${env.domain}`,
      to: TO,
      type: "headline",
      body: null,
      subject: { en: "Hi", fr: "Salut" },
      thread: null,
      lang: null,
      receipt: false,
      state: null,
    });
    assert.deepEqual(Object.keys((await env.db.prisma.message.findUniqueOrThrow({ where: { id: res.id } })).subject as object), ["en", "fr"], "language alternatives keep their order");
    assert.equal(await status(a, res.id), "sent");
  });

  it("an unconfirmed batch is rolled back: its rows stay queued, and a later drain sends them again, same ids, same order", async () => {
    const a = await env.account("romeo");
    env.out.online = false;
    await roster.act(a.ref, "nurse@example.net", "subscribe");
    const m = await messaging.send(a, null, { to: TO, body: "lost?" }, null);
    await roster.act(a.ref, TO, "subscribe");
    const outbox = await env.outbox();
    assert.equal(outbox.length, 2);
    await kickWritesNothing();

    env.out.online = true;
    env.out.confirms = false;
    const failures = env.log.entries.filter((e) => e.m === DRAIN_FAILED).length;
    delivery.kick();
    await waitFor(() => env.log.entries.filter((e) => e.m === DRAIN_FAILED).length > failures, "the unconfirmed drain to roll back");
    const first = env.out.take();
    assert.deepEqual(first.map(tag), [`subscribe ${a.jid} nurse@example.net`, `message ${m.id}`, `subscribe ${a.jid} ${TO}`], "written once, in the order recorded");
    assert.equal(env.out.confirmCalls, 1);
    assert.equal(await status(a, m.id), "queued", "not confirmed: not sent");
    assert.deepEqual(await env.outbox(), outbox, "the stanza rows are still there, as they were");

    env.out.confirms = true;
    await env.flush();
    assert.deepEqual(env.out.sent, first, "the same stanzas again: the message with the same id");
    assert.equal(await status(a, m.id), "sent");
    assert.deepEqual(await env.outbox(), []);
  });

  it("stanzas of two accounts interleaved with messages reach the port in sequence order", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    env.out.online = false;
    const expected: string[] = [];
    await roster.act(a.ref, "nurse@example.net", "subscribe");
    expected.push(`subscribe ${a.jid} nurse@example.net`);
    expected.push(`message ${(await messaging.send(b, null, { to: TO, body: "b1" }, null)).id}`);
    await roster.act(b.ref, "tybalt@example.net", "subscribe");
    expected.push(`subscribe ${b.jid} tybalt@example.net`);
    expected.push(`message ${(await messaging.send(a, "phone", { to: TO, body: "a1" }, null)).id}`);
    expected.push(`message ${(await messaging.send(b, null, { to: TO, body: "b2" }, null)).id}`);
    await roster.act(a.ref, "tybalt@example.net", "subscribe");
    expected.push(`subscribe ${a.jid} tybalt@example.net`);
    await roster.act(b.ref, "nurse@example.net", "subscribe");
    expected.push(`subscribe ${b.jid} nurse@example.net`);

    // The sequence both tables share agrees with the order the use cases ran in.
    const { rows } = await env.db.pool.query<{ seq: number; id: string | null }>(
      `SELECT seq, id::text FROM message m WHERE direction = 'out' AND ${statusSql("m")} = 'queued' UNION ALL SELECT seq, NULL FROM outbox ORDER BY seq`,
    );
    assert.deepEqual(
      rows.map((r) => (r.id ? `message ${r.id}` : "stanza")),
      expected.map((t) => (t.startsWith("message") ? t : "stanza")),
    );
    await kickWritesNothing();

    env.out.online = true;
    await env.flush();
    assert.deepEqual(env.out.sent.map(tag), expected);
    assert.equal(env.out.writes, 1, "one batch, one write");
  });

  it("across batches (over 500 rows), messages and stanzas still go out in sequence order", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    env.out.online = false;
    const stanza = (acct: TestAccount, to: string) => delivery.transaction((_tx, send) => send(acct.id, [subscription(acct.jid, to, "subscribe")]));
    const messages = (n: number, from: number): NewOutbound[] =>
      Array.from({ length: n }, (_, i) => {
        const acct = (from + i) % 2 ? a : b;
        return { id: randomUUID(), accountId: acct.id, peer: TO, from: acct.jid, to: TO, type: "chat", body: `m${from + i}`, idempotencyKey: null, requestHash: null };
      });
    await stanza(a, "one@example.net");
    await env.messages.insertOutbound(messages(300, 0));
    await stanza(b, "two@example.net");
    await env.messages.insertOutbound(messages(300, 300));
    await stanza(a, "three@example.net"); // past the first batch's 500 messages: must wait for the second batch
    const { rows } = await env.db.pool.query<{ id: string | null; stanza: Stanza | null }>(
      `SELECT seq, id::text, NULL::json AS stanza FROM message m WHERE direction = 'out' AND ${statusSql("m")} = 'queued' UNION ALL SELECT seq, NULL, stanza FROM outbox ORDER BY seq`,
    );
    assert.equal(rows.length, 603);
    const expected = rows.map((r) => (r.id ? `message ${r.id}` : tag(r.stanza!)));
    assert.deepEqual(
      expected.flatMap((t, i) => (t.startsWith("message") ? [] : [[i, t]])),
      [
        [0, `subscribe ${a.jid} one@example.net`],
        [301, `subscribe ${b.jid} two@example.net`],
        [602, `subscribe ${a.jid} three@example.net`],
      ],
    );

    env.out.online = true;
    await env.flush();
    assert.deepEqual(env.out.sent.map(tag), expected);
    assert.equal(env.out.writes, 2, "two batches");
  });

  it("a chat state alone goes out but is not a conversation's latest message (a typing notification moves nothing)", async () => {
    const a = await env.account("romeo");
    const said = await messaging.send(a, null, { to: TO, body: "hi" }, null);
    await messaging.send(a, null, { to: TO, state: "composing" }, null);
    const typingOnly = await messaging.send(a, null, { to: "nurse@example.net", state: "paused" }, null);
    const attached = await messaging.send(a, null, { to: "nurse@example.net", attachments: [{ url: "https://files.example/rose.jpg" }] }, null);
    await env.flush();
    assert.deepEqual(
      env.out.sent.map((m) => (m.kind === "message" ? [m.to, m.body ?? null, m.state ?? null] : m.kind)),
      [
        [TO, "hi", null],
        [TO, null, "composing"],
        ["nurse@example.net", null, "paused"],
        ["nurse@example.net", null, null],
      ],
      "all four went out",
    );
    const conversations = (await listConversations(env.db.prisma, a.id, null, 10)).rows;
    const latest = new Map(conversations.map((c) => [c.peer, c.last]));
    assert.equal(latest.get(TO)?.id, said.id, "the typing notification is not the latest message");
    assert.equal(latest.get("nurse@example.net")?.id, attached.id, "an attachment says something: it is the latest");
    assert.equal(conversations.length, 2);
    assert.equal((await messaging.get(a, typingOnly.id)).status, "sent", "the chat state is still a message one can ask about");
  });

  it("a page of conversations holds at most PAGE_BYTES of their latest messages (but always its first), and nextCursor goes on after it", async () => {
    const a = await env.account("romeo");
    // Each conversation's latest message, 1.5 MiB (written straight to the table), but p4's: 5 MiB.
    for (const [peer, mib] of [["p1", 1.5], ["p2", 1.5], ["p3", 1.5], ["p4", 5], ["p5", 1.5], ["p6", 0]] as const) {
      const m = await messaging.send(a, null, { to: `${peer}@example.net`, body: "short" }, null);
      await env.db.pool.query("UPDATE message SET body = $2::json WHERE id = $1", [m.id, JSON.stringify("x".repeat(mib * 1024 * 1024))]);
    }
    await env.flush();
    const conversations = new Conversations(env.db);
    const pages: string[][] = [];
    for (let cursor: string | null = null; ; ) {
      const page = await conversations.list(a.id, cursor, 100);
      pages.push(page.items.map((c) => c.with.split("@")[0] ?? ""));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    assert.deepEqual(pages, [["p6", "p5", "p4"], ["p3", "p2", "p1"]]);
    assert.deepEqual((await conversations.list(a.id, null, 2)).items.map((c) => c.with), ["p6@example.net", "p5@example.net"], "a count cut still works");
  });

  describe("idempotency", () => {
    it("same key, same payload (any key order): the first answer (queued, though it was sent since), replayed, and nothing sent again", async () => {
      const a = await env.account("romeo");
      const body: SendMessage = { to: TO, body: "once", thread: "x" };
      const first = await messaging.send(a, null, body, "key-1");
      assert.equal(first.replayed, false);
      await env.flush();
      assert.equal(await status(a, first.id), "sent");
      assert.equal(env.out.sent.length, 1);

      const again = await messaging.send(a, null, { thread: "x", body: "once", to: TO }, "key-1");
      assert.equal(first.status, "queued");
      // API.md: the first response, not the message's status now (GET tells that).
      assert.deepEqual(again, { id: first.id, status: "queued", createdAt: first.createdAt, replayed: true });
      await env.flush();
      assert.equal(env.out.sent.length, 1, "a replay writes nothing");
      assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 1);
    });

    it("same key, different payload: idempotency-key-reused; the same key on another account is independent", async () => {
      const a = await env.account("romeo");
      const first = await messaging.send(a, null, { to: TO, body: "one" }, "key-2");
      await assert.rejects(messaging.send(a, null, { to: TO, body: "two" }, "key-2"), appError("idempotency-key-reused"));
      await env.flush();
      assert.equal(env.out.sent.length, 1);
      assert.equal((await messaging.get(a, first.id)).body, "one");

      const b = await env.account("mercutio");
      const other = await messaging.send(b, null, { to: TO, body: "two" }, "key-2");
      assert.equal(other.replayed, false);
      assert.notEqual(other.id, first.id);
      await env.flush();
      assert.equal(await status(a, first.id), "sent");
      assert.equal(await status(b, other.id), "sent");
    });

    it("a retry answers as the first request did even when the peer was blocked since; a new request (or a new payload) is refused", async () => {
      const a = await env.account("romeo");
      const blocking = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
      const guarded = env.messaging(env.delivery, env.out, (accountId, to) => blocking.assertNotBlocked(accountId, to, "body.to"));
      const first = await guarded.send(a, null, { to: TO, body: "before the block" }, "key-b");
      const [batchFirst] = await guarded.sendBatch(a, null, [{ message: { to: TO, body: "batched" }, idempotencyKey: "key-c" }]);
      await env.flush();
      await blocking.block(a.ref, TO);
      await env.flush();
      env.out.reset();

      const again = await guarded.send(a, null, { to: TO, body: "before the block" }, "key-b");
      assert.deepEqual(again, { ...first, replayed: true });
      const [batchAgain] = await guarded.sendBatch(a, null, [{ message: { to: TO, body: "batched" }, idempotencyKey: "key-c" }]);
      assert.equal(await status(a, first.id), "sent");
      assert.deepEqual(batchAgain, { ...(batchFirst as object), replayed: true }, "the first answer, queued, though the message was sent since");
      await assert.rejects(guarded.send(a, null, { to: TO, body: "after the block" }, "key-d"), appError("blocked"));
      await assert.rejects(guarded.send(a, null, { to: TO, body: "a new payload" }, "key-b"), appError("idempotency-key-reused"));
      await assert.rejects(guarded.send(a, null, { to: TO, body: "no key" }, null), appError("blocked"));
      await env.flush();
      assert.deepEqual(env.out.sent, [], "nothing was sent again, nothing new to the blocked peer");
      assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 2);
    });

    it("a message to a JID blocked on another instance a moment ago is 400 blocked, though this instance's cached list predates the block: nothing written or sent; in a batch that item alone; a retry of one accepted before still answers as then", async () => {
      // Two instances over one database: `stale` cached the (empty) list before `other` blocked,
      // and never hears of the change (its NOTIFY is not delivered here). The insert decides.
      const a = await env.account("romeo");
      const stale = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
      const other = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
      const guarded = env.messaging(env.delivery, env.out, (accountId, to) => stale.assertNotBlocked(accountId, to, "body.to"));
      const first = await guarded.send(a, null, { to: TO, body: "before the block" }, "key-s");
      await env.flush();
      assert.equal(await stale.blocksJid(a.id, TO), false, "cached before the block");
      await other.block(a.ref, TO.split("@")[1]!); // her domain: XEP-0191 §3 matching in SQL too
      await env.flush();
      env.out.reset();
      const count = () => env.db.prisma.message.count({ where: { accountId: a.id } });
      const before = await count();

      await assert.rejects(guarded.send(a, null, { to: `${TO}/phone`, body: "after the block" }, null), (err: unknown) => err instanceof AppError && err.code === "blocked" && err.extra?.field === "body.to");
      await assert.rejects(guarded.send(a, null, { to: TO, body: "keyed, after the block" }, "key-t"), appError("blocked"));
      const batch = await guarded.sendBatch(a, null, [
        { message: { to: TO, body: "in a batch" }, idempotencyKey: null },
        { message: { to: "nurse@other.example", body: "not blocked" }, idempotencyKey: null },
      ]);
      assert.ok(batch[0] instanceof AppError && batch[0].code === "blocked", `batch item 0: ${JSON.stringify(batch[0])}`);
      assert.ok(!(batch[1] instanceof AppError) && batch[1]!.status === "queued", "the other item is accepted");
      assert.deepEqual(await guarded.send(a, null, { to: TO, body: "before the block" }, "key-s"), { ...first, replayed: true }, "a retry answers as the first did");
      assert.equal(await count(), before + 1, "only the unblocked batch item was written");
      await env.flush();
      assert.deepEqual(env.out.sent.map((s) => (s as { to?: string }).to), ["nurse@other.example"], "nothing to the blocked peer");

      // Corrections and reactions read the committed list in their transaction, as the gateway wires them.
      const actions = new MessageActions(env.delivery, env.out, env.domain, (accountId, jid, tx) => stale.blocksJid(accountId, jid, tx));
      await assert.rejects(actions.correct(a, null, first.id, correctionOf({ to: TO, body: "corrected after the block" }, null)), appError("blocked"));
      await assert.rejects(actions.react(a, first.id, ["👍"]), appError("blocked"));
      await env.flush();
      assert.deepEqual(env.out.sent.map((s) => (s as { to?: string }).to), ["nurse@other.example"], "no correction or reaction to the blocked peer");
    });

    it("a message of an account deleted since it was looked up is 404 account-not-found alone: the others written with it in one statement are accepted and sent", async () => {
      const [a, b] = [await env.account("romeo"), await env.account("mercutio")];
      const messaging = env.messaging();
      // Deleted by another instance: this one still holds the account as it looked it up.
      await env.db.pool.query("DELETE FROM account WHERE id = $1", [a.id]);
      const [gone, kept, keyed] = await Promise.allSettled([
        messaging.send(a, null, { to: TO, body: "from a deleted account" }, null),
        messaging.send(b, null, { to: TO, body: "from a live one" }, null),
        messaging.send(a, null, { to: TO, body: "keyed, from a deleted account" }, "key-gone"),
      ]);
      for (const r of [gone, keyed]) assert.ok(r.status === "rejected" && r.reason instanceof AppError && r.reason.code === "account-not-found", String(r.status === "rejected" ? r.reason : "accepted"));
      assert.ok(kept.status === "fulfilled" && kept.value.status === "queued", String(kept.status === "rejected" ? kept.reason : ""));
      await env.flush();
      assert.deepEqual(env.out.sent.map((x) => (x as { body?: unknown }).body), ["from a live one"]);
    });

    it("a retry that spells the same JID otherwise (case, alone and in a batch, and a correction's) is the same request; a canonical JID hashes as before", async () => {
      const a = await env.account("romeo");
      const first = await messaging.send(a, null, { to: TO, body: "once" }, "key-jid");
      // Keys stored before `to` was prepared for the fingerprint hashed the payload as sent.
      const stored = await env.db.pool.query<{ request_hash: string }>("SELECT request_hash FROM message WHERE id = $1::uuid", [first.id]);
      assert.equal(stored.rows[0]!.request_hash, requestFingerprint({ to: TO, body: "once" }, null), "the payload hashed as sent");
      const again = await messaging.send(a, null, { to: "Juliet@EXAMPLE.net", body: "once" }, "key-jid");
      assert.deepEqual(again, { ...first, replayed: true });
      const [batchFirst] = await messaging.sendBatch(a, null, [{ message: { to: "JULIET@example.net", body: "batched" }, idempotencyKey: "key-jid-b" }]);
      const [batchAgain] = await messaging.sendBatch(a, null, [{ message: { to: TO, body: "batched" }, idempotencyKey: "key-jid-b" }]);
      assert.deepEqual(batchAgain, { ...(batchFirst as object), replayed: true });
      const actions = new MessageActions(env.delivery, env.out, env.domain);
      const fix = (to: string) => actions.correct(a, null, first.id, correctionOf({ to, body: "once, corrected" }, "key-jid-c"));
      const fixed = await fix(TO);
      assert.deepEqual(await fix("juliet@EXAMPLE.NET"), { ...fixed, replayed: true });
      // The sentinel: another payload under the key is still refused.
      await assert.rejects(messaging.send(a, null, { to: "Juliet@example.net", body: "twice" }, "key-jid"), appError("idempotency-key-reused"));
      await env.flush();
      assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 2);
    });

    it("concurrent retries with one key store one message and write it once", async () => {
      const a = await env.account("romeo");
      const results = await Promise.all(Array.from({ length: 8 }, () => messaging.send(a, null, { to: TO, body: "race" }, "key-3")));
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      assert.equal(results.filter((r) => !r.replayed).length, 1);
      await env.flush();
      assert.equal(env.out.sent.length, 1);
      assert.equal(await status(a, results[0]!.id), "sent");
    });
  });

  describe("history (GET /v1/messages?with=)", () => {
    const bodies = (p: { items: { body: unknown }[] }) => p.items.map((m) => m.body);
    /** m1..m6 to TO, sent; their cursors by body. */
    async function six(a: TestAccount): Promise<Record<string, string>> {
      for (let i = 1; i <= 6; i++) await messaging.send(a, null, { to: TO, body: `m${i}` }, null);
      await env.flush();
      const all = await messaging.history(a, TO, { before: null, after: null, limit: 10 });
      assert.deepEqual(bodies(all), ["m6", "m5", "m4", "m3", "m2", "m1"]);
      return Object.fromEntries(all.items.map((m) => [m.body as string, m.cursor]));
    }

    it("without after: the newest page, then older ones with nextCursor as before (unchanged)", async () => {
      const a = await env.account("romeo");
      const c = await six(a);
      const p1 = await messaging.history(a, TO, { before: null, after: null, limit: 2 });
      assert.deepEqual([bodies(p1), p1.nextCursor], [["m6", "m5"], c.m5]);
      const p2 = await messaging.history(a, TO, { before: Number(p1.nextCursor), after: null, limit: 2 });
      assert.deepEqual([bodies(p2), p2.nextCursor], [["m4", "m3"], c.m3]);
    });

    it("after a cursor: the messages right after it (newest first), and nextCursor goes on forward with no gap or repeat", async () => {
      const a = await env.account("romeo");
      const c = await six(a);
      const p1 = await messaging.history(a, TO, { before: null, after: Number(c.m2), limit: 2 });
      assert.deepEqual([bodies(p1), p1.nextCursor], [["m4", "m3"], c.m4]);
      const p2 = await messaging.history(a, TO, { before: null, after: Number(p1.nextCursor), limit: 2 });
      assert.deepEqual([bodies(p2), p2.nextCursor], [["m6", "m5"], null], "the last page");
      const rest = await messaging.history(a, TO, { before: null, after: Number(c.m3), limit: 3 });
      assert.deepEqual([bodies(rest), rest.nextCursor], [["m6", "m5", "m4"], null], "a page that holds the rest exactly is the last");
    });

    it("before and after: the window between them, paged forward from after (nextCursor the next after, same before)", async () => {
      const a = await env.account("romeo");
      const c = await six(a);
      const p1 = await messaging.history(a, TO, { before: Number(c.m6), after: Number(c.m1), limit: 2 });
      assert.deepEqual([bodies(p1), p1.nextCursor], [["m3", "m2"], c.m3]);
      const p2 = await messaging.history(a, TO, { before: Number(c.m6), after: Number(p1.nextCursor), limit: 2 });
      assert.deepEqual([bodies(p2), p2.nextCursor], [["m5", "m4"], null], "m6 is not below before: the window ends");
    });

    it("a page holds at most PAGE_BYTES of message data (but always its first message), and nextCursor goes on after it, both ways, skipping nothing", async () => {
      const a = await env.account("romeo");
      // 1.5 MiB each, written straight to the table (a request's body is bounded far below): three
      // fit under 4 MiB, a fourth would not; one alone is over it.
      const big = (n: string, mib = 1.5) => `${n} ${"x".repeat(mib * 1024 * 1024)}`;
      for (const body of [big("m1"), big("m2"), big("m3"), big("m4"), big("huge", 5), big("m6"), "m7"]) await messaging.send(a, null, { to: TO, body: "short" }, null).then((m) => env.db.pool.query("UPDATE message SET body = $2::json WHERE id = $1", [m.id, JSON.stringify(body)]));
      await env.flush();
      const names = (p: { items: { body: unknown }[] }) => p.items.map((m) => String(m.body).split(" ")[0] ?? "");
      const pages: string[][] = [];
      let p = await messaging.history(a, TO, { before: null, after: null, limit: 100 });
      for (;;) {
        pages.push(names(p));
        if (p.nextCursor === null) break;
        p = await messaging.history(a, TO, { before: Number(p.nextCursor), after: null, limit: 100 });
      }
      assert.deepEqual(pages, [["m7", "m6", "huge"], ["m4", "m3", "m2"], ["m1"]]);
      const forward: string[][] = [];
      let cursor = 0;
      for (;;) {
        const f = await messaging.history(a, TO, { before: null, after: cursor, limit: 100 });
        forward.push(names(f));
        if (f.nextCursor === null) break;
        cursor = Number(f.nextCursor);
      }
      assert.deepEqual(forward, [["m3", "m2", "m1"], ["huge", "m4"], ["m7", "m6"]], "forward: whole messages, the one over the bound with what came before it");
      const whole = await messaging.history(a, TO, { before: null, after: null, limit: 1 });
      assert.equal(String(whole.items[0]!.body), "m7", "a count cut still works");
    });

    it("lists what says something (body, subject, attachments), not a chat state sent alone, which GET still finds", async () => {
      const a = await env.account("romeo");
      const said = await messaging.send(a, null, { to: TO, body: "hi" }, null);
      const typing = await messaging.send(a, null, { to: TO, state: "composing" }, null);
      const subject = await messaging.send(a, null, { to: TO, subject: "news", state: "active" }, null);
      const attached = await messaging.send(a, null, { to: TO, attachments: [{ url: "https://files.example/rose.jpg" }] }, null);
      const paused = await messaging.send(a, null, { to: TO, state: "paused" }, null);
      await env.flush();
      const page = await messaging.history(a, TO, { before: null, after: null, limit: 10 });
      assert.deepEqual(page.items.map((m) => m.id), [attached.id, subject.id, said.id]);
      const forward = await messaging.history(a, TO, { before: null, after: Number(page.items[2]!.cursor), limit: 10 });
      assert.deepEqual(forward.items.map((m) => m.id), [attached.id, subject.id], "nor with after");
      for (const id of [typing.id, paused.id]) assert.equal((await messaging.get(a, id)).status, "sent");
    });
  });

  it("a late error bounce does not fail a delivered message; a message still on its way fails, once", async () => {
    const a = await env.account("romeo");
    const delivered = await messaging.send(a, null, { to: TO, body: "got it" }, null);
    const bounced = await messaging.send(a, null, { to: TO, body: "bounced" }, null);
    await env.flush();
    const error = { type: "cancel", condition: "service-unavailable" };
    await env.db.prisma.$transaction(async (tx) => {
      assert.equal(await env.messages.markDelivered(tx, a.id, delivered.id, TO), "marked");
      assert.equal(await env.messages.markFailed(tx, a.id, delivered.id, TO, error), "none", "delivered is final");
      assert.equal(await env.messages.markFailed(tx, a.id, bounced.id, TO, error), "marked", "sent, then bounced: failed");
      assert.equal(await env.messages.markFailed(tx, a.id, bounced.id, TO, error), "none", "failed once");
    });
    const view = await messaging.get(a, delivered.id);
    assert.equal(view.status, "delivered");
    assert.equal(view.error, undefined);
    assert.equal(await status(a, bounced.id), "failed");
  });

  it("a receipt or bounce naming another account's message marks nothing and tells so (the account may be cached under an id that is gone)", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    const ours = await messaging.send(a, null, { to: TO, body: "romeo's" }, null);
    await env.flush();
    const error = { type: "cancel", condition: "item-not-found" };
    await env.db.prisma.$transaction(async (tx) => {
      assert.equal(await env.messages.markDelivered(tx, b.id, ours.id, TO), "another");
      assert.equal(await env.messages.markFailed(tx, b.id, ours.id, TO, error), "another");
      assert.equal(await env.messages.markDelivered(tx, b.id, ours.id, "nurse@example.net"), "none", "to another peer: no such message");
      assert.equal(await env.messages.markDelivered(tx, b.id, randomUUID(), TO), "none", "no such message");
    });
    assert.equal(await status(a, ours.id), "sent", "not marked");
  });

  describe("refusals write nothing and store nothing", () => {
    const refused = async (a: TestAccount, m: SendMessage, code: Parameters<typeof appError>[0]) => {
      await assert.rejects(messaging.send(a, null, m, null), appError(code));
      await env.flush();
      assert.deepEqual(env.out.sent, []);
      assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 0);
    };

    it("an invalid to: invalid-jid", async () => {
      const a = await env.account("romeo");
      for (const to of ["@example.net", "juliet@", "a@b@c", ""]) await refused(a, { to, body: "x" }, "invalid-jid");
    });

    it("no body, subject or state: validation-failed", async () => {
      const a = await env.account("romeo");
      await refused(a, { to: TO, thread: "t" }, "validation-failed");
    });

    it("over maxStanzaBytes: payload-too-large; just under is accepted", async () => {
      const a = await env.account("romeo");
      env.out.maxStanzaBytes = 4096;
      await refused(a, { to: TO, body: "x".repeat(5000) }, "payload-too-large");
      const ok = await messaging.send(a, null, { to: TO, body: "x".repeat(3500) }, null);
      await env.flush();
      assert.equal(env.out.sent.length, 1);
      assert.ok(env.out.byteLength(env.out.sent[0]!) <= 4096);
      assert.equal(await status(a, ok.id), "sent");
    });
  });

  it("with the link down messages stay queued; once it is back a kick sends them in seq order", async () => {
    const a = await env.account("romeo");
    env.out.online = false;
    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = await messaging.send(a, "phone", { to: i % 2 ? TO : "nurse@example.net", body: `m${i}` }, null);
      assert.equal(r.status, "queued");
      ids.push(r.id);
    }
    await kickWritesNothing();
    assert.equal(env.out.confirmCalls, 0);
    assert.deepEqual(await queuedIds(), ids, "nothing drains while the link is down");

    env.out.online = true;
    await env.flush();
    assert.deepEqual(
      env.out.sent.map((s) => wire(s)).map((s) => [s.id, s.to, s.body]),
      ids.map((id, i) => [id, i % 2 === 0 ? TO : "nurse@example.net", `m${i + 1}`]),
    );
    assert.equal(env.out.writes, 1, "one batch, one write");
    for (const id of ids) assert.equal(await status(a, id), "sent");
    env.out.reset();
    await kickWritesNothing();
  });

  it("a queued message that a receipt or an error reached first, or whose account is gone, leaves the queue unsent; the ones around it go out", async () => {
    const a = await env.account("romeo");
    const gone = await env.account("gone");
    env.out.online = false;
    const first = await messaging.send(a, null, { to: TO, body: "first" }, null);
    const delivered = await messaging.send(a, null, { to: TO, body: "delivered" }, null);
    const failed = await messaging.send(a, null, { to: TO, body: "failed" }, null);
    await messaging.send(gone, null, { to: TO, body: "orphan" }, null);
    const last = await messaging.send(a, null, { to: TO, body: "last" }, null);
    await env.db.prisma.$transaction(async (tx) => {
      assert.equal(await env.messages.markDelivered(tx, a.id, delivered.id, TO), "marked");
      assert.equal(await env.messages.markFailed(tx, a.id, failed.id, TO, { type: "cancel", condition: "item-not-found" }), "marked");
    });
    await env.db.pool.query("DELETE FROM account WHERE id = $1", [gone.id]);
    const queue = async () => (await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message_queue")).rows[0]!.n;
    assert.equal(await queue(), 5, "all five wait for the link");

    env.out.online = true;
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => wire(s).id), [first.id, last.id]);
    assert.equal(await queue(), 0);
    assert.deepEqual([await status(a, first.id), await status(a, delivered.id), await status(a, failed.id), await status(a, last.id)], ["sent", "delivered", "failed", "sent"]);
  });

  it("the drain marks a queued message the server would refuse as failed, and sends the ones around it", async () => {
    const a = await env.account("romeo");
    env.out.online = false;
    const small1 = await messaging.send(a, null, { to: TO, body: "before" }, null);
    const big = await messaging.send(a, null, { to: TO, body: "x".repeat(3000) }, null); // fits the limit it was accepted under
    const small2 = await messaging.send(a, null, { to: TO, body: "after" }, null);
    env.out.online = true;
    env.out.maxStanzaBytes = 2000; // ...but not the server's limit now
    await env.flush();
    assert.deepEqual(
      env.out.sent.map((s) => wire(s).id),
      [small1.id, small2.id],
    );
    assert.deepEqual(
      env.out.refused.map((s) => wire(s).id),
      [big.id],
    );
    const failed = await messaging.get(a, big.id);
    assert.equal(failed.status, "failed");
    assert.deepEqual(failed.error, { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" });
    assert.equal(await status(a, small1.id), "sent");
    assert.equal(await status(a, small2.id), "sent");
    // The account hears of the failure as of any other (API.md: delivery failures are events).
    assert.deepEqual(
      (await env.events(a.id)).filter((e) => e.type === "message-status").map((e) => e.data),
      [{ id: big.id, status: "failed", error: failed.error }],
    );
  });

  it("a fresh message the port refuses is marked failed, never sent", async () => {
    // Accepted under one limit, drained under a smaller one (the server's limit was lowered, or an
    // older release accepted it): the drain must fail it, not count it sent.
    const a = await env.account("romeo");
    env.out.online = false;
    const res = await messaging.send(a, null, { to: TO, body: "&".repeat(480) }, null); // accepted: well under the limit at send time
    assert.equal(res.status, "queued");
    env.out.maxStanzaBytes = 600; // the fake port measures JSON: about 700 bytes for this message
    env.out.online = true;
    await env.flush();
    assert.deepEqual(env.out.sent, [], "the port refused the stanza: it was never written");
    assert.deepEqual(
      env.out.refused.map((s) => wire(s).id),
      [res.id],
    );
    const view = await messaging.get(a, res.id);
    assert.equal(view.status, "failed", "a stanza that was never written is not sent");
    assert.deepEqual(view.error, { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" });
  });

  it("another account's message reads as message-not-found", async () => {
    const a = await env.account("romeo");
    const b = await env.account("tybalt");
    const res = await messaging.send(a, null, { to: TO, body: "private" }, null);
    await assert.rejects(messaging.get(b, res.id), appError("message-not-found"));
    await env.flush();
    assert.equal(await status(a, res.id), "sent");
  });

  describe("the lease fence", () => {
    it("a claim fenced by a lease nobody holds takes nothing: the rows stay queued until the lease's holder drains them", async () => {
      const a = await env.account("romeo");
      // The unfenced delivery of the other tests must not drain these rows: its link is down.
      env.out.online = false;
      const port = new FakeOutbound();
      const fenced = new Delivery(env.db, port, { holder: true, exclusive: true, fence: () => ({ key: [1, 2], pid: -1 }), drainIdleLimitMs: 0 }, env.log, env.metrics);
      await fenced.transaction((_tx, send) => send(a.id, [subscription(a.jid, TO, "subscribe")]));
      const m = await messaging.send(a, null, { to: TO, body: "fenced" }, null);
      fenced.kick();
      // Its drain claims (a stop before that would end the drain before any claim).
      await waitFor(async () => fenced.stats.drainSteps > 0, "the fenced drain's claim");
      await fenced.idle();
      await fenced.stop();
      assert.equal(port.writes, 0, "nothing claimed, nothing written");
      assert.equal(port.confirmCalls, 0);
      assert.deepEqual(
        (await env.outbox()).map((r) => r.stanza),
        [subscription(a.jid, TO, "subscribe")],
      );
      assert.deepEqual(await queuedIds(), [m.id]);

      // The same claim under a lease that is held (an advisory lock on (1, 2) of a live backend) takes them.
      const holder = new pg.Client({ connectionString: env.tdb.url });
      await holder.connect();
      try {
        await holder.query("SELECT pg_advisory_lock(1, 2)");
        const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
        const leased = new Delivery(env.db, port, { holder: true, exclusive: true, fence: () => ({ key: [1, 2], pid }), drainIdleLimitMs: 0 }, env.log, env.metrics);
        leased.kick();
        await waitFor(async () => (await queuedIds()).length === 0 && (await env.outbox()).length === 0, "the lease holder's drain");
        await leased.stop();
        assert.deepEqual(port.sent.map(tag), [`subscribe ${a.jid} ${TO}`, `message ${m.id}`]);
        assert.equal(await status(a, m.id), "sent");
      } finally {
        await holder.end();
        env.out.online = true;
      }
    });
  });

  it("an idempotent retry of a message that failed does not report it sent", async () => {
      const a = await env.account("romeo");
      env.out.online = false;
      const first = await messaging.send(a, null, { to: TO, body: "y".repeat(3000) }, "key-failed");
      env.out.online = true;
      env.out.maxStanzaBytes = 2000; // the server's limit at drain time: refused, so failed
      await env.flush();
      assert.equal(await status(a, first.id), "failed");
      env.out.maxStanzaBytes = 256 * 1024;
      const again = await messaging.send(a, null, { to: TO, body: "y".repeat(3000) }, "key-failed");
      assert.equal(again.replayed, true);
      assert.deepEqual(again, { ...first, replayed: true }, "the first answer: queued, and never sent");
  });
});
