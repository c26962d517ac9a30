// A hung instance (SIGSTOP) keeps its listening connection open but stops reading it, and
// PostgreSQL keeps every NOTIFY until each listener has read it: its queue grows for as long as the
// instance hangs, and when it is full every transaction that notifies fails, on every instance.
// Every listener proves it is alive every second, and ends the others' listeners that have not
// for the timeout (src/db/notify.ts). Real processes, real signals, a real PostgreSQL; the hung
// listener is in a child process (test/db/listener-process.ts), the sweeper in this one.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { CHANNELS, LISTENER_APP, LIVE_KEYS, Notifications } from "../../src/db/notify.js";
import { waitFor } from "../helpers/gateway.js";
import { testPool } from "../helpers/database.js";

/** The smallest XMPP_LINK_LEASE_TIMEOUT the configuration accepts. */
const STALE_MS = 2000;
/** "A few seconds": the sweeper's beat comes every second, and may wait on a busy machine. */
const ENDED_WITHIN_MS = STALE_MS + 3000;
/** pg_notification_queue_usage() is the share of 8 GB in use; the tail moves a few 8 KB pages at a time. */
const QUEUE_EMPTY = 1e-5;
const CHILD = fileURLToPath(new URL("./listener-process.ts", import.meta.url));

type Fact = { ready?: boolean; payload?: string; reconnected?: boolean; heard?: number; log?: string };

interface Child {
  proc: ChildProcess;
  facts: Fact[];
}

