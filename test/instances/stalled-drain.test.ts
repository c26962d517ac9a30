// With XMPP_LINK_MODE=all every instance drains the outbox in turn: a drain step takes an advisory
// lock for the length of its transaction (src/db/outbox.ts drainOnce). An instance that hangs
// (SIGSTOP, a stuck event loop) inside a step keeps that transaction open, and with it the lock:
// every other instance's drain waited behind it, and nothing more went out until it resumed.
// PostgreSQL now ends a drain transaction left idle past the confirmation wait plus
// XMPP_LINK_LEASE_TIMEOUT (idle_in_transaction_session_timeout, set for that transaction only).
// Three gateway processes on one database behind HAProxy, on ejabberd, a real XMPP user; the hang
// is a real SIGSTOP, caught inside a drain step by looking at who holds the lock in pg_locks.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createAccount } from "../../scripts/harness/cluster.js";
import { checkDelivered, newPostLog, postUntilAccepted, sleep, startTestbed, waitForBodies, withReport, type Testbed } from "./helpers.js";

const LEASE_TIMEOUT_MS = 3000;
/** How long a drain transaction may sit idle: the 10 s confirmation wait plus the lease timeout. */
const DRAIN_IDLE_LIMIT_MS = 10_000 + LEASE_TIMEOUT_MS;
/** Beyond the limit: the next drain step, its barrier, juliet's client. */
const RESUME_LIMIT_MS = DRAIN_IDLE_LIMIT_MS + 7000;
const ENV = {
  XMPP_LINK_MODE: "all",
  XMPP_LINK_LEASE_TIMEOUT: `${LEASE_TIMEOUT_MS}ms`,
  SESSION_GRACE_SECONDS: "600",
  RATE_LIMIT_PER_ACCOUNT: "0",
  RATE_LIMIT_PER_IP: "0",
};
const JULIET_JID = "juliet@localhost";
/** src/db/outbox.ts DRAIN_TURN_KEY: "balcony", "drain turn". */
const DRAIN_TURN_KEY = [0x42a1c0, 0x11c5];

/** The process that owns the local end of a TCP connection from `port` (ss), or null. */
function ownerOfPort(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    execFile("ss", ["-Htnp", "state", "established", `( sport = :${port} )`], (error, stdout) => {
      if (error) return reject(error);
      const pid = /pid=(\d+)/.exec(stdout)?.[1];
      resolve(pid === undefined ? null : Number(pid));
    });
  });
}

