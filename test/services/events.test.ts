// Following an account's event log (src/services/events.ts) against a real PostgreSQL (with
// LISTEN/NOTIFY) and a fake outbound port: JSON pages after a cursor, resync when the cursor is
// older than what is kept, the stream cap, live followers, and XEP-0184 receipts answered exactly
// once however many streams wrote the event (recorded in the outbox, then drained to the port).
// Open sessions record what they delivered at the shared heartbeat (feed.heartbeat()) and at close.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { autocommit } from "../../src/db/client.js";
import { EventNotifier } from "../../src/db/event-notifier.js";
import { appendEvents, type NewEvent } from "../../src/db/events.js";
import { Blocklists } from "../../src/db/blocklist.js";
import { storeInbound } from "../../src/db/inbound-writes.js";
import { Notifications } from "../../src/db/notify.js";
import { event } from "../../src/domain/events.js";
import { Blocking } from "../../src/services/blocking.js";
import { EventFeed, type EventItem, type Follower } from "../../src/services/events.js";
import { StreamSlots } from "../../src/services/local-stream-slots.js";
import { appError, setup, teardown, waitFor, within, type Env, type TestAccount } from "./setup.js";

const MAX_STREAMS = 2;
/** EVENT_RETENTION: an hour, so only events a test back-dates fall out of the window. */
const RETENTION_MS = 3_600_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A small, recognisable event: a subscription request from `n@example.net`. */
const sub = (a: TestAccount, n: string, extra: Partial<NewEvent> = {}): NewEvent => ({ accountId: a.id, ...event("subscription", { jid: `${n}@example.net`, type: "subscribe" }), ...extra }) as NewEvent;
const view = (items: EventItem[]) => items.map((i) => ({ id: i.id, event: i.event, data: i.data }));
const subView = (id: number, n: string) => ({ id, event: "subscription", data: { jid: `${n}@example.net`, type: "subscribe" } });
/** An inbound chat message from `from` that asked for a XEP-0184 receipt (stanza id `stanzaId`). */
const messageData = (a: TestAccount, from: string, stanzaId: string) => ({
  id: "6f1c2a55-7d0e-4c67-9a43-0d3b9a7e2f10",
  from,
  to: a.jid,
  type: "chat" as const,
  body: "ack me",
  subject: null,
  thread: null,
  lang: null,
  state: null,
  receiptRequested: true,
  stanzaId,
  createdAt: new Date().toISOString(),
});

/** Reads a follower's batches one at a time; next() resumes the stream (which then counts the last batch as delivered). */
class Reader {
  private readonly it: AsyncIterator<EventItem[]>;
  private pending: Promise<IteratorResult<EventItem[]>> | null = null;

  constructor(readonly follower: Follower) {
    this.it = follower[Symbol.asyncIterator]();
  }

  /** The next batch, failing fast if none comes. */
  async next(what = "a batch"): Promise<EventItem[]> {
    const r = await within(this.pending ?? this.it.next(), what);
    this.pending = null;
    assert.equal(r.done, false, "the stream ended");
    return r.value as EventItem[];
  }

  /** Lets the stream go on past the batch it last gave (it then waits for more), without waiting for one. */
  resume(): void {
    this.pending ??= this.it.next();
  }

  /** Closes the stream and waits for the iterator to finish. */
  async close(): Promise<void> {
    this.follower.close();
    const r = await within(this.pending ?? this.it.next(), "the stream to end");
    assert.equal(r.done, true);
  }
}