describe("a hung instance's notification listener", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let sweeper: Notifications;
  let sweeperPid: number;
  const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
  const sweeperNulls: number[] = [];
  const children = new Set<ChildProcess>();

  const listenerPids = async () =>
    (await pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() ORDER BY pid", [LISTENER_APP])).rows.map((r) => r.pid);
  const queueUsage = async () => (await pool.query<{ u: number }>("SELECT pg_notification_queue_usage()::float8 AS u")).rows[0]!.u;
  let floodSeq = 0;
  /** NOTIFYs for `ms`, 500 distinct ones (~220 bytes each) a statement, a statement every ~5 ms; returns how many. */
  async function flood(ms: number): Promise<number> {
    const until = Date.now() + ms;
    let n = 0;
    while (Date.now() < until) {
      await pool.query("SELECT pg_notify($1, 'flood-' || $2 || '-' || g || repeat('x', 200)) FROM generate_series(1, 500) g", [CHANNELS.events, String(++floodSeq)]);
      n += 500;
      await new Promise((r) => setTimeout(r, 5));
    }
    return n;
  }

  async function startChild(mode: "plain" | "busy"): Promise<Child & { backendPid: number }> {
    const before = await listenerPids();
    const proc = spawn(process.execPath, ["--import", "tsx", CHILD, tdb.url, String(STALE_MS), mode], { stdio: ["ignore", "pipe", "inherit"] });
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    const facts: Fact[] = [];
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) facts.push(JSON.parse(l) as Fact);
    });
    await waitFor(() => facts.some((f) => f.ready), 20_000, "the child's listener");
    const added = (await listenerPids()).filter((p) => !before.includes(p));
    assert.equal(added.length, 1, `one new listening backend for the child, got ${JSON.stringify(added)}`);
    return { proc, facts, backendPid: added[0]! };
  }

  /** Sends `payload` and waits until the child reports it. */
  async function roundTrip(child: Child, payload: string, timeoutMs = 5000): Promise<void> {
    await pool.query("SELECT pg_notify($1, $2)", [CHANNELS.events, payload]);
    await waitFor(() => child.facts.some((f) => f.payload === payload), timeoutMs, `the child to hear ${payload}`);
  }

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 3);
    sweeper = new Notifications(tdb.url, (msg, _err, fields) => logged.push({ msg, fields }), STALE_MS);
    await sweeper.start();
    sweeper.on(CHANNELS.events, (p) => p === null && sweeperNulls.push(Date.now()));
    [sweeperPid] = (await listenerPids()) as [number];
  });
  after(async () => {
    for (const c of children) {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    }
    await sweeper?.stop();
    await pool?.end();
    await tdb?.drop();
  });

  it("a SIGSTOPped listener's backend is ended within the timeout + 3 s, the queue empties, and resumed it reconnects and hears a NOTIFY sent after", async () => {
    const child = await startChild("plain");
    await roundTrip(child, "before-stop");
    const usageAtStop = await queueUsage();
    child.proc.kill("SIGSTOP");
    const stoppedAt = Date.now();
    const samples: string[] = [];
    let peak = usageAtStop;
    let endedAfterMs: number | null = null;
    let sent = 0;
    while (Date.now() - stoppedAt < ENDED_WITHIN_MS + 3000) {
      sent += await flood(250);
      const usage = await queueUsage();
      peak = Math.max(peak, usage);
      samples.push(`${Date.now() - stoppedAt}ms:${usage.toExponential(2)}`);
      if (!(await listenerPids()).includes(child.backendPid)) {
        endedAfterMs = Date.now() - stoppedAt;
        break;
      }
    }
    console.log(`[notify] hung listener: ${sent} NOTIFYs; queue usage (share of 8 GB) ${samples.join(" ")}; backend gone after ${endedAfterMs} ms`);
    assert.ok(endedAfterMs !== null && endedAfterMs <= ENDED_WITHIN_MS, `the hung listener's backend ${child.backendPid} was not ended within ${ENDED_WITHIN_MS} ms (${endedAfterMs} ms)`);
    assert.ok(peak > usageAtStop + QUEUE_EMPTY, `the queue grew while the listener hung (${usageAtStop} → ${peak})`);

    // The sweep's answer comes on the listening connection, behind the flood's NOTIFYs queued on
    // it: the backend can be seen gone (on the pool) before the sweeper has read that it ended it.
    await waitFor(() => logged.some((l) => l.fields?.backendPid === child.backendPid), 5000, "the sweeper's warning").catch(() => undefined);
    const warning = logged.find((l) => l.fields?.backendPid === child.backendPid);
    console.log(`[notify] sweeper's warning: ${JSON.stringify(warning)}`);
    assert.ok(warning, `a warning naming backend ${child.backendPid}: ${JSON.stringify(logged)}`);
    // The sweep ends a backend whose proof is older than STALE_MS; the warning rounds that age to
    // the millisecond, so 2000.3 ms reads 2000.
    assert.ok((warning.fields!.proofAgeMs as number) >= STALE_MS && (warning.fields!.proofAgeMs as number) < ENDED_WITHIN_MS, JSON.stringify(warning));

    // The queue is the live listeners' again: it empties after the same flood. It is shared by the
    // whole PostgreSQL server, so a test file running beside this one that hangs an instance of its
    // own holds it too, until that cluster's sweep ends its listener (at most its lease timeout,
    // 10 s by default): hence 20 s, and the figure during the flood is reported, not asserted.
    sent = await flood(1000);
    const during = await queueUsage();
    await pool.query("SELECT pg_notify($1, 'settle')", [CHANNELS.events]);
    await waitFor(async () => (await queueUsage()) <= QUEUE_EMPTY, 20_000, "the notification queue to empty");
    console.log(`[notify] after the end: ${sent} more NOTIFYs in 1 s, usage ${during.toExponential(2)} during, ${(await queueUsage()).toExponential(2)} after (peak ${peak.toExponential(2)})`);
    assert.ok((await listenerPids()).includes(sweeperPid), "the sweeper's own listener is alive");
    assert.deepEqual(sweeperNulls, [], "the sweeper's listener never reconnected");

    // Resumed: it reads what was buffered, finds its connection gone, reconnects, tells its handlers.
    child.proc.kill("SIGCONT");
    await waitFor(() => child.facts.some((f) => f.reconnected), 10_000, "the resumed child to reconnect and call its handlers with null");
    const lost = child.facts.find((f) => f.log?.includes("lost its connection"));
    assert.ok(lost, "the child logged the lost connection");
    const sentinel = `sentinel-${Date.now()}`;
    await roundTrip(child, sentinel);
    const now = await listenerPids();
    console.log(`[notify] resumed child: ${JSON.stringify(lost)}; reconnected; heard ${sentinel}; listeners now ${JSON.stringify(now)} (was ${child.backendPid}, sweeper ${sweeperPid})`);
    assert.ok(!now.includes(child.backendPid) && now.length === 2, "the child listens on a new backend");
    child.proc.kill("SIGKILL");
  });

  it("a live listener whose handlers lag (busy CPU, a pile of slow queries) and a long transaction are not ended over three timeouts", async () => {
    const child = await startChild("busy");
    // Another kind of backend whose state has not changed for longer than the timeout.
    const longTx = new pg.Client({ connectionString: tdb.url });
    let longTxError: unknown = null;
    longTx.on("error", (err) => (longTxError = err));
    await longTx.connect();
    await longTx.query("BEGIN");
    const longTxPid = (await longTx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    try {
      const warningsBefore = logged.length;
      const start = Date.now();
      let sent = 0;
      while (Date.now() - start < 3 * STALE_MS + 1000) {
        // ~25 a second: each costs the child 20 ms of CPU and starts a 1 s query on its pool of one.
        await pool.query("SELECT pg_notify($1, 'flood-busy-' || g) FROM generate_series(1, 5) g", [CHANNELS.events]);
        sent += 5;
        await new Promise((r) => setTimeout(r, 200));
        const pids = await listenerPids();
        assert.ok(pids.includes(child.backendPid), `the busy listener's backend was ended after ${Date.now() - start} ms: ${JSON.stringify(logged.slice(warningsBefore))}`);
      }
      const heard = child.facts.filter((f) => f.heard !== undefined).at(-1)?.heard;
      console.log(`[notify] busy listener: ${sent} NOTIFYs over ${Date.now() - start} ms, it had handled ${heard}; backend ${child.backendPid} alive; warnings ${logged.length - warningsBefore}`);
      assert.ok((heard ?? 0) > sent / 2, `the busy child handled notifications meanwhile (${heard} of ${sent})`);
      assert.equal(logged.length, warningsBefore, `no listener was ended: ${JSON.stringify(logged.slice(warningsBefore))}`);
      assert.ok(!child.facts.some((f) => f.reconnected || f.log), `the busy child neither reconnected nor logged: ${JSON.stringify(child.facts.filter((f) => f.reconnected || f.log))}`);
      const still = await pool.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [longTxPid]);
      assert.equal(still.rowCount, 1, `the long transaction's backend is alive (${String(longTxError)})`);
    } finally {
      await longTx.end().catch(() => undefined);
      child.proc.kill("SIGKILL");
    }
  });
});

