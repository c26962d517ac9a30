// The connections the link lease and the notification listener give up (src/db/lease.ts,
// src/db/notify.ts) against a real PostgreSQL: pg raises an 'error' on a connection whose server
// ends it (57P01 when PostgreSQL shuts down), sometimes after the connection was already given up.
// With no listener left that error crashed the gateway at shutdown (a CI run of
// test/scripts/cli.test.ts, the embedded PostgreSQL stopped under a lost lease connection).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LinkLease } from "../../src/db/lease.js";
import { Notifications } from "../../src/db/notify.js";

/** The connection an object holds (a private field: what it gave up is what this test is about). */
const connectionOf = (o: unknown): pg.Client => {
  const c = (o as { client: pg.Client | null }).client;
  assert.ok(c, "a connection is held");
  return c;
};

describe("connections given up", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;

  before(async () => {
    tdb = await createTestDatabase();
    pool = new pg.Pool({ connectionString: tdb.url, max: 2 });
  });
  after(async () => {
    await pool?.end();
    await tdb?.drop();
  });

  it("a lease connection lost, or released, may still raise an error: it is ignored, not thrown", async () => {
    const lease = new LinkLease(tdb.url, pool);
    assert.equal(await lease.tryAcquire(), "held");
    const lostOne = connectionOf(lease);
    const lost = once(lease, "lost");
    await pool.query("SELECT pg_terminate_backend($1)", [lease.pid]);
    await lost;
    assert.equal(lease.held, false);
    assert.doesNotThrow(() => lostOne.emit("error", new Error("terminating connection due to administrator command")));

    // The sentinel: the lease can be taken again, and a released connection is as quiet.
    assert.equal(await lease.tryAcquire(), "held");
    const released = connectionOf(lease);
    await lease.release();
    assert.doesNotThrow(() => released.emit("error", new Error("late")));
  });

  it("the notification listener's connection, once stopped, may still raise an error: it is ignored", async () => {
    const listener = new Notifications(tdb.url, () => undefined, 2000);
    await listener.start();
    const stopped = connectionOf(listener);
    await listener.stop();
    assert.doesNotThrow(() => stopped.emit("error", new Error("late")));
  });
});