describe("EventFeed", () => {
  let env: Env;
  let notifications: Notifications;
  let feed: EventFeed;
  let notifier: EventNotifier;

  before(async () => {
    env = await setup();
    notifications = new Notifications(env.tdb.url, (m, err) => env.log.warn({ err: String(err ?? "") }, m));
    await notifications.start();
    notifier = new EventNotifier(notifications);
    feed = new EventFeed(env.db, env.sessions, notifier, env.delivery, new StreamSlots(MAX_STREAMS), env.domain, RETENTION_MS);
  });
  after(async () => {
    await notifications?.stop();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  const append = (events: NewEvent[]) => env.db.transaction((tx) => appendEvents(tx, events));
  /** What the SSE writer's shared timer does once per heartbeat interval: record open sessions' cursors (batched). */
  const heartbeat = () => feed.heartbeat();

  it("page() after a cursor returns exactly the later events", async () => {
    const a = await env.account("romeo");
    const [s1, s2, s3] = await append([sub(a, "one"), sub(a, "two"), sub(a, "three")]);
    assert.deepEqual([s1, s2, s3], [1, 2, 3]);
    const all = await feed.page(a, null, 100, null);
    assert.deepEqual(view(all.items), [subView(1, "one"), subView(2, "two"), subView(3, "three")]);
    assert.equal(all.nextSince, 3);
    const later = await feed.page(a, 1, 100, null);
    assert.deepEqual(view(later.items), [subView(2, "two"), subView(3, "three")]);
    assert.equal(later.nextSince, 3);
    const limited = await feed.page(a, 1, 1, null);
    assert.deepEqual(view(limited.items), [subView(2, "two")]);
    assert.equal(limited.nextSince, 2);
    assert.deepEqual(await feed.page(a, 3, 100, null), { items: [], nextSince: 3 }, "at the head: nothing, and the cursor stays");
    // Beyond the head: no position in this log (one that is gone: the account's, made again). A
    // resync from its start, then every event of it, and the next cursor is the head.
    const beyond = await feed.page(a, 999, 100, null);
    assert.deepEqual(
      beyond.items.map((e) => (e.event === "resync" ? `resync ${(e.data as { from: number }).from}` : e.id)),
      ["resync 0", 1, 2, 3],
    );
    assert.equal(beyond.nextSince, 3);
    await append([sub(a, "four")]);
    assert.deepEqual(view((await feed.page(a, beyond.nextSince, 100, null)).items), [subView(4, "four")]);
  });

  it("a page holds at most PAGE_BYTES of event data (but always its first event), and the next page goes on after it, skipping nothing", async () => {
    const a = await env.account("romeo");
    // 1.5 MB each: three fit under 4 MiB, a fourth would not; the last event alone is over it.
    const big = (n: string, mb = 1.5): NewEvent => ({ accountId: a.id, ...event("subscription", { jid: `${n}@example.net`, type: "subscribe", status: "x".repeat(mb * 1024 * 1024) }) }) as NewEvent;
    await append([big("one"), big("two"), big("three"), big("four"), big("five"), big("six"), big("huge", 5), sub(a, "small")]);
    const ids = (items: EventItem[]) => items.map((i) => i.id);
    const first = await feed.page(a, null, 100, null);
    assert.deepEqual(ids(first.items), [1, 2, 3]);
    assert.equal(first.nextSince, 3, "not the head: the page was cut by its size");
    assert.equal((first.items[2]!.data as { status: string }).status.length, 1.5 * 1024 * 1024, "whole events only");
    const second = await feed.page(a, first.nextSince, 100, null);
    assert.deepEqual(ids(second.items), [4, 5, 6]);
    const third = await feed.page(a, second.nextSince, 100, null);
    assert.deepEqual(ids(third.items), [7], "an event over the bound comes alone");
    const last = await feed.page(a, third.nextSince, 100, null);
    assert.deepEqual(view(last.items), [subView(8, "small")]);
    assert.equal(last.nextSince, 8);

    // A stream catching up reads on past a page cut by its size, without waiting for a new event.
    const r = new Reader(await feed.open(a, "phone", 0));
    const got: number[] = [];
    while (got.length < 8) {
      got.push(...ids(await r.next(`events after ${got.at(-1) ?? 0}`)));
      r.resume();
    }
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
    await r.close();
  });

  it("a joined stream whose consumer does not keep up reads on its own once more than 8 MiB of frames wait, however few events; it misses none", async () => {
    const a = await env.account("romeo");
    await append([sub(a, "first")]);
    const f = await feed.open(a, "phone", 1);
    assert.equal(f.isJoined, true, "at the head: it follows the account's reader");
    // Six events of 1.5 MiB (far fewer than the 1,000 a queue may hold), appended one at a time;
    // nobody takes them from the stream meanwhile.
    const big = (n: string): NewEvent => ({ accountId: a.id, ...event("subscription", { jid: `${n}@example.net`, type: "subscribe", status: "x".repeat(1.5 * 1024 * 1024) }) }) as NewEvent;
    for (const n of ["b1", "b2", "b3", "b4", "b5", "b6"]) await append([big(n)]);
    await waitFor(() => !f.isJoined, "the stream to read on its own");
    const r = new Reader(f);
    const got: number[] = [];
    while (got.length < 6) {
      got.push(...(await r.next(`events after ${got.at(-1) ?? 1}`)).map((i) => i.id));
      r.resume();
    }
    assert.deepEqual(got, [2, 3, 4, 5, 6, 7]);
    await r.close();
  });

  it("page() for a session leaves out events for other sessions", async () => {
    const a = await env.account("romeo");
    await append([sub(a, "all"), sub(a, "phone", { resource: "phone" }), sub(a, "laptop", { resource: "laptop" })]);
    assert.deepEqual(view((await feed.page(a, 0, 100, "phone")).items), [subView(1, "all"), subView(2, "phone")]);
    assert.deepEqual(view((await feed.page(a, 0, 100, null)).items).length, 3, "the account-wide view has them all");
  });

  it("a cursor older than the retained log gets a leading resync, then what is left", async () => {
    const a = await env.account("romeo");
    await append(["e1", "e2", "e3", "e4", "e5"].map((n) => sub(a, n)));
    await env.db.pool.query("DELETE FROM event WHERE account_id = $1 AND seq <= 3", [a.id]);

    const page = await feed.page(a, 1, 100, null);
    assert.deepEqual(view(page.items), [{ id: 3, event: "resync", data: { reason: "cursor older than the retained event log", from: 3 } }, subView(4, "e4"), subView(5, "e5")]);
    assert.equal(page.nextSince, 5);
    assert.deepEqual(view((await feed.page(a, 3, 100, null)).items), [subView(4, "e4"), subView(5, "e5")], "a cursor just before the oldest kept event is not stale");

    // Everything purged: a stale cursor resyncs to the head, a current one does not.
    await env.db.pool.query("DELETE FROM event WHERE account_id = $1", [a.id]);
    assert.deepEqual(view((await feed.page(a, 2, 100, null)).items), [{ id: 5, event: "resync", data: { reason: "cursor older than the retained event log", from: 5 } }]);
    assert.deepEqual(await feed.page(a, 5, 100, null), { items: [], nextSince: 5 });

    const f = await feed.open(a, "phone", 1);
    assert.deepEqual(f.resync && { id: f.resync.id, event: f.resync.event }, { id: 5, event: "resync" }, "a stream from a stale cursor starts with resync");
    f.close();
  });

  it(`open() beyond ${MAX_STREAMS} streams of one account: too-many-streams; closing one frees its slot`, async () => {
    const a = await env.account("romeo");
    const b = await env.account("mercutio");
    const streams = [await feed.open(a, "one", null), await feed.open(a, "two", null)];
    await assert.rejects(feed.open(a, "three", null), appError("too-many-streams"));
    await assert.rejects(feed.open(a, "one", null), appError("too-many-streams"), "the cap counts streams, not sessions");
    const other = await feed.open(b, "one", null); // per account
    streams[0]!.close();
    streams[0]!.close(); // idempotent: frees one slot only
    const again = await feed.open(a, "three", null);
    await assert.rejects(feed.open(a, "four", null), appError("too-many-streams"));
    for (const f of [streams[1]!, other, again]) f.close();
  });

  it("a session whose presence came before its first stream starts where a new one would: after what the other sessions got", async () => {
    const a = await env.account("presfirst");
    await append([sub(a, "e1"), sub(a, "e2"), sub(a, "e3")]);
    const web = new Reader(await feed.open(a, "web", 0));
    assert.deepEqual(view(await web.next("the replay on web")).map((e) => e.id), [1, 2, 3]);
    web.resume();
    await waitFor(async () => (await heartbeat(), await env.sessions.list(a.id)).find((s) => s.resource === "web")?.deliveredSeq === 3, "web's delivered cursor at 3");
    await web.close();
    // One session is made by its presence, then streams; another by its stream alone.
    await env.db.transaction((tx) => env.sessions.setPresence(tx, a.id, "phone", { available: true, show: null, status: null, priority: 0 }));
    const phone = new Reader(await feed.open(a, "phone", null));
    const tablet = new Reader(await feed.open(a, "tablet", null));
    const first = [phone.next("phone's first batch"), tablet.next("tablet's first batch")];
    await append([sub(a, "e4")]);
    for (const batch of first) assert.deepEqual(view(await batch), [subView(4, "e4")], "nothing replayed before the new event");
    await Promise.all([phone.close(), tablet.close()]);
  });

  it("a follower yields the events appended after it opened, and records them as delivered", async () => {
    const a = await env.account("romeo");
    await append([sub(a, "old")]);
    const r = new Reader(await feed.open(a, "phone", 1));
    assert.equal(r.follower.resync, null);

    const first = r.next("events appended after opening");
    await append([sub(a, "new1"), sub(a, "new2")]);
    assert.deepEqual(view(await first), [subView(2, "new1"), subView(3, "new2")]);

    r.resume();
    await waitFor(async () => (await heartbeat(), await env.sessions.list(a.id))[0]?.deliveredSeq === 3, "the session's delivered cursor to reach 3");
    await append([sub(a, "other", { resource: "laptop" }), sub(a, "new3")]);
    assert.deepEqual(view(await r.next("the next append")), [subView(5, "new3")], "another session's event is not on this stream");
    await r.close();

    // Reopened without a cursor, the session resumes after what it delivered.
    // (Both are recorded fire-and-forget, so a reopen must wait for them.)
    await waitFor(async () => {
      const [session] = await env.sessions.list(a.id);
      return session?.streams === 0 && session.deliveredSeq === 5;
    }, "the stream to be counted closed, with 5 delivered");
    const again = new Reader(await feed.open(a, "phone", null));
    const batch = again.next("events after the delivered cursor");
    await append([sub(a, "new4")]);
    assert.deepEqual(view(await batch), [subView(6, "new4")]);
    await again.close();
    assert.deepEqual(await env.outbox(), []);
    await env.flush();
    assert.deepEqual(env.out.sent, []);
  });

  it("what this instance appended is handed to its reader: taken as it is at the reader's position, else read", async () => {
    const a = await env.account("romeo");
    const reads = feed.stats.logReads;
    const r = new Reader(await feed.open(a, "phone", null));
    assert.equal(feed.stats.logReads, reads, "a stream that opens at the head reads nothing until the log grows");
    // As Inbound.storeAlone does: one statement that commits alone, its NOTIFY naming this instance.
    const store = (n: string) => storeInbound(autocommit(env.db.pool), [], [sub(a, n)], notifier.origin);
    const first = r.next("the first hand-over");
    notifier.appended(await store("one"));
    assert.deepEqual(view(await first), [subView(1, "one")]);
    assert.equal(feed.stats.logReads, reads, "taken as handed over");

    // Handed over out of order: the reader is not where the later one begins, so it reads the log.
    r.resume();
    const [two, three] = [await store("two"), await store("three")];
    notifier.appended(three);
    notifier.appended(two);
    const got: EventItem[] = [];
    while (got.length < 2) {
      got.push(...(await r.next("the log read")));
      r.resume();
    }
    assert.deepEqual(view(got), [subView(2, "two"), subView(3, "three")]);

    // Appended elsewhere (no hand-over): its NOTIFY has the reader read. Its NOTIFY comes after
    // those of the three above, which wake nothing: two reads for the out-of-order pair (the
    // second hand-over came while the first read was in flight), one for this.
    await append([sub(a, "four")]);
    assert.deepEqual(view(await r.next("the append from elsewhere")), [subView(4, "four")]);
    assert.equal(feed.stats.logReads - reads, 3);
    await r.close();
  });

  it("events older than EVENT_RETENTION are gone for readers before the purge removes them: resync, then the window", async () => {
    const a = await env.account("romeo");
    await append(["e1", "e2", "e3", "e4", "e5"].map((n) => sub(a, n)));
    // e1..e3 fell out of the window; nothing has purged them (the gateway's timer is not running here).
    await env.db.pool.query("UPDATE event SET created_at = created_at - interval '2 hours' WHERE account_id = $1 AND seq <= 3", [a.id]);
    const resync = (from: number) => ({ id: from, event: "resync", data: { reason: "cursor older than the retained event log", from } });

    const page = await feed.page(a, 1, 100, null);
    assert.deepEqual(view(page.items), [resync(3), subView(4, "e4"), subView(5, "e5")]);
    assert.equal(page.nextSince, 5);
    assert.deepEqual(view((await feed.page(a, 0, 1, null)).items), [resync(3)], "a page of one: the resync alone");
    assert.deepEqual(view((await feed.page(a, 3, 100, null)).items), [subView(4, "e4"), subView(5, "e5")], "a cursor just before the window: no resync, no gap");
    assert.deepEqual(view((await feed.page(a, 4, 100, null)).items), [subView(5, "e5")], "inside the window: no duplicate");
    assert.deepEqual(view((await feed.page(a, null, 100, null)).items), [subView(4, "e4"), subView(5, "e5")], "no cursor: the window, no resync");

    const stale = new Reader(await feed.open(a, "phone", 2));
    assert.deepEqual(stale.follower.resync && view([stale.follower.resync]), [resync(3)], "a stream from a stale cursor starts with resync");
    assert.deepEqual(view(await stale.next("the events in the window")), [subView(4, "e4"), subView(5, "e5")]);
    await stale.close();
    const current = new Reader(await feed.open(a, "laptop", 3));
    assert.equal(current.follower.resync, null);
    assert.deepEqual(view(await current.next("the events after the cursor")), [subView(4, "e4"), subView(5, "e5")]);
    await current.close();

    // The whole log out of the window: a stale cursor resyncs to the head and reads nothing; one at the head does not.
    await env.db.pool.query("UPDATE event SET created_at = created_at - interval '2 hours' WHERE account_id = $1", [a.id]);
    const gone = await feed.page(a, 2, 100, null);
    assert.deepEqual([view(gone.items), gone.nextSince], [[resync(5)], 5]);
    assert.deepEqual(await feed.page(a, 5, 100, null), { items: [], nextSince: 5 });
    assert.deepEqual(await feed.page(a, null, 100, null), { items: [], nextSince: 5 });
  });

  /** The contacts may see the account's presence (a subscription from): receipts go only to such senders (XEP-0184 §8). */
  const maySee = async (a: { id: number }, ...jids: string[]) => {
    for (const jid of jids) await env.db.pool.query("INSERT INTO roster_item (account_id, jid, subscription) VALUES ($1, $2, 'from')", [a.id, jid.split("/")[0]]);
  };

  it("page() answers the XEP-0184 receipts owed for the messages it returns, once (a HEAD's page answers none)", async () => {
    const a = await env.account("romeo");
    const juliet = "juliet@example.net/balcony";
    await maySee(a, juliet);
    const [seq] = await append([{ accountId: a.id, ...event("message", messageData(a, juliet, "r1")), receipt: { to: juliet, id: "r1" } }]);
    assert.deepEqual(view((await feed.page(a, null, 100, null, false)).items).map((e) => e.id), [seq]);
    await env.flush();
    assert.equal(env.out.sent.length, 0, "a page nobody reads owes nothing");
    assert.deepEqual(view((await feed.page(a, null, 100, null)).items).map((e) => e.id), [seq]);
    await env.flush();
    assert.equal(env.out.sent.length, 1, JSON.stringify(env.out.sent));
    const receipt = env.out.sent[0]!;
    assert.ok(receipt.kind === "receipt");
    assert.deepEqual(receipt, { kind: "receipt", from: a.jid, to: juliet, id: "r1", stanzaId: receipt.stanzaId, type: "chat" });
    // Read again (by a poller, then a stream): answered already.
    assert.deepEqual(view((await feed.page(a, 0, 100, null)).items).map((e) => e.id), [seq]);
    const r = new Reader(await feed.open(a, "phone", 0));
    assert.deepEqual(view(await r.next("the replay")).map((e) => e.id), [seq]);
    r.resume();
    await waitFor(async () => (await heartbeat(), await env.sessions.list(a.id)).find((s) => s.resource === "phone")?.deliveredSeq === seq, "the replay to be delivered");
    await env.flush();
    assert.equal(env.out.sent.length, 1, "no second receipt");
    await r.close();
  });

  it("answers a receipt owed to an occupant of one of the account's rooms (a private message, XEP-0045 §7.5) from its occupant JID, as the room takes it; to a JID in no room of its from its JID; none to a stranger (XEP-0184 §8)", async () => {
    const a = await env.account("romeo");
    const room = "piazza@conference.example.net";
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [a.id, room]);
    const [nurse, elsewhere, stranger] = [`${room}/nurse`, "lobby@conference.example.net/nurse", "iago@venice.example/x"];
    // An occupant of the account's room sees its presence there; the other JID by a subscription.
    await maySee(a, elsewhere);
    await append([
      { accountId: a.id, ...event("message", messageData(a, nurse, "n1")), receipt: { to: nurse, id: "n1" } },
      { accountId: a.id, ...event("message", messageData(a, elsewhere, "n2")), receipt: { to: elsewhere, id: "n2" } },
      { accountId: a.id, ...event("message", messageData(a, stranger, "s1")), receipt: { to: stranger, id: "s1" } },
    ]);
    await feed.page(a, null, 100, null);
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => (s.kind === "receipt" ? [s.from, s.to, s.id, s.type] : s.kind)), [
      [`${a.jid}/rooms`, nurse, "n1", "chat"],
      [a.jid, elsewhere, "n2", "chat"],
    ]);
    const settled = await env.db.prisma.event.findMany({ where: { accountId: a.id, receiptTo: { not: null } }, select: { receiptSent: true } });
    assert.deepEqual(settled.map((e) => e.receiptSent), [true, true, true], "the stranger's is settled unsent, not owed again");
  });

  it("answers no receipt owed to a JID the account blocked since the message came (XEP-0191 §3.3); others are answered", async () => {
    const a = await env.account("romeo");
    const blocking = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const guarded = new EventFeed(env.db, env.sessions, notifier, env.delivery, new StreamSlots(MAX_STREAMS), env.domain, RETENTION_MS, blocking);
    const tybalt = "tybalt@capulet.example/sword";
    const juliet = "juliet@example.net/balcony";
    await maySee(a, tybalt, juliet);
    await append([
      { accountId: a.id, ...event("message", messageData(a, tybalt, "t1")), receipt: { to: tybalt, id: "t1" } },
      { accountId: a.id, ...event("message", messageData(a, juliet, "j1")), receipt: { to: juliet, id: "j1" } },
    ]);
    await blocking.block(a.ref, "capulet.example");
    await env.flush();
    env.out.reset();
    assert.equal((await guarded.page(a, null, 100, null)).items.length, 2);
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => (s.kind === "receipt" ? `${s.to} ${s.id}` : s.kind)), [`${juliet} j1`], "juliet's only");
    const settled = await env.db.prisma.event.findMany({ where: { accountId: a.id, receiptTo: { not: null } }, select: { receiptSent: true } });
    assert.deepEqual(settled.map((e) => e.receiptSent), [true, true], "tybalt's is settled, not owed again");
  });

  it("answers a receipt owed to a JID the cached list blocks but another instance unblocked (its NOTIFY not heard here); one owed to a JID still blocked is settled unsent", async () => {
    // Two instances over one database: the feed's Blocking cached the list while both blocks were
    // there; `elsewhere` unblocked Juliet since, and its NOTIFY never reaches the feed's cache.
    const a = await env.account("romeo");
    const here = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const elsewhere = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const guarded = new EventFeed(env.db, env.sessions, notifier, env.delivery, new StreamSlots(MAX_STREAMS), env.domain, RETENTION_MS, here);
    const tybalt = "tybalt@capulet.example/sword";
    const juliet = "juliet@example.net/balcony";
    await maySee(a, tybalt, juliet);
    await append([
      { accountId: a.id, ...event("message", messageData(a, tybalt, "t1")), receipt: { to: tybalt, id: "t1" } },
      { accountId: a.id, ...event("message", messageData(a, juliet, "j1")), receipt: { to: juliet, id: "j1" } },
    ]);
    await elsewhere.block(a.ref, "capulet.example");
    await elsewhere.block(a.ref, "juliet@example.net");
    assert.equal(await here.blocksJid(a.id, juliet), true, "cached with both blocks");
    await elsewhere.unblock(a.ref, "juliet@example.net");
    assert.equal(await here.blocksJid(a.id, juliet), true, "the cache has not heard of the unblock");
    await env.flush();
    env.out.reset();
    assert.equal((await guarded.page(a, null, 100, null)).items.length, 2);
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => (s.kind === "receipt" ? `${s.to} ${s.id}` : s.kind)), [`${juliet} j1`], "juliet's, not tybalt's");
    const settled = await env.db.prisma.event.findMany({ where: { accountId: a.id, receiptTo: { not: null } }, select: { receiptSent: true } });
    assert.deepEqual(settled.map((e) => e.receiptSent), [true, true], "both settled");
    assert.equal(await here.blocksJid(a.id, juliet), false, "the stale list was forgotten");
  });

  it("reads the committed list once per JID the cached list blocks when a page owes it several receipts", async () => {
    const a = await env.account("romeo");
    // Reads in a transaction of the feed's, not the cache's own fills (those read through env.db.prisma).
    class Counting extends Blocklists {
      committed = 0;
      override list(tx: Parameters<Blocklists["list"]>[0], accountId: number): Promise<string[]> {
        if (tx !== env.db.prisma) this.committed++;
        return super.list(tx, accountId);
      }
    }
    const lists = new Counting(env.db.prisma);
    const here = new Blocking(env.db, lists, env.delivery);
    const guarded = new EventFeed(env.db, env.sessions, notifier, env.delivery, new StreamSlots(MAX_STREAMS), env.domain, RETENTION_MS, here);
    const tybalt = "tybalt@capulet.example/sword";
    const juliet = "juliet@example.net/balcony";
    await maySee(a, tybalt, juliet);
    await append(
      ["t1", "t2", "t3"].map((id) => ({ accountId: a.id, ...event("message", messageData(a, tybalt, id)), receipt: { to: tybalt, id } })).concat([
        { accountId: a.id, ...event("message", messageData(a, juliet, "j1")), receipt: { to: juliet, id: "j1" } },
      ]),
    );
    await here.block(a.ref, "capulet.example");
    await env.flush();
    env.out.reset();
    assert.equal((await guarded.page(a, null, 100, null)).items.length, 4);
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => (s.kind === "receipt" ? `${s.to} ${s.id}` : s.kind)), [`${juliet} j1`], "juliet's only");
    assert.equal(lists.committed, 1, "tybalt's block confirmed once for his three receipts; juliet's cost none");
  });

  it("keepAlive() touches an existing session's last_seen_at and creates none", async () => {
    const a = await env.account("romeo");
    await feed.keepAlive(a.id, "poller");
    assert.deepEqual(await env.sessions.list(a.id), [], "polling creates no session");
    (await feed.open(a, "poller", null)).close();
    await feed.idle();
    await env.db.pool.query("UPDATE session SET last_seen_at = last_seen_at - interval '1 hour' WHERE account_id = $1", [a.id]);
    const before = (await env.sessions.list(a.id))[0]!.lastSeenAt.getTime();
    await feed.keepAlive(a.id, "poller");
    const [s] = await env.sessions.list(a.id);
    assert.ok(s!.lastSeenAt.getTime() - before > 3_000_000, `last_seen_at moved from ${new Date(before).toISOString()} to ${s!.lastSeenAt.toISOString()}`);
  });

  it("a receipt-requesting event sends exactly one receipt, with two followers of the account reading it", async () => {
    const a = await env.account("romeo");
    const readers = [new Reader(await feed.open(a, "phone", 0)), new Reader(await feed.open(a, "laptop", 0))];
    const batches = readers.map((r) => r.next("the message event"));
    const juliet = "juliet@example.net/balcony";
    await maySee(a, juliet);
    const data = messageData(a, juliet, "r1");
    const [seq] = await append([{ accountId: a.id, ...event("message", data), receipt: { to: juliet, id: "r1" } }]);
    for (const b of await Promise.all(batches)) assert.deepEqual(view(b), [{ id: seq!, event: "message", data }]);
    assert.deepEqual(await env.outbox(), [], "nothing before a stream has written the event");
    await env.flush();
    assert.equal(env.out.sent.length, 0);

    // Both consumers have written the batch; each stream then claims the receipt, and one wins.
    for (const r of readers) r.resume();
    await waitFor(async () => (await heartbeat(), await env.sessions.list(a.id)).every((s) => s.deliveredSeq === seq), "both streams to count the event delivered");
    await env.flush();
    assert.equal(env.out.sent.length, 1, JSON.stringify(env.out.sent));
    const receipt = env.out.sent[0]!;
    assert.ok(receipt.kind === "receipt");
    assert.match(receipt.stanzaId, UUID);
    assert.deepEqual(receipt, { kind: "receipt", from: a.jid, to: juliet, id: "r1", stanzaId: receipt.stanzaId, type: "chat" });
    const [stored] = await env.events(a.id, seq! - 1);
    assert.equal(stored?.receiptSent, true);

    for (const r of readers) await r.close();

    // Another stream replaying the log does not answer again.
    const late = new Reader(await feed.open(a, "tablet", 0));
    assert.deepEqual(view(await late.next("the replay")).map((e) => e.id), [seq]);
    late.resume();
    await waitFor(async () => (await heartbeat(), await env.sessions.list(a.id)).find((s) => s.resource === "tablet")?.deliveredSeq === seq, "the replay to be delivered");
    await env.flush();
    assert.equal(env.out.sent.length, 1, "no second receipt");
    await late.close();
  });
});