// A liveness lock (holdLiveness) tells other instances that a webhook lease's owner is alive
// (src/db/webhook-lanes.ts): it must be back after the listener reconnects, and go when dropped.
describe("a listener's liveness locks", () => {
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

  /** The backend holding `key`'s liveness lock, or null. */
  const holder = async (key: string) =>
    (await pool.query<{ pid: number }>(`SELECT k.pid FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND ((k.classid::bigint << 32) | k.objid::bigint) = hashtextextended($1, 0) AND hashtextextended($1, 0) IN (${LIVE_KEYS})`, [key])).rows[0]?.pid ?? null;

  it("is held while the listener is connected, taken again on its next connection, and released by dropLiveness", async () => {
    const listener = new Notifications(tdb.url, () => undefined);
    await listener.start();
    try {
      await listener.holdLiveness("owner-a");
      const first = await holder("owner-a");
      assert.notEqual(first, null, "held once asked");
      assert.equal(await holder("owner-b"), null, "another key is not");
      // The connection is cut (a database restart, a network blip): the lock goes with it...
      await pool.query("SELECT pg_terminate_backend($1)", [first]);
      await waitFor(async () => (await holder("owner-a")) !== first, 5_000, "the lock gone with its connection");
      // ...and the reconnected listener holds it again.
      await waitFor(async () => (await holder("owner-a")) !== null, 10_000, "the lock taken again after the reconnect");
      assert.notEqual(await holder("owner-a"), first);
      await listener.dropLiveness("owner-a");
      assert.equal(await holder("owner-a"), null, "released");
    } finally {
      await listener.stop();
    }
  });
});
