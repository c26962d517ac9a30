// isDatabaseDown (src/db/errors.ts) on the errors a real PostgreSQL gives: a database that takes no
// connections now, or has no connection slot left, is "down" (HTTP 503 with Retry-After, an XMPP
// wait error: try again later); a bad statement is not (500: retrying will not help).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { openDatabase } from "../../src/db/client.js";
import { AccountVanished, isAccountGone, isDatabaseDown } from "../../src/db/errors.js";

/** The error a new connection to `url` gets (fails the test if it connects). */
async function connectError(url: string): Promise<unknown> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
  } catch (err) {
    return err;
  }
  await c.end();
  assert.fail(`${url} took a connection`);
}

describe("isDatabaseDown", () => {
  let db: TestDatabase;
  let admin: pg.Client;
  const role = `balcony_r_${randomBytes(4).toString("hex")}`;

  before(async () => {
    db = await createTestDatabase();
    // On another database: PostgreSQL will not stop connections to the one a session is in.
    const base = new URL(db.url);
    base.pathname = "/postgres";
    admin = new pg.Client({ connectionString: base.toString() });
    await admin.connect();
  });
  after(async () => {
    await admin?.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await admin?.end();
    await db?.drop();
  });

  it("a database not accepting connections (ALTER DATABASE … ALLOW_CONNECTIONS false) is down", async () => {
    await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
    try {
      const err = await connectError(db.url);
      assert.equal((err as { code?: string }).code, "55000", String(err));
      assert.equal(isDatabaseDown(err), true, String(err));
    } finally {
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
    }
  });

  it("no connection slot left (53300, too many connections) is down", async () => {
    await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
    const u = new URL(db.url);
    u.username = role;
    const err = await connectError(u.toString());
    assert.equal((err as { code?: string }).code, "53300", String(err));
    assert.equal(isDatabaseDown(err), true, String(err));
    // Most routes read through Prisma, whose driver adapter wraps the same refusal in its own error.
    const refused = openDatabase(u.toString(), 1);
    try {
      const viaPrisma = await refused.prisma.$queryRaw`SELECT 1`.then(() => assert.fail("connected"), (e: unknown) => e);
      assert.equal(isDatabaseDown(viaPrisma), true, `${(viaPrisma as { code?: string }).code}: ${String(viaPrisma)}`);
    } finally {
      await refused.close().catch(() => undefined);
    }
  });

  it("a statement PostgreSQL refuses is not: a syntax error, a failed constraint, another 55000", async () => {
    const refused = async (text: string) => admin.query(text).then(() => assert.fail(`${text} succeeded`), (err: unknown) => err);
    const syntax = await refused("SELEC 1");
    assert.equal((syntax as { code?: string }).code, "42601");
    assert.equal(isDatabaseDown(syntax), false);
    const violated = await refused("SELECT 1/0");
    assert.equal(isDatabaseDown(violated), false);
    // 55000 is also "object not in prerequisite state": only the refused connection counts.
    await admin.query("CREATE TEMPORARY SEQUENCE never_used");
    const prerequisite = await refused("SELECT currval('never_used')");
    assert.equal((prerequisite as { code?: string }).code, "55000");
    assert.equal(isDatabaseDown(prerequisite), false, String(prerequisite));
  });
});

describe("isAccountGone", () => {
  it("is an append for an account that vanished (AccountVanished), itself or as a cause (HTTP: 404, not 500)", () => {
    const vanished = new AccountVanished(7);
    assert.equal(isAccountGone(vanished), true);
    assert.equal(isAccountGone(new Error("transaction failed", { cause: vanished })), true, "wrapped, as a transaction rethrows it");
    assert.equal(isAccountGone(new Error("account 7 vanished while appending an event")), false, "its message alone is not it");
  });
});
