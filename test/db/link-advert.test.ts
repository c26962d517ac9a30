// XMPP_LINK_MODE=all: every instance holds a component link, and /readyz of one whose link is down
// reports `standby` while another instance's link is up (API.md "Several instances"). Each
// instance advertises its link on its notification listener's connection (src/db/notify.ts
// advertiseLink, read by otherLinkUp): two listeners here, and a third in a child process that
// hangs (SIGSTOP), on a real PostgreSQL.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import type { LinkLease } from "../../src/db/lease.js";
import { LISTENER_LINK_APP, Notifications } from "../../src/db/notify.js";
import { LinkControl, type LinkDriver } from "../../src/services/link-control.js";
import { waitFor } from "../helpers/gateway.js";
import { testPool } from "../helpers/database.js";

/** The smallest XMPP_LINK_LEASE_TIMEOUT the configuration accepts. */
const STALE_MS = 2000;
const CHILD = fileURLToPath(new URL("./listener-process.ts", import.meta.url));

describe("the component link advertised between instances (XMPP_LINK_MODE=all)", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let a: Notifications;
  let b: Notifications;
  const children = new Set<ChildProcess>();
  const advertised = async () =>
    (await pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", [LISTENER_LINK_APP])).rows.map((r) => r.pid);

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 2);
    a = new Notifications(tdb.url, () => undefined, STALE_MS);
    b = new Notifications(tdb.url, () => undefined, STALE_MS);
    await a.start();
    await b.start();
  });
  after(async () => {
    for (const c of children) {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    }
    await a?.stop();
    await b?.stop();
    await pool?.end();
    await tdb?.drop();
  });

  it("one instance sees another's link, never its own; the advert follows the link down and survives a reconnect", async () => {
    assert.deepEqual([await a.otherLinkUp(), await b.otherLinkUp()], [false, false], "no link up anywhere");
    b.advertiseLink(true);
    await waitFor(async () => await a.otherLinkUp(), 5000, "a to see b's link");
    assert.equal(await b.otherLinkUp(), false, "b's own link is not another's");
    // b's listening connection drops (as when PostgreSQL restarts): it reconnects still advertising.
    const [pid] = await advertised();
    await pool.query("SELECT pg_terminate_backend($1)", [pid]);
    // One read of the adverts: two could see the old backend, then none (it exited), and pass early.
    await waitFor(
      async () => {
        const now = await advertised();
        return now.length === 1 && now[0] !== pid;
      },
      10_000,
      "b's listener back, advertising its link",
    );
    assert.equal(await a.otherLinkUp(), true);
    // Dropped again, and b's link goes down the moment its new connection shows (while it still
    // sets up its LISTENs): the advert follows the link, not what it was when the connection began.
    const [again] = await advertised();
    await pool.query("SELECT pg_terminate_backend($1)", [again]);
    const until = Date.now() + 10_000;
    while (!(await advertised()).some((p) => p !== again)) assert.ok(Date.now() < until, "b's listener back");
    b.advertiseLink(false);
    await waitFor(async () => !(await a.otherLinkUp()), 5000, "a to see b's link down");
    assert.deepEqual(await advertised(), [], "nobody advertises a link");
  });

  it("/readyz's xmpp of an instance in all mode: up with its own link, standby while another's is up, down when none is", async () => {
    // This instance's link (the component connection itself is src/xmpp/link.ts's; only its state matters here).
    const link: LinkDriver & { online: boolean } = { online: true, start: async () => undefined, stop: async () => undefined, share: () => undefined, answered: () => undefined };
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
    // All mode takes no lease.
    const control = new LinkControl({} as LinkLease, link, a, { mode: "all", pollMs: 1000, downGraceMs: 5000, leaseTimeoutMs: STALE_MS }, log);
    control.linkChanged(true);
    await waitFor(async () => await b.otherLinkUp(), 5000, "b to see a's link advertised by linkChanged");
    assert.equal(await control.readiness(), "up");
    link.online = false;
    control.linkChanged(false);
    await waitFor(async () => !(await b.otherLinkUp()), 5000, "a's advert gone with its link");
    assert.equal(await control.readiness(), "down", "no link up anywhere");
    b.advertiseLink(true);
    try {
      await waitFor(async () => (await control.readiness()) === "standby", 5000, "standby while b's link is up");
    } finally {
      b.advertiseLink(false);
    }
    await waitFor(async () => (await control.readiness()) === "down", 5000, "down again once b's link is down");
  });

  it("a hung instance's advert goes with its listener, which the sweep ends", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", CHILD, tdb.url, String(STALE_MS), "link"], { stdio: ["ignore", "pipe", "inherit"] });
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    await waitFor(async () => await a.otherLinkUp(), 20_000, "a to see the child's link");
    proc.kill("SIGSTOP");
    const stoppedAt = Date.now();
    await waitFor(async () => !(await a.otherLinkUp()), STALE_MS + 5000, "the hung child's advert to be gone");
    const took = Date.now() - stoppedAt;
    assert.ok(took >= STALE_MS - 500, `gone after ${took} ms: the sweep waits for the timeout`);
    // Resumed, the child reconnects with its advert (its link would still be up).
    proc.kill("SIGCONT");
    await waitFor(async () => await a.otherLinkUp(), 10_000, "the resumed child's advert back");
    proc.kill("SIGKILL");
  });
});
