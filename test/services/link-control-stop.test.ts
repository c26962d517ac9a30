// LinkControl stopped while a tick is taking the lease (XMPP_LINK_MODE=single): stop() waits for
// that tick, so a lease it took and a link it started are given up too, not left held after the
// shutdown (a lock other instances would wait for, a component connection Prosody allows once).
// A real PostgreSQL and the real lease; a TCP relay holds the server's answers so stop() lands
// while the lease connection is being made. The link is a recording stand-in (no XMPP here).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LEASE_KEY, LinkLease } from "../../src/db/lease.js";
import { Notifications } from "../../src/db/notify.js";
import { LinkControl, type LinkDriver } from "../../src/services/link-control.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { testPool } from "../helpers/database.js";

describe("LinkControl stopped while taking the lease", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let relay: TcpRelay;
  let notifications: Notifications;
  let relayUrl: URL;
  const leaseHolders = async () =>
    (await pool.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1::int::oid AND objid = $2::int::oid", LEASE_KEY)).rows.length;
  const leaseBackends = async () => (await pool.query("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'balcony-link-%' AND datname = current_database()")).rows.length;

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 2);
    relay = new TcpRelay(Number(new URL(tdb.url).port || 5432));
    relayUrl = new URL(tdb.url);
    relayUrl.port = String(await relay.listen());
    notifications = new Notifications(tdb.url, () => undefined);
    await notifications.start();
  });
  after(async () => {
    await notifications?.stop();
    relay?.close();
    await pool?.end();
    await tdb?.drop();
  });

  /** A LinkControl started while the relay holds the server's answers: its first tick is taking the lease. */
  async function startedMidLease() {
    const lease = new LinkLease(relayUrl.toString(), pool);
    const calls: string[] = [];
    const link: LinkDriver & { online: boolean } = {
      online: false,
      start: async () => void calls.push("start"),
      stop: async () => void calls.push("stop"),
      share: () => undefined,
      answered: () => undefined,
    };
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
    const control = new LinkControl(lease, link, notifications, { mode: "single", pollMs: 60_000, downGraceMs: 60_000, leaseTimeoutMs: 2000 }, log);
    relay.hold(true);
    const started = control.start();
    // The first tick's lease connection reached the server, whose answers the relay holds.
    await waitFor(async () => (await leaseBackends()) === 1, 5000, "the lease connection being made");
    return { lease, calls, control, started };
  }

  it("gives up the lease that tick took, and never starts its link", async () => {
    const { lease, calls, control, started } = await startedMidLease();
    const stopped = control.stop();
    relay.hold(false);
    await Promise.all([started, stopped]);
    assert.deepEqual(calls, ["stop"], "the tick's lease given up, its link never started");
    assert.equal(lease.held, false, "the lease is given up");
    await waitFor(async () => (await leaseHolders()) === 0, 5000, "no lease lock held after stop()");
  });

  it("does not wait for ever on a tick stuck taking the lease; the lease that tick takes later is given up", async () => {
    const { lease, calls, control, started } = await startedMidLease();
    const t = Date.now();
    await control.stop();
    const took = Date.now() - t;
    assert.ok(took < 4000, `stop() returned after ${took} ms with the tick still stuck`);
    relay.hold(false);
    await started;
    assert.deepEqual(calls, ["stop"], "no link started after stop()");
    assert.equal(lease.held, false);
    await waitFor(async () => (await leaseHolders()) === 0, 5000, "no lease lock held after the late tick");
  });
});
