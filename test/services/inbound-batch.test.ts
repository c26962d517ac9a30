// Inbound stanzas processed as one batch (src/services/inbound.ts): messages' rows and events are
// written in a few statements per batch, so these check what that must not change: the log in
// arrival order across messages and subscription stanzas, per-account sequence numbers without
// gaps, full-JID routing (RFC 6121 §8.5.3), and one stanza the database refuses not losing the rest.
import { randomBytes } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import type { InboundMessage, InboundPresence, InboundStanza } from "../../src/domain/inbound.js";
import { autocommit } from "../../src/db/client.js";
import { AccountVanished } from "../../src/db/errors.js";
import { appendEvents, type NewEvent } from "../../src/db/events.js";
import { CHANNELS } from "../../src/db/notify.js";
import { event } from "../../src/domain/events.js";
import type { Inbound } from "../../src/services/inbound.js";
import { Presence } from "../../src/services/presence.js";
import { parseStanza } from "../../src/xmpp/parse.js";
import { countedInbound, feedBatch, setup, teardown, type Env, type InboundCounts } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";

/** A chat message from Juliet whose id is its body. */
const message = (to: string, id: string, extra: Partial<InboundMessage> = {}): InboundMessage => inboundMessage(JULIET, to, { id, body: id, ...extra });

const subscribe = (to: string): InboundPresence => inboundPresence(JULIET, to, "subscribe", { id: "p1" });

