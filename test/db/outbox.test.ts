// The link holder's VACUUM of the queue tables (src/db/outbox.ts tidyQueue) runs while messages are
// being sent, so it must never need more than the lock an insert leaves free. By default VACUUM
// also truncates a table's empty tail, which needs an ACCESS EXCLUSIVE lock: it waits for it in
// 50 ms steps (up to 5 s) and, while it holds it, any insert has to wait. The queue tables keep
// their pages (migration 20261202160000), so the vacuum neither waits nor blocks.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { drainOnce, enqueue, enqueueAhead, outboxStanzas, tidyQueue, type Queued } from "../../src/db/outbox.js";
import { CHANNELS } from "../../src/db/notify.js";
import { autocommit } from "../../src/db/client.js";
import { recordJoin } from "../../src/db/rooms.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { suiteDatabase } from "../helpers/database.js";

describe("tidying the outbound queue", () => {
  const db = suiteDatabase();

  const vacuums = async () =>
    (await db().pool.query<{ relname: string; n: string }>("SELECT relname, vacuum_count AS n FROM pg_stat_user_tables WHERE relname IN ('message_queue', 'outbox') ORDER BY relname")).rows.map(
      (r) => `${r.relname} ${r.n}`,
    );

  it("vacuums both tables while a sender holds them, without waiting for it", async () => {
    // A queue that was long and is empty now: 5,000 rows sent, i.e. deleted (a tail of empty
    // pages, which VACUUM would otherwise try to truncate).
    await db().pool.query("INSERT INTO message_queue (seq, message_id) SELECT g, gen_random_uuid() FROM generate_series(1, 5000) g");
    await db().pool.query("INSERT INTO outbox (seq, account_id, stanza) SELECT g, NULL, '{}'::json FROM generate_series(5001, 7000) g");
    await db().pool.query("DELETE FROM message_queue");
    await db().pool.query("DELETE FROM outbox");
    assert.deepEqual(await vacuums(), ["message_queue 0", "outbox 0"]);

    // A sending transaction in progress holds the lock an insert takes, as under steady sending.
    const sender = await db().pool.connect();
    try {
      await sender.query("BEGIN");
      await sender.query("LOCK TABLE message_queue, outbox IN ROW EXCLUSIVE MODE");
      const started = performance.now();
      await tidyQueue(db().pool);
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `the vacuum took ${ms.toFixed(0)} ms beside a sender (it waited for a lock)`);
    } finally {
      await sender.query("ROLLBACK");
      sender.release();
    }
    // It did vacuum: VACUUM reports to the statistics at once.
    assert.deepEqual(await vacuums(), ["message_queue 1", "outbox 1"]);
  });
});

// With XMPP_LINK_MODE=all every instance drains on its own link and claims are not fenced by the
// lease: were two drains to run at once, the second would skip the first's locked rows and write
// the ones behind them on another link, where the server may route them first (and a batch the
// first rolls back, its barrier failed, would go out after them). Unfenced drains take turns.
describe("unfenced drains (XMPP_LINK_MODE=all)", () => {
  const db = suiteDatabase();

  it("a second drain waits for the first to commit, then claims what is behind it: sequence order across drains", async () => {
    await db().pool.query(`INSERT INTO outbox (seq, account_id, stanza) SELECT g, NULL, json_build_object('kind', 'presence', 'to', 'p' || g || '@x') FROM generate_series(1, 2) g`);
    const log: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstWriting!: () => void;
    const writing = new Promise<void>((r) => (firstWriting = r));
    const outcome = (rows: Queued[]) => ({ failed: [], error: { type: "cancel", condition: "x" }, done: rows.map((q) => q.seq) });
    // The first drain claims row 1 and, like a sender waiting for its barrier, holds it.
    const first = drainOnce(db().pool, 1, null, async (rows) => {
      log.push(`first writes ${rows.map((q) => q.seq).join(",")}`);
      firstWriting();
      await held;
      log.push("first confirmed");
      return outcome(rows);
    });
    await writing;
    const second = drainOnce(db().pool, 10, null, async (rows) => {
      log.push(`second writes ${rows.map((q) => q.seq).join(",")}`);
      return outcome(rows);
    });
    await new Promise((r) => setTimeout(r, 300));
    release();
    await Promise.all([first, second]);
    assert.deepEqual(log, ["first writes 1", "first confirmed", "second writes 2"]);
  });
});

