// startGateway (src/gateway.ts) in process, failing before it listens: it lets go of what it opened
// so far (src/opened.ts), so a caller that catches the error (a test, a program embedding the
// gateway) keeps no connection to PostgreSQL. The failure is a real one an operator meets:
// DATABASE_URL names a database that already has a table of its own where the first migration
// creates one. Against a real PostgreSQL; the listen's own failure is test/scripts/listen-errors.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { startGateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { createTestDatabase, type TestDatabase } from "../scripts/harness/database.js";
import { JWT_SECRET } from "../scripts/harness/gateway-process.js";
import { waitFor } from "./helpers/gateway.js";

describe("startGateway failing before it listens", () => {
  let db: TestDatabase;
  let watcher: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    watcher = new pg.Client({ connectionString: db.url });
    await watcher.connect();
    // Not the gateway's: the init migration's CREATE TABLE "account" fails on it.
    await watcher.query(`CREATE TABLE "account" (name text)`);
  });
  after(async () => {
    await watcher?.end();
    await db?.drop();
  });

  /**
   * Backends on the test database: the watcher's own (`self`), which shows the query sees them,
   * and any of the gateway's (its pool's, the LISTEN connection, the lease's).
   */
  const backends = async () =>
    (await watcher.query<{ app: string; self: boolean }>("SELECT application_name AS app, pid = pg_backend_pid() AS self FROM pg_stat_activity WHERE datname = $1 ORDER BY self", [db.name])).rows;

  it("a migration that fails: the error is the caller's, and no connection of the gateway is left (well before the pool's 10 s idle timeout)", async () => {
    const warnings: string[] = [];
    const logger = createLogger("warn", { write: (line: string) => void warnings.push(line) });
    // No XMPP server: the start never gets that far.
    const config = loadConfig({ PORT: "0", DATABASE_URL: db.url, XMPP_DOMAIN: "gw.localhost", XMPP_SECRET: "unused", JWT_SECRET, DB_POOL_MAX: "3" });
    await assert.rejects(startGateway(config, logger), /migration \S+_init failed: relation "account" already exists/);
    let left: { app: string; self: boolean }[] = [];
    await waitFor(async () => (left = await backends()).length === 1, 3000, "the gateway's connections to end").catch(() => undefined);
    assert.deepEqual(left, [{ app: "", self: true }], "the watcher alone: no backend of the gateway (pool, LISTEN, lease) on its database");
    assert.deepEqual(warnings, [], "every release step succeeded");
  });
});