describe("Inbound batches", () => {
  let env: Env;
  let inbound: Inbound;
  let presence: Presence;
  /** What the inbound service ran (setup.ts countedInbound). */
  let counts: InboundCounts;

  before(async () => {
    env = await setup();
    ({ inbound, counts } = countedInbound(env));
    presence = env.presence({ graceSeconds: 60 });
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** One batch (setup.ts feedBatch). */
  const feed = (...stanzas: (InboundMessage | InboundPresence)[]) => feedBatch(inbound, ...stanzas);
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
    const before = counts.transactions;

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
    assert.equal(counts.transactions - before, 1, "one transaction: the batch did not fail and get retried stanza by stanza");
    const stored = await env.db.prisma.message.findMany({ where: { accountId: a.id, direction: "in" }, orderBy: { seq: "asc" }, select: { id: true } });
    const ids = (await env.events(a.id, ha)).filter((e) => e.type === "message" && (e.data as { body: unknown }).body !== null).map((e) => (e.data as { id: string }).id);
    assert.deepEqual(ids, stored.map((r) => r.id), "each message event names its stored row");
  });

  it("a stanza the database refuses is bounced on its own; the rest of its batch is stored, in order", async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    const [ha, hb] = [await head(a.id), await head(b.id)];
    const [warnedBefore, before] = [warned(), counts.transactions];
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
    assert.equal(counts.transactions - before, 1 + 5, "the batch, then each of its stanzas alone");
  });

  /** Random hex: PostgreSQL cannot compress it below its btree entry limit (~2,700 bytes) as it would a repeated character. */
  const randomId = (chars: number) => randomBytes(Math.ceil(chars / 2)).toString("hex").slice(0, chars);
  const stored = async (accountId: number) =>
    (await env.db.prisma.message.findMany({ where: { accountId, direction: "in" }, orderBy: { seq: "asc" }, select: { body: true, stanzaId: true, originId: true } })).map((r) => [r.body, r.stanzaId, r.originId]);

  it("a contact's 3,000-character stanza id or origin-id loses nothing: every message of the batch stored, in one statement; the id not stored but still echoed by the receipt", async () => {
    const a = await env.account("romeo");
    const h = await head(a.id);
    const [long, longOrigin, edge] = [randomId(3200), randomId(3200), randomId(256)];
    const [warnedBefore, before, aloneBefore] = [warned(), counts.transactions, counts.alone];
    await feed(
      message(a.jid, "one"),
      message(a.jid, long, { body: "long id", receiptRequested: true }),
      message(a.jid, "o2", { body: "long origin-id", originId: longOrigin }),
      message(a.jid, edge, { body: "256 characters" }),
      message(a.jid, "three"),
    );
    assert.deepEqual(await stored(a.id), [
      ["one", "one", null],
      ["long id", null, null], // nothing can name it by its id (src/db/inbound-writes.ts), but it is there
      ["long origin-id", "o2", null],
      ["256 characters", edge, null],
      ["three", "three", null],
    ]);
    const events = await env.events(a.id, h);
    assert.deepEqual(
      events.map((e) => (e.data as { body: string }).body),
      ["one", "long id", "long origin-id", "256 characters", "three"],
    );
    const e = events[1]!;
    assert.equal((e.data as { stanzaId: string }).stanzaId, long, "the event shows the id as received");
    assert.deepEqual([e.receiptTo, e.receiptId], [JULIET, long], "the XEP-0184 receipt echoes the stanza's own id (src/services/events.ts), not the stored column");
    assert.equal(counts.transactions - before, 0, "no retry stanza by stanza");
    assert.equal(counts.alone - aloneBefore, 1, "the batch's one statement");
    assert.equal(warned(), warnedBefore);
    await env.flush();
    assert.deepEqual(env.out.sent, [], "no wait error: nothing was refused");
  });

  it("a room's 3,000-character stanza id: the group message is stored and logged, and so is the rest of its batch", async () => {
    const a = await env.account("romeo");
    const room = "piazza@conference.example.net";
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [a.id, room]);
    const h = await head(a.id);
    const long = randomId(3200);
    const group = (id: string, body: string) => inboundMessage(`${room}/mercutio`, `${a.jid}/rooms`, { type: "groupchat", id, body });
    const [warnedBefore, before, aloneBefore] = [warned(), counts.transactions, counts.alone];
    await feed(message(a.jid, "one"), group("g1", "first"), group(long, "long id"), message(a.jid, "three"));
    assert.deepEqual(await stored(a.id), [
      ["one", "one", null],
      ["first", "g1", null],
      ["long id", null, null],
      ["three", "three", null],
    ]);
    assert.deepEqual(
      (await env.events(a.id, h)).map((e) => [(e.data as { body: string }).body, (e.data as { stanzaId: string }).stanzaId, (e.data as { room?: string }).room ?? null]),
      [
        ["one", "one", null],
        ["first", "g1", room],
        ["long id", long, room],
        ["three", "three", null],
      ],
    );
    assert.equal(counts.transactions - before, 0, "plain group messages need no transaction: not retried stanza by stanza either");
    assert.equal(counts.alone - aloneBefore, 2, "the room messages' facts, then the batch's writes");
    assert.equal(warned(), warnedBefore);
  });

  it("a room renaming an occupant to a 3,000-character nick (XEP-0045 §7.6.2, no resourcepart, RFC 7622 §3.1) fails nothing: the occupant leaves, the batch is stored", async () => {
    const a = await env.account("romeo");
    const room = "piazza@conference.example.net";
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [a.id, room]);
    await env.db.pool.query("INSERT INTO room_occupant (account_id, room, nick, role, affiliation) VALUES ($1, $2, 'mercutio', 'participant', 'none')", [a.id, room]);
    const h = await head(a.id);
    const MUC_USER = "http://jabber.org/protocol/muc#user";
    // As the XMPP adapter reads it off the wire: the new nick is the item's attribute, unchecked until parsed.
    const renamed = parseStanza(
      xml("presence", { from: `${room}/mercutio`, to: `${a.jid}/rooms`, type: "unavailable" }, xml("x", { xmlns: MUC_USER }, xml("item", { nick: randomId(3200), role: "participant", affiliation: "none" }), xml("status", { code: "303" }))),
    ) as InboundStanza;
    const [warnedBefore, before] = [warned(), counts.transactions];
    await feed(message(a.jid, "one"), renamed, message(a.jid, "three"));
    assert.deepEqual(await logged(a.id, h), [
      [h + 1, "message", "one", null],
      [h + 2, "room", undefined, null],
      [h + 3, "message", "three", null],
    ]);
    assert.deepEqual((await env.events(a.id, h))[1]!.data, { room, kind: "occupant-left", nick: "mercutio" });
    const { rows } = await env.db.pool.query("SELECT nick FROM room_occupant WHERE account_id = $1", [a.id]);
    assert.deepEqual(rows, []);
    assert.equal(counts.transactions - before, 1, "one transaction, not retried stanza by stanza");
    assert.equal(warned(), warnedBefore);
  });

  it("plain messages: one statement per batch and no transaction around it; other stanzas at most 50 per transaction", async () => {
    const a = await env.account("romeo");
    const h = await head(a.id);
    const plain = (i: number) => message(a.jid, `m${i}`);
    const presence = (i: number): InboundPresence => ({ ...subscribe(a.jid), id: `p${i}`, type: "unavailable" }); // not a contact: ignored
    let [before, aloneBefore] = [counts.transactions, counts.alone];
    await feed(...Array.from({ length: 200 }, (_, i) => plain(i)));
    assert.equal(counts.transactions - before, 0, "plain messages need no transaction");
    assert.equal(counts.alone - aloneBefore, 1, "their rows and events: one statement");
    assert.deepEqual((await bodies(a.id)).length, 200);
    // A plain message that needs a reply (to an account that does not exist: a bounce recorded
    // with it) takes a transaction, as before; nothing of the batch was written twice.
    [before, aloneBefore] = [counts.transactions, counts.alone];
    await feed(plain(500), message("nobody@" + a.jid.split("@")[1], "x"), plain(501));
    assert.equal(counts.transactions - before, 1, "a reply to record: the batch in a transaction");
    assert.equal(counts.alone - aloneBefore, 0);
    assert.deepEqual((await bodies(a.id)).slice(-2), ["m500", "m501"]);
    [before, aloneBefore] = [counts.transactions, counts.alone];
    const rawBefore = counts.raw;
    await feed(...Array.from({ length: 60 }, (_, i) => [plain(1000 + i), presence(i)]).flat());
    assert.equal(counts.transactions - before, 2, "120 stanzas, 60 of them presence: 50 + 10");
    assert.equal(counts.raw - rawBefore, 0, "presence needs Prisma's");
    assert.equal(counts.alone - aloneBefore, 0);
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
        (err: unknown) => err instanceof AccountVanished && /vanished while appending an event/.test(err.message),
      );
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(heard, [], "rolled back: no notification");
      assert.deepEqual(
        (await env.events(a.id, ha)).map((e) => e.seq),
        [ha + 1, ha + 2],
        "rolled back: nothing appended",
      );

      // Alone (autocommit, as the inbound hot path writes): the statement fails as a whole, so the
      // other account's events are not committed before the error (a retry would append them again).
      await assert.rejects(appendEvents(autocommit(env.db.pool), [sub(a.id, "v@a"), sub(987654321, "gone")]), (err: unknown) => err instanceof AccountVanished && err.accountId === 987654321);
      assert.deepEqual((await env.events(a.id, ha)).map((e) => e.seq), [ha + 1, ha + 2], "alone: nothing appended");
    } finally {
      await listener.query(`UNLISTEN ${CHANNELS.events}`).catch(() => undefined);
      listener.release();
    }
  });
});