// Stanzas recorded ahead of the queue (src/db/outbox.ts enqueueAhead: the link holder's rejoin of
// its rooms after a reconnect) are drained before everything queued, however much older, and
// among themselves in the order they were recorded; their shifted numbers stay exact, so the drain
// deletes exactly the rows it wrote.
describe("stanzas recorded ahead of the outbound queue", () => {
  const db = suiteDatabase();

  const probe = (to: string): Stanza => ({ kind: "presence", from: "romeo@gw.localhost", to, type: "probe", show: null, status: null, priority: 0 });
  const join = (room: string): Stanza => ({ kind: "muc-join", from: "romeo@gw.localhost/rooms", to: `${room}/romeo`, password: null, history: null });

  it("drains them first, in their recording order, then the queue in its own; and deletes exactly what it wrote", async () => {
    await db().transaction((tx) => enqueue(tx, null, [probe("a@localhost"), probe("b@localhost")]));
    await db().transaction((tx) => enqueue(tx, null, [probe("c@localhost")]));
    // Three joins identical but for the room: stored as one fan-out row, expanded in order.
    await db().transaction((tx) => enqueueAhead(tx, 1, [join("r1@muc"), join("r2@muc"), join("r3@muc"), probe("d@localhost")]));
    await db().transaction((tx) => enqueueAhead(tx, 1, [join("r4@muc")]));
    await db().transaction((tx) => enqueue(tx, null, [probe("e@localhost")]));
    const written: string[] = [];
    const step = await drainOnce(db().pool, 100, null, async (rows: Queued[]) => {
      written.push(...rows.map((q) => `${q.stanza!.kind} ${"to" in q.stanza! ? q.stanza.to : ""}`));
      return { failed: [], error: { type: "cancel", condition: "x" }, done: [...new Set(rows.map((q) => q.seq))] };
    });
    assert.deepEqual(written, [
      "muc-join r1@muc/romeo",
      "muc-join r2@muc/romeo",
      "muc-join r3@muc/romeo",
      "presence d@localhost",
      "muc-join r4@muc/romeo",
      "presence a@localhost",
      "presence b@localhost",
      "presence c@localhost",
      "presence e@localhost",
    ]);
    assert.equal(step.more, false);
    assert.equal((await db().pool.query("SELECT count(*)::int AS n FROM outbox")).rows[0].n, 0, "every row written was deleted, and only those");
  });
});

// Recording a stanza wakes the link holder: enqueue's INSERT and its NOTIFY are one statement, in
// either kind of transaction, heard at commit only.
describe("recording stanzas wakes the link holder", () => {
  const db = suiteDatabase(4);
  const probe = (to: string): Stanza => ({ kind: "presence", from: "romeo@gw.localhost", to, type: "probe", show: null, status: null, priority: 0 });

  /**
   * Runs `fn` while listening on the outbox channel, then sends a sentinel NOTIFY and returns what
   * was heard up to it ("nothing else was sent" is proven by the sentinel arriving after it).
   */
  async function heardWhile(fn: () => Promise<void>): Promise<string[]> {
    const listener = await db().pool.connect();
    const heard: string[] = [];
    try {
      listener.on("notification", (n) => heard.push(`${n.channel} ${n.payload}`));
      await listener.query(`LISTEN ${CHANNELS.outbox}`);
      await fn();
      await db().pool.query("SELECT pg_notify($1, 'sentinel')", [CHANNELS.outbox]);
      for (let i = 0; i < 100 && !heard.includes(`${CHANNELS.outbox} sentinel`); i++) await new Promise((r) => setTimeout(r, 20));
      return heard;
    } finally {
      await listener.query(`UNLISTEN ${CHANNELS.outbox}`);
      listener.release();
    }
  }

  it("one NOTIFY on the outbox channel per committed transaction that recorded stanzas, none for one rolled back (a sentinel after it is heard)", async () => {
    const heard = await heardWhile(async () => {
      await db().transaction((tx) => enqueue(tx, null, [probe("a@localhost")]));
      await db().sqlTransaction((tx) => enqueue(tx, 1, [probe("b@localhost"), probe("c@localhost")]));
      await db().sqlTransaction((tx) => enqueueAhead(tx, 1, [probe("d@localhost")]));
      await assert.rejects(
        db().sqlTransaction(async (tx) => {
          await enqueue(tx, null, [probe("e@localhost")]);
          throw new Error("rolled back");
        }),
        /rolled back/,
      );
    });
    assert.deepEqual(heard, [...Array(3).fill(`${CHANNELS.outbox} `), `${CHANNELS.outbox} sentinel`]);
    // b and c differ only in `to`: one fan-out row.
    const { rows } = await db().pool.query<{ stanza: Parameters<typeof outboxStanzas>[0] }>("SELECT stanza FROM outbox ORDER BY seq");
    const to = rows.flatMap((r) => outboxStanzas(r.stanza).map((s) => ("to" in s ? s.to : "")));
    assert.deepEqual(to, ["d@localhost", "a@localhost", "b@localhost", "c@localhost"], "recorded in the same statement");
  });

  it("a join recorded in one statement (enqueueIf) records its presence and NOTIFYs, naming the instance, only when it records the join", async () => {
    await db().pool.query("DELETE FROM outbox");
    const { rows: [account] } = await db().pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('abram') RETURNING id");
    const join = (to: string) => recordJoin(autocommit(db().pool), account!.id, "lobby@conference.localhost", "abram", null, null, { stanzas: [probe(to)], origin: "instance-1" });
    const heard = await heardWhile(async () => {
      assert.equal(await join("first@localhost"), "recorded");
      // The row is joining now: nothing recorded, nothing sent.
      assert.equal(await join("again@localhost"), "taken");
      // A block of the room, committed (XEP-0191 §3.3): nothing recorded, nothing sent.
      await db().pool.query("INSERT INTO block (account_id, jid) VALUES ($1, 'lobby@conference.localhost')", [account!.id]);
      assert.equal(await join("blocked@localhost"), "blocked");
    });
    assert.deepEqual(heard, [`${CHANNELS.outbox} instance-1`, `${CHANNELS.outbox} sentinel`]);
    const { rows } = await db().pool.query<{ account_id: number; stanza: Stanza }>("SELECT account_id, stanza FROM outbox ORDER BY seq");
    assert.deepEqual(rows, [{ account_id: account!.id, stanza: probe("first@localhost") }]);
  });
});
