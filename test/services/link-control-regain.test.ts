// LinkControl (XMPP_LINK_MODE=single) whose lease connection drops while its link stays up (a
// PostgreSQL restart): once it takes the lease back it says so, so the wiring kicks the drain for
// what was posted meanwhile; nothing else would send it before the next sweep (the link never went
// down, so no link-up kicks it). A real PostgreSQL and the real lease; the link is a stand-in.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LinkLease } from "../../src/db/lease.js";
import { Notifications } from "../../src/db/notify.js";
import { LinkControl, type LinkDriver } from "../../src/services/link-control.js";
import { waitFor } from "../helpers/gateway.js";
import { testPool } from "../helpers/database.js";

describe("LinkControl taking its lease back", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let notifications: Notifications;

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 2);
    notifications = new Notifications(tdb.url, () => undefined);
    await notifications.start();
  });
  after(async () => {
    await notifications?.stop();
    await pool?.end();
    await tdb?.drop();
  });

  it("says so when it holds the lease again with its link up", async () => {
    const lease = new LinkLease(tdb.url, pool);
    const link: LinkDriver & { online: boolean } = {
      online: false,
      start: async () => void (link.online = true),
      stop: async () => void (link.online = false),
      share: () => undefined,
      answered: () => undefined,
    };
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
    let regained = 0;
    const control = new LinkControl(lease, link, notifications, { mode: "single", pollMs: 100, downGraceMs: 60_000, leaseTimeoutMs: 10_000 }, log, () => regained++);
    try {
      await control.start();
      assert.equal(control.holder, true);
      assert.equal(link.online, true);
      assert.equal(regained, 0, "a first take is no regain: the link coming up kicks the drain");
      // The lease connection ends under it, as in a PostgreSQL restart; the link stays up.
      const ended = await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'balcony-link-%' AND datname = current_database()");
      assert.equal(ended.rowCount, 1);
      await waitFor(async () => regained === 1, 5000, "told that the lease is back");
      assert.equal(control.holder, true);
      assert.equal(link.online, true, "the link never went down");
    } finally {
      await control.stop();
    }
  });
});
