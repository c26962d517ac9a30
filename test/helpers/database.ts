// A migrated database of its own for the enclosing suite (node:test's describe), dropped after it.
import { after, before } from "node:test";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";

/** Call inside a describe; the getter is valid in the suite's own before hooks (declared later) and tests. */
export function suiteDatabase(poolSize = 3): () => Database {
  let tdb: TestDatabase;
  let db: Database;
  before(async () => {
    tdb = await createTestDatabase();
    db = openDatabase(tdb.url, poolSize);
    await migrate(db.pool);
  });
  after(async () => {
    await db?.close();
    await tdb?.drop();
  });
  return () => db;
}

/**
 * A raw pg pool for a test's own statements. An idle client whose backend ends (a test that ends
 * backends, the sweep of stale listeners) makes the pool emit "error", which with no listener
 * would end the test process: the pool drops that client and connects afresh on the next query,
 * and a query in flight rejects on its own, so the listener only keeps the event from crashing.
 */
export function testPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on("error", () => undefined);
  return pool;
}
