// scripts/harness/database.ts: a test file's database is dropped after its pools were ended, and
// pg-pool's end() does not wait for its clients' backends to go. Against the local PostgreSQL.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { BASE_DATABASE_URL, createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { testPool } from "../helpers/database.js";

async function exists(tdb: TestDatabase): Promise<boolean> {
  const c = new pg.Client({ connectionString: BASE_DATABASE_URL });
  await c.connect();
  try {
    return (await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [tdb.name])).rowCount === 1;
  } finally {
    await c.end();
  }
}

describe("dropping a test database", () => {
  it("lets a pool's client that is still closing close: its pool reports no error", async () => {
    const tdb = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: tdb.url, max: 1 });
    const errors: string[] = [];
    pool.on("error", (err) => errors.push(String(err)));
    const { rows } = await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const pid = rows[0]!.pid;
    // The backend cannot read its client's Terminate until it is resumed, as on a loaded machine.
    process.kill(pid, "SIGSTOP");
    const resume = setTimeout(() => process.kill(pid, "SIGCONT"), 300);
    try {
      await pool.end();
      await tdb.drop();
    } finally {
      clearTimeout(resume);
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 200)); // a late FATAL would be read by now
    assert.deepEqual(errors, [], "the pool reported its client's backend ended under it");
    assert.equal(await exists(tdb), false, "the database is gone");
  });

  it("ends a connection that stays open, and drops the database", async () => {
    const tdb = await createTestDatabase();
    const client = new pg.Client({ connectionString: tdb.url });
    const errors: string[] = [];
    client.on("error", (err) => errors.push(String(err)));
    await client.connect();
    const started = Date.now();
    await tdb.drop();
    const tookMs = Date.now() - started;
    assert.equal(await exists(tdb), false, "the database is gone");
    await new Promise((r) => setTimeout(r, 200));
    assert.match(errors.join(" "), /terminating connection due to administrator command/, "the open connection was ended");
    assert.ok(tookMs < 5000, `drop() took ${tookMs} ms`);
    await client.end().catch(() => undefined);
  });
});

describe("testPool (test/helpers/database.ts)", () => {
  it("outlives an idle client's backend ended under it, and its next query connects afresh", async () => {
    const tdb = await createTestDatabase();
    const pool = testPool(tdb.url, 1);
    try {
      const before = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      // Ended from another connection while the pool holds the client idle: the pool drops it and
      // emits "error" (no listener here but testPool's own: without it, the process would end).
      const other = new pg.Client({ connectionString: BASE_DATABASE_URL });
      await other.connect();
      try {
        await other.query("SELECT pg_terminate_backend($1)", [before]);
      } finally {
        await other.end();
      }
      for (const deadline = Date.now() + 5000; pool.totalCount > 0; await new Promise((r) => setTimeout(r, 10))) {
        assert.ok(Date.now() < deadline, "the pool drops the client whose backend ended");
      }
      const after = (await pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      assert.notEqual(after, before, "a new backend");
    } finally {
      await pool.end();
      await tdb.drop();
    }
  });
});