/** Who holds the drain turn now: its backend's client port, state and idle time. */
async function turnHolder(db: pg.Client): Promise<{ port: number; state: string; idleMs: number } | null> {
  const { rows } = await db.query<{ port: number; state: string; idle_ms: number }>(
    `SELECT a.client_port AS port, a.state, (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::float8 AS idle_ms
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2 AND l.granted
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    DRAIN_TURN_KEY,
  );
  const r = rows[0];
  return r ? { port: r.port, state: r.state, idleMs: r.idle_ms } : null;
}

describe("an instance that hangs inside a drain step does not stop the others' (ejabberd, XMPP_LINK_MODE=all)", () => {
  let bed: Testbed;
  let db: pg.Client;
  before(async () => {
    bed = await startTestbed("ejabberd", { env: ENV });
    db = new pg.Client({ connectionString: bed.db.url });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await bed?.stop();
  });

  it("PostgreSQL ends the hung step's transaction; what is posted meanwhile reaches juliet within the limit; every message arrives, the first copies in order", () =>
    withReport(bed, "stalled-drain", async () => {
      await bed.cluster.waitStable(20_000, "all");
      const victim = bed.cluster.instances[0]!;
      const victimPid = victim.proc!.child.pid!;
      const prefix = `d${randomBytes(3).toString("hex")}`;
      const token = await createAccount(bed.lb, prefix);
      const log = newPostLog();
      const juliet = bed.juliet;
      const keys: string[] = [];
      /** When each key's first POST started: a post that began before the hang may have reached the victim, which then wrote it. */
      const startedAt = new Map<string, number>();
      // One sender posting one message after another, so juliet's first copies have one order to keep.
      let posting = true;
      const poster = (async () => {
        for (let n = 0; posting; n++) {
          const key = `${prefix}-${String(n).padStart(4, "0")}`;
          startedAt.set(key, Date.now());
          await postUntilAccepted(bed.lb, token, key, JULIET_JID, key, log, Date.now() + 90_000);
          keys.push(key);
        }
      })();
      // Awaited below; a poster that stops (an unexpected answer) is reported with whatever failed after it.
      let posterFailure: unknown = null;
      poster.catch((err: unknown) => (posterFailure = err));
      let stopped = false;
      try {
        await waitForBodies(juliet, [`${prefix}-0000`], 10_000);
        // SIGSTOP the victim until it is caught inside a drain step: holding the turn, idle in its transaction.
        let caught: { port: number; state: string; idleMs: number } | null = null;
        let attempts = 0;
        while (!caught) {
          assert.ok(++attempts <= 60, `the victim was never caught inside a drain step in ${attempts - 1} tries`);
          victim.proc!.child.kill("SIGSTOP");
          stopped = true;
          await sleep(300);
          const h = await turnHolder(db);
          if (h && h.state === "idle in transaction" && (await ownerOfPort(h.port)) === victimPid) caught = h;
          else {
            victim.proc!.child.kill("SIGCONT");
            stopped = false;
            await sleep(100 + Math.random() * 400);
          }
        }
        const caughtAt = Date.now();
        console.log(`[stalled-drain] ${victim.name} SIGSTOPped inside a drain step after ${attempts} tries (its backend idle in transaction for ${Math.round(caught.idleMs)} ms, holding the turn)`);

        // Something posted after the hang must go out once PostgreSQL has ended the hung step. Not
        // a post begun before it: one the victim took just before the SIGSTOP, answered only to
        // its retry on another instance, may be in the batch the victim wrote (the run says so).
        const postedAfter = () => keys.find((k) => startedAt.get(k)! > caughtAt);
        while (!postedAfter()) {
          assert.ok(Date.now() - caughtAt < 30_000, "no post begun after the hang was accepted within 30 s of it");
          await sleep(50);
        }
        const after = postedAfter()!;
        await waitForBodies(juliet, [after], RESUME_LIMIT_MS + 5000).catch(() => undefined);
        const gotAfterMs = juliet.stanzas.some((s) => s.is("message") && s.getChildText("body") === after) ? Date.now() - caughtAt : null;
        const still = await turnHolder(db);
        const victimStillHolds = still !== null && (await ownerOfPort(still.port)) === victimPid;
        console.log(`[stalled-drain] ${after} (posted after the hang) reached juliet after ${gotAfterMs ?? "never"} ms; the victim still holds the turn: ${victimStillHolds}`);
        assert.ok(gotAfterMs !== null && gotAfterMs <= RESUME_LIMIT_MS, `a message posted after the hang reaches juliet within ${RESUME_LIMIT_MS} ms (got: ${gotAfterMs ?? "never"})`);
        assert.equal(victimStillHolds, false, "the hung step's transaction was ended");

        // The victim resumes (its ended session costs it one failed step, not the process) and
        // serves again; the posts stop; a sentinel closes the run.
        victim.proc!.child.kill("SIGCONT");
        stopped = false;
        await bed.cluster.waitStable(20_000, "all");
        assert.equal(victim.proc!.child.exitCode, null, `${victim.name} is still running after SIGCONT`);
        await sleep(1000);
        posting = false;
        await poster;
        const sentinel = `${prefix}-sentinel`;
        await postUntilAccepted(bed.lb, token, sentinel, JULIET_JID, sentinel, log, Date.now() + 30_000);
        await waitForBodies(juliet, [sentinel], 20_000);
        await sleep(500);
        const { resends, problems } = checkDelivered(juliet, log, keys, (k) => k);
        assert.deepEqual(problems, [], "every message accepted once, delivered, with its one id");
        const posted = new Set(keys);
        const first = [...new Set(juliet.stanzas.filter((s) => s.is("message")).map((s) => s.getChildText("body") ?? "").filter((b) => posted.has(b)))];
        assert.ok(keys.indexOf(after) < keys.length - 1, "posts went on after the one posted after the hang");
        assert.deepEqual(first, keys, "juliet's first copies come in the order posted");
        console.log(`[stalled-drain] ${keys.length} messages, each delivered; ${resends} sent again (those the hung step had written); ${log.failures} post retries`);
      } catch (err) {
        // A wait that failed because the poster had stopped says why it stopped (its status and body).
        if (posterFailure !== null) throw new Error(`the poster stopped: ${String(posterFailure)}; then: ${String(err)}`, { cause: err });
        throw err;
      } finally {
        posting = false;
        if (stopped) victim.proc?.child.kill("SIGCONT");
      }
    }));
});
