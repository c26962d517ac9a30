// A migrated database of its own for the enclosing suite (node:test's describe), dropped after it.
import { after, before } from "node:test";
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
