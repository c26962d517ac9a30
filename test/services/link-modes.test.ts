// Instances of both XMPP_LINK_MODEs on one database (found by the sending audit of stop 65: during a
// rolling switch from single to all on ejabberd, 20 messages went out as 22 stanzas; the single
// holder sends its own messages directly, the all-mode instance drained the same queue). All-mode
// instances hold the lease lock shared, a single-mode holder exclusive (src/db/lease.ts): an
// all-mode instance does not start beside a single holder, and a single-mode one stays a standby
// beside all-mode ones, saying why, until they stop. A real PostgreSQL and the real lease; the
// links are recording stand-ins.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LinkLease } from "../../src/db/lease.js";
import { Notifications } from "../../src/db/notify.js";
import { LinkControl, LinkModeConflict, type LinkDriver, type LinkMode } from "../../src/services/link-control.js";
import { waitFor } from "../helpers/gateway.js";
import { testPool } from "../helpers/database.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

describe("link modes on one database", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let notifications: Notifications;
  const controls: LinkControl[] = [];

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 3);
    notifications = new Notifications(tdb.url, () => undefined);
    await notifications.start();
  });
  after(async () => {
    for (const c of controls) await c.stop().catch(() => undefined);
    await notifications?.stop();
    await pool?.end();
    await tdb?.drop();
  });

  function instance(mode: LinkMode, url = tdb.url) {
    const calls: string[] = [];
    const warnings: string[] = [];
    const link: LinkDriver & { online: boolean } = {
      online: false,
      start: async () => void (calls.push("start"), (link.online = true)),
      stop: async () => void (calls.push("stop"), (link.online = false)),
      share: () => undefined,
      answered: () => undefined,
    };
    const log = { debug: () => undefined, info: () => undefined, warn: (_: object, m: string) => void warnings.push(m) };
    const lease = new LinkLease(url, pool);
    const control = new LinkControl(lease, link, notifications, { mode, pollMs: 100, downGraceMs: 60_000, leaseTimeoutMs: 2000 }, log);
    controls.push(control);
    return { control, lease, calls, warnings, link };
  }

  it("an all-mode instance does not start beside a single-mode holder, and starts no link", async () => {
    const single = instance("single");
    await single.control.start();
    assert.equal(single.lease.held, true);
    const all = instance("all");
    await assert.rejects(all.control.start(), (err: unknown) => err instanceof LinkModeConflict && /XMPP_LINK_MODE=single/.test(err.message));
    assert.deepEqual(all.calls, [], "its link never started");
    await single.control.stop();
  });

  it("a single-mode instance stays a standby beside all-mode instances, says so once, and takes the link once they stop", async () => {
    const [a, b] = [instance("all"), instance("all")];
    await a.control.start();
    await b.control.start();
    assert.deepEqual([a.calls, b.calls], [["start"], ["start"]], "all-mode instances share the lease");
    const single = instance("single");
    await single.control.start();
    // Some ticks (every 100 ms) find the lease held shared.
    await waitFor(() => single.warnings.length > 0, 5000, "the standby's warning");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(single.lease.held, false);
    assert.deepEqual(single.calls, [], "no link beside the all-mode ones");
    assert.deepEqual(single.warnings.filter((w) => /XMPP_LINK_MODE=all/.test(w)).length, 1, `said once: ${single.warnings.join(" | ")}`);
    assert.equal(await single.control.readiness(), "down");
    await a.control.stop();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(single.calls, [], "still one all-mode instance");
    await b.control.stop();
    await waitFor(() => single.lease.held, 5000, "the single-mode instance takes the lease");
    assert.deepEqual(single.calls, ["start"]);
    await single.control.stop();
  });

  it("an all-mode instance whose lease connection drops while a single-mode one takes the lease closes its link", async () => {
    // The all-mode instance reaches PostgreSQL through a relay, which holds its reconnection.
    const relay = new TcpRelay(Number(new URL(tdb.url).port || 5432));
    const relayed = new URL(tdb.url);
    relayed.port = String(await relay.listen());
    try {
      const all = instance("all", relayed.toString());
      await all.control.start();
      const single = instance("single");
      await single.control.start();
      assert.equal(single.lease.held, false);
      // The all-mode instance's lease connection ends (a network blip) and stays away a while: the standby's next tick takes the lease.
      relay.hold(true);
      const ended = await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'balcony-link-all' AND datname = current_database()");
      assert.equal(ended.rowCount, 1);
      await waitFor(() => single.lease.held, 5000, "the single-mode instance takes the lease");
      relay.hold(false);
      await waitFor(() => all.calls.includes("stop"), 10_000, "the all-mode link closes");
      assert.deepEqual(all.calls, ["start", "stop"]);
      assert.ok(all.warnings.some((w) => /XMPP_LINK_MODE=single took the link lease/.test(w)), all.warnings.join(" | "));
      await single.control.stop();
      await all.control.stop();
    } finally {
      relay.close();
    }
  });
});
