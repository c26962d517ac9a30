// Deadlocks between transactions (src/db/client.ts): Postgres aborts one of them; the victim runs
// again and both commit. Provoked for real: two transactions lock two rows in opposite orders.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { isConflict, openDatabase, retryConflicts, type Database } from "../../src/db/client.js";

describe("transactions that deadlock", () => {
  let tdb: TestDatabase;
  let db: Database;

  before(async () => {
    tdb = await createTestDatabase();
    const c = new pg.Client({ connectionString: tdb.url });
    await c.connect();
    await c.query("CREATE TABLE pair (id int PRIMARY KEY, v int NOT NULL); INSERT INTO pair VALUES (1, 0), (2, 0)");
    await c.end();
    db = openDatabase(tdb.url, 4);
  });
  after(async () => {
    await db?.close();
    await tdb?.drop();
  });

  /** Both transactions hold their first row before either asks for its second: a deadlock, the first time. */
  function crossing(run: (first: number, second: number, meet: () => Promise<void>) => Promise<void>) {
    let arrived = 0;
    let release!: () => void;
    const met = new Promise<void>((r) => (release = r));
    let attempts = 0;
    const meet = async () => {
      attempts++;
      if (attempts > 2) return; // a retry runs alone
      if (++arrived === 2) release();
      await met;
    };
    return { both: Promise.allSettled([run(1, 2, meet), run(2, 1, meet)]), attempts: () => attempts };
  }

  it("a raw pg transaction chosen as the victim runs again; both commit", async () => {
    const { both, attempts } = crossing((a, b, meet) =>
      db.sqlTransaction(async (tx) => {
        await tx.query("UPDATE pair SET v = v + 1 WHERE id = $1", [a]);
        await meet();
        await tx.query("UPDATE pair SET v = v + 1 WHERE id = $1", [b]);
      }),
    );
    const results = await both;
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"], JSON.stringify(results));
    assert.equal(attempts(), 3, "one of them ran twice");
    const { rows } = await db.pool.query<{ v: number }>("SELECT v FROM pair ORDER BY id");
    assert.deepEqual(rows.map((r) => r.v), [2, 2], "each committed once");
  });

  it("so does a Prisma transaction", async () => {
    await db.pool.query("UPDATE pair SET v = 0");
    const { both, attempts } = crossing((a, b, meet) =>
      db.transaction(async (tx) => {
        await tx.$executeRawUnsafe("UPDATE pair SET v = v + 1 WHERE id = $1", a);
        await meet();
        await tx.$executeRawUnsafe("UPDATE pair SET v = v + 1 WHERE id = $1", b);
      }),
    );
    const results = await both;
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"], JSON.stringify(results));
    assert.equal(attempts(), 3);
  });

  it("without the retry the same crossing fails one of them with a conflict (the test provokes a real deadlock)", async () => {
    const { both } = crossing((a, b, meet) =>
      retryConflicts(async () => {
        const c = await db.pool.connect();
        try {
          await c.query("BEGIN");
          await c.query("UPDATE pair SET v = v + 1 WHERE id = $1", [a]);
          await meet();
          await c.query("UPDATE pair SET v = v + 1 WHERE id = $1", [b]);
          await c.query("COMMIT");
        } catch (err) {
          await c.query("ROLLBACK").catch(() => undefined);
          throw err;
        } finally {
          c.release();
        }
      }, 1),
    );
    const rejected = (await both).filter((r) => r.status === "rejected");
    assert.equal(rejected.length, 1);
    assert.ok(isConflict((rejected[0] as PromiseRejectedResult).reason), String((rejected[0] as PromiseRejectedResult).reason));
  });
});
