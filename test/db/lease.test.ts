// The connections the link lease and the notification listener give up (src/db/lease.ts,
// src/db/notify.ts) against a real PostgreSQL: pg raises an 'error' on a connection whose server
// ends it (57P01 when PostgreSQL shuts down), sometimes after the connection was already given up.
// With no listener left that error crashed the gateway at shutdown (a CI run of
// test/scripts/cli.test.ts, the embedded PostgreSQL stopped under a lost lease connection).
// And the takeover of a stale lease (LinkLease.takeOverStale): what it ends, and what it leaves.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LinkLease, drainAppName } from "../../src/db/lease.js";
import { Notifications } from "../../src/db/notify.js";
import { testPool } from "../helpers/database.js";

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
    pool = testPool(tdb.url, 2);
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

describe("taking over a stale lease", () => {
  let tdb: TestDatabase;
  let elsewhere: TestDatabase;
  let pool: pg.Pool;
  const clients: pg.Client[] = [];

  before(async () => {
    [tdb, elsewhere] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    pool = testPool(tdb.url, 2);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await pool?.end();
    await Promise.all([tdb?.drop(), elsewhere?.drop()]);
  });

  /** A connection named as the drain transaction of the holder whose lease backend is `pid` (src/db/outbox.ts). */
  async function drainNamed(url: string, pid: number): Promise<{ pid: number; ended: Promise<unknown> }> {
    const c = new pg.Client({ connectionString: url, application_name: drainAppName(pid) });
    clients.push(c);
    const ended = new Promise((resolve) => c.on("error", resolve));
    await c.connect();
    const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    return { pid: rows[0]!.pid, ended };
  }

  const alive = async (pid: number) => (await pool.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount === 1;

  it("ends the holder and its drain in this database, not a connection of that name in another database", async () => {
    const holder = new LinkLease(tdb.url, pool);
    holder.on("lost", () => undefined);
    assert.equal(await holder.tryAcquire(), "held");
    const holderPid = holder.pid!;
    const here = await drainNamed(tdb.url, holderPid);
    const there = await drainNamed(elsewhere.url, holderPid);
    await new Promise((r) => setTimeout(r, 300));
    const taken = await new LinkLease(tdb.url, pool).takeOverStale(200);
    assert.equal(taken?.pid, holderPid, "the stale holder was taken over");
    await here.ended;
    assert.equal(await alive(here.pid), false, "the drain in the lease's database was ended");
    assert.equal(await alive(there.pid), true, "the connection of that name in another database is left alone");
    await holder.release();
  });
});
