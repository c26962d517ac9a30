// A lock held by a transaction of its own, to stop use cases at a chosen point and order them as a
// race would (test/services/presence-races.test.ts, probe-races.test.ts).
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

/**
 * Opens a transaction on `url` that takes what `lock` takes, and holds it until release().
 * `until(n, what)` waits (5 s at most) for n transactions of that database to wait on a lock.
 */
export async function holdLock(url: string, lock: (c: pg.Client) => Promise<unknown>) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query("BEGIN");
  await lock(c);
  const waiting = async () =>
    (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n;
  return {
    async until(n: number, what: string) {
      const deadline = Date.now() + 5000;
      while ((await waiting()) < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(5);
      }
    },
    async release() {
      await c.query("COMMIT");
      await c.end();
    },
  };
}
