// The link holder's VACUUM of the queue tables (src/db/outbox.ts tidyQueue) runs while messages are
// being sent, so it must never need more than the lock an insert leaves free. By default VACUUM
// also truncates a table's empty tail, which needs an ACCESS EXCLUSIVE lock: it waits for it in
// 50 ms steps (up to 5 s) and, while it holds it, any insert has to wait. The queue tables keep
// their pages (migration 20261202160000), so the vacuum neither waits nor blocks.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { tidyQueue } from "../../src/db/outbox.js";

describe("tidying the outbound queue", () => {
  let tdb: TestDatabase;
  let db: Database;

  before(async () => {
    tdb = await createTestDatabase();
    db = openDatabase(tdb.url, 3);
    await migrate(db.pool);
  });
  after(async () => {
    await db?.close();
    await tdb?.drop();
  });

  const vacuums = async () =>
    (await db.pool.query<{ relname: string; n: string }>("SELECT relname, vacuum_count AS n FROM pg_stat_user_tables WHERE relname IN ('message_queue', 'outbox') ORDER BY relname")).rows.map(
      (r) => `${r.relname} ${r.n}`,
    );

  it("vacuums both tables while a sender holds them, without waiting for it", async () => {
    // A queue that was long and is empty now: 5,000 rows sent, i.e. deleted (a tail of empty
    // pages, which VACUUM would otherwise try to truncate).
    await db.pool.query("INSERT INTO message_queue (seq, message_id) SELECT g, gen_random_uuid() FROM generate_series(1, 5000) g");
    await db.pool.query("INSERT INTO outbox (seq, account_id, stanza) SELECT g, NULL, '{}'::json FROM generate_series(5001, 7000) g");
    await db.pool.query("DELETE FROM message_queue");
    await db.pool.query("DELETE FROM outbox");
    assert.deepEqual(await vacuums(), ["message_queue 0", "outbox 0"]);

    // A sending transaction in progress holds the lock an insert takes, as under steady sending.
    const sender = await db.pool.connect();
    try {
      await sender.query("BEGIN");
      await sender.query("LOCK TABLE message_queue, outbox IN ROW EXCLUSIVE MODE");
      const started = performance.now();
      await tidyQueue(db.pool);
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `the vacuum took ${ms.toFixed(0)} ms beside a sender (it waited for a lock)`);
    } finally {
      await sender.query("ROLLBACK");
      sender.release();
    }
    // It did vacuum: VACUUM reports to the statistics at once.
    assert.deepEqual(await vacuums(), ["message_queue 1", "outbox 1"]);
  });
});
