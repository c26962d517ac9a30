// The link holder keeps the outbound queue tables vacuumed (src/services/queue-tidy.ts,
// src/db/outbox.ts tidyQueue): every message the XMPP server confirmed leaves a dead row version
// in message_queue that each later claim and check would step over until VACUUM, and autovacuum
// may come late or never (it is off on this machine's PostgreSQL: then the holder also analyzes).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Delivery } from "../../src/services/delivery.js";
import { Messaging } from "../../src/services/messaging.js";
import { QueueTidy } from "../../src/services/queue-tidy.js";
import { setup, teardown, waitFor, type Env } from "./setup.js";
import { statusSql } from "../../src/db/message-status.js";

describe("QueueTidy", () => {
  it("vacuums only after rows left the queue, one vacuum at a time, and reports a failure", async () => {
    let calls = 0;
    let release: () => void = () => undefined;
    const errors: unknown[] = [];
    const tidy = new QueueTidy(
      () => {
        calls++;
        return new Promise<void>((resolve, reject) => (release = calls === 2 ? () => reject(new Error("denied")) : resolve));
      },
      (err) => errors.push(err),
    );
    tidy.run();
    assert.equal(calls, 0, "nothing left the queue: no vacuum");
    tidy.took(3);
    tidy.run();
    tidy.took(1);
    tidy.run();
    assert.equal(calls, 1, "not while one runs");
    release();
    await new Promise((r) => setImmediate(r));
    tidy.run();
    assert.equal(calls, 2, "the row taken meanwhile asks for another");
    release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors.map(String), ["Error: denied"]);
    tidy.run();
    assert.equal(calls, 2, "nothing taken since");
  });
});

describe("the link holder's sweep vacuums the queue", () => {
  let env: Env;
  let delivery: Delivery;
  let messaging: Messaging;

  before(async () => {
    env = await setup();
    // A holder of its own with a fast sweep (the shared one starts no sweep timer).
    delivery = env.sweeping(50);
    messaging = env.messaging(delivery);
  });
  after(() => teardown(env));

  it("after 500 messages went out and were recorded sent, the queue table is vacuumed", async () => {
    const a = await env.account("romeo");
    // VACUUM reports to the statistics at once (a backend's row counts come later).
    const vacuums = async () => Number((await env.db.pool.query<{ n: string }>("SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'message_queue'")).rows[0]!.n);
    assert.equal(await vacuums(), 0);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => messaging.send(a, null, { to: "juliet@example.net", body: `m${i}` }, null)));
    await waitFor(async () => (await env.db.pool.query(`SELECT 1 FROM message m WHERE id = ANY($1::uuid[]) AND ${statusSql("m")} = 'queued'`, [results.map((r) => r.id)])).rowCount === 0, "all recorded sent");
    assert.equal(env.out.sent.length, 500);
    assert.equal((await env.db.pool.query("SELECT 1 FROM message_queue")).rowCount, 0, "out of the queue");
    await waitFor(async () => (await vacuums()) > 0, "message_queue vacuumed", 5000);
  });

  it("where autovacuum is off, the tables that changed are analyzed too (prepared plans follow the table's growth)", async () => {
    const autovacuum = (await env.db.pool.query<{ autovacuum: string }>("SHOW autovacuum")).rows[0]!.autovacuum;
    const analyzed = async () => (await env.db.pool.query<{ at: Date | null }>("SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relname = 'message'")).rows[0]!.at !== null;
    const a = await env.account("juliet");
    // Steady traffic: PostgreSQL publishes a backend's table counters at most once a second (later
    // when it goes idle), so the count of changes reaches the sweep a moment after the writes.
    const deadline = Date.now() + 8000;
    let sent = 0;
    while (!(await analyzed()) && Date.now() < deadline) {
      await messaging.send(a, null, { to: "romeo@example.net", body: `t${sent++}` }, null);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await analyzed(), autovacuum === "off", `autovacuum ${autovacuum}, after ${sent} more messages`);
  });
});
