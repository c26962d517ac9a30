// Inbound stanzas processed as one batch (src/services/inbound.ts): messages' rows and events are
// written in a few statements per batch, so these check what that must not change: the log in
// arrival order across messages and subscription stanzas, per-account sequence numbers without
// gaps, full-JID routing (RFC 6121 §8.5.3), and one stanza the database refuses not losing the rest.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import { appendEvents, type NewEvent } from "../../src/db/events.js";
import { CHANNELS } from "../../src/db/notify.js";
import { event } from "../../src/domain/events.js";
import type { Delivery } from "../../src/services/delivery.js";
import { Inbound } from "../../src/services/inbound.js";
import { Presence } from "../../src/services/presence.js";
import { setup, teardown, type Env } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";

/** A chat message from Juliet whose id is its body. */
const message = (to: string, id: string, extra: Partial<InboundMessage> = {}): InboundMessage => inboundMessage(JULIET, to, { id, body: id, ...extra });

const subscribe = (to: string): InboundPresence => inboundPresence(JULIET, to, "subscribe", { id: "p1" });

describe("Inbound batches", () => {
  let env: Env;
  let inbound: Inbound;
  let presence: Presence;
  /** Transactions the inbound service ran: one per batch, plus one per stanza if the batch failed. */
  let transactions = 0;
  /** Of those, the ones on a raw pg client. */
  let raw = 0;
  /** Statements the inbound service ran on the pool itself, outside any transaction (autocommit). */
  let alone = 0;

  before(async () => {
    env = await setup();
    const counted: Pick<Delivery, "transaction" | "sqlTransaction"> = {
      sqlTransaction: (fn) => {
        transactions++;
        raw++;
        return env.delivery.sqlTransaction(fn);
      },
      transaction: (fn) => {
        transactions++;
        return env.delivery.transaction(fn);
      },
    };
    const pool = new Proxy(env.db.pool, {
      get: (target, prop, receiver) => {
        if (prop !== "query") return Reflect.get(target, prop, receiver) as unknown;
        return (...args: Parameters<typeof target.query>) => {
          alone++;
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    inbound = new Inbound({ ...env.db, pool }, env.accountStore, { messages: env.messages, sessions: env.sessions }, counted, env.out, env.domain, env.log);
    presence = new Presence(env.db, env.sessions, env.delivery, env.domain, { graceSeconds: 60, heartbeatMs: 60_000 }, env.log);
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** Pushed synchronously, so they make one batch (one transaction). */
  const feed = async (...stanzas: (InboundMessage | InboundPresence)[]) => {
    for (const s of stanzas) inbound.receive(s);
    await inbound.idle();
  };
  const warned = () => env.log.entries.filter((e) => e.m.startsWith("inbound stanza could not be stored")).length;
  const head = async (accountId: number) => (await env.events(accountId)).at(-1)?.seq ?? 0;
  /** An event as [seq, type, what it is about, resource]. */
  const logged = async (accountId: number, after: number) =>
    (await env.events(accountId, after)).map((e) => {
      const d = e.data as { body?: string | null; state?: string | null; type?: string };
      return [e.seq, e.type, e.type === "message" ? (d.body ?? `state:${d.state}`) : d.type, e.resource];
    });
  const bodies = async (accountId: number) =>
    (await env.db.prisma.message.findMany({ where: { accountId, direction: "in" }, orderBy: { seq: "asc" }, select: { body: true } })).map((r) => r.body);

  it("messages to two accounts and a subscription request: each log in arrival order, sequence numbers contiguous", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
    // A session that went unavailable and has no stream open: its resource is no longer there.
    await presence.set(a.ref, "left", { type: "available", show: null, status: null, priority: 0 });
    await presence.set(a.ref, "left", { type: "unavailable", show: null, status: null, priority: 0 });
    await env.flush();
    const [ha, hb] = [await head(a.id), await head(b.id)];
    const before = transactions;

    await feed(
      message(a.jid, "a1"),
      message(b.jid, "b1"),
      message(`${a.jid}/phone`, "a2"),
      subscribe(a.jid),
      message(b.jid, "b2"),
      message(`${a.jid}/phone`, "a3"),
      message(a.jid, "state", { body: null, state: "composing" }),
      message(`${a.jid}/gone`, "a4"), // §8.5.3.2.1: no such session, so to every session
      subscribe(b.jid),
      message(b.jid, "b3"),
      message(`${a.jid}/left`, "a5"), // §8.5.3.2.1: neither available nor connected, so to every session too
    );

    assert.deepEqual(await logged(a.id, ha), [
      [ha + 1, "message", "a1", null],
      [ha + 2, "message", "a2", "phone"],
      [ha + 3, "subscription", "subscribe", null],
      [ha + 4, "message", "a3", "phone"],
      [ha + 5, "message", "state:composing", null],
      [ha + 6, "message", "a4", null],
      [ha + 7, "message", "a5", null],
    ]);
    assert.deepEqual(await logged(b.id, hb), [
      [hb + 1, "message", "b1", null],
      [hb + 2, "message", "b2", null],
      [hb + 3, "subscription", "subscribe", null],
      [hb + 4, "message", "b3", null],
    ]);
    const heads = await env.db.prisma.account.findMany({ where: { id: { in: [a.id, b.id] } }, orderBy: { id: "asc" }, select: { lastSeq: true } });
    assert.deepEqual(
      heads.map((h) => Number(h.lastSeq)),
      [ha + 7, hb + 4],
      "each account's head is its last event",
    );
    assert.deepEqual(await bodies(a.id), ["a1", "a2", "a3", "a4", "a5"], "stored messages in arrival order (a chat state alone is not stored)");
    assert.deepEqual(await bodies(b.id), ["b1", "b2", "b3"]);
    assert.equal(transactions - before, 1, "one transaction: the batch did not fail and get retried stanza by stanza");
    const stored = await env.db.prisma.message.findMany({ where: { accountId: a.id, direction: "in" }, orderBy: { seq: "asc" }, select: { id: true } });
    const ids = (await env.events(a.id, ha)).filter((e) => e.type === "message" && (e.data as { body: unknown }).body !== null).map((e) => (e.data as { id: string }).id);
    assert.deepEqual(ids, stored.map((r) => r.id), "each message event names its stored row");
  });

  it("a stanza the database refuses is bounced on its own; the rest of its batch is stored, in order", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    const [ha, hb] = [await head(a.id), await head(b.id)];
    const [warnedBefore, before] = [warned(), transactions];
    // PostgreSQL's jsonb (the event log's data) cannot hold U+0000: this stanza cannot be stored.
    await feed(message(a.jid, "one"), message(b.jid, "b1"), message(a.jid, "bad", { body: "bad\u0000" }), subscribe(a.jid), message(a.jid, "three"));

    assert.deepEqual(await logged(a.id, ha), [
      [ha + 1, "message", "one", null],
      [ha + 2, "subscription", "subscribe", null],
      [ha + 3, "message", "three", null],
    ]);
    assert.deepEqual(await logged(b.id, hb), [[hb + 1, "message", "b1", null]]);
    assert.deepEqual(await bodies(a.id), ["one", "three"]);
    await env.flush();
    assert.deepEqual(
      env.out.sent.filter((s) => s.kind === "error"),
      [{ kind: "error", from: a.jid, replyTo: { name: "message", from: JULIET, id: "bad" }, code: "database-unavailable", text: "temporarily unable to store this stanza; retry later" }],
    );
    assert.equal(warned(), warnedBefore + 1);
    assert.equal(transactions - before, 1 + 5, "the batch, then each of its stanzas alone");
  });

  it("plain messages: one statement per batch and no transaction around it; other stanzas at most 50 per transaction", async () => {
    const a = await env.account("romeo");
    const h = await head(a.id);
    const plain = (i: number) => message(a.jid, `m${i}`);
    const presence = (i: number): InboundPresence => ({ ...subscribe(a.jid), id: `p${i}`, type: "unavailable" }); // not a contact: ignored
    let [before, aloneBefore] = [transactions, alone];
    await feed(...Array.from({ length: 200 }, (_, i) => plain(i)));
    assert.equal(transactions - before, 0, "plain messages need no transaction");
    assert.equal(alone - aloneBefore, 1, "their rows and events: one statement");
    assert.deepEqual((await bodies(a.id)).length, 200);
    // A plain message that needs a reply (to an account that does not exist: a bounce recorded
    // with it) takes a transaction, as before; nothing of the batch was written twice.
    [before, aloneBefore] = [transactions, alone];
    await feed(plain(500), message("nobody@" + a.jid.split("@")[1], "x"), plain(501));
    assert.equal(transactions - before, 1, "a reply to record: the batch in a transaction");
    assert.equal(alone - aloneBefore, 0);
    assert.deepEqual((await bodies(a.id)).slice(-2), ["m500", "m501"]);
    [before, aloneBefore] = [transactions, alone];
    const rawBefore = raw;
    await feed(...Array.from({ length: 60 }, (_, i) => [plain(1000 + i), presence(i)]).flat());
    assert.equal(transactions - before, 2, "120 stanzas, 60 of them presence: 50 + 10");
    assert.equal(raw - rawBefore, 0, "presence needs Prisma's");
    assert.equal(alone - aloneBefore, 0);
    assert.deepEqual(
      (await env.events(a.id, h)).map((e) => e.seq),
      Array.from({ length: 262 }, (_, i) => h + 1 + i),
      "every message logged, in order, no gaps",
    );
  });

  it("appendEvents: one call for several accounts numbers each account's events in order and NOTIFYs each account once, at commit; an account gone fails the call", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    const [ha, hb] = [await head(a.id), await head(b.id)];
    const sub = (accountId: number, jid: string): NewEvent => ({ accountId, ...event("subscription", { jid, type: "subscribe" }) });
    const listener = await env.db.pool.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => void (n.channel === CHANNELS.events && heard.push(n.payload ?? "")));
    try {
      await listener.query(`LISTEN ${CHANNELS.events}`);
      const seqs = await env.db.transaction(async (tx) => {
        const s = await appendEvents(tx, [sub(a.id, "x@a"), sub(b.id, "y@b"), sub(a.id, "z@a")]);
        await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(heard, [], "nothing is delivered before commit");
        return s;
      });
      assert.deepEqual(seqs, [ha + 1, hb + 1, ha + 2]);
      await listener.query("SELECT 1"); // notifications sent before this answer have arrived
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(heard.sort(), [`${a.id}:${ha + 2}`, `${b.id}:${hb + 1}`].sort(), "each account once, with its log's new head");

      heard.length = 0;
      await assert.rejects(
        env.db.transaction((tx) => appendEvents(tx, [sub(a.id, "w@a"), sub(987654321, "gone")])),
        /account 987654321 vanished while appending an event/,
      );
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(heard, [], "rolled back: no notification");
      assert.deepEqual(
        (await env.events(a.id, ha)).map((e) => e.seq),
        [ha + 1, ha + 2],
        "rolled back: nothing appended",
      );
    } finally {
      await listener.query(`UNLISTEN ${CHANNELS.events}`).catch(() => undefined);
      listener.release();
    }
  });
});
