// In-process caches of rows (accounts, blocklists) are forgotten when another instance changes the
// row (NOTIFY on the cache channel). A read that was in flight when the notification came may
// have read the row as it was before: it must not be cached, or the instance would use the old
// row until the cache's TTL (an account deleted elsewhere still served; a JID blocked elsewhere
// still let through). Provoked for real: the reads go through a relay that holds PostgreSQL's
// answers while the change commits and its notification arrives.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { Accounts } from "../../src/db/accounts.js";
import { Blocklists } from "../../src/db/blocklist.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { CHANNELS, Notifications } from "../../src/db/notify.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

describe("row caches and a change notified while a read is in flight", () => {
  let tdb: TestDatabase;
  let relay: TcpRelay;
  let db: Database;
  let other: pg.Client;
  let notifications: Notifications;
  const heard: string[] = [];

  before(async () => {
    tdb = await createTestDatabase();
    const direct = openDatabase(tdb.url, 1);
    await migrate(direct.pool);
    await direct.close();
    const url = new URL(tdb.url);
    relay = new TcpRelay(Number(url.port || 5432));
    url.port = String(await relay.listen());
    db = openDatabase(url.toString(), 2);
    // "Another instance": its own connection, straight to PostgreSQL.
    other = new pg.Client({ connectionString: tdb.url });
    await other.connect();
    notifications = new Notifications(tdb.url, () => undefined);
    await notifications.start();
    notifications.on(CHANNELS.cache, (p) => heard.push(p ?? "(reconnect)"));
  });
  after(async () => {
    await notifications?.stop();
    await other?.end();
    relay?.hold(false);
    await db?.close();
    relay?.close();
    await tdb?.drop();
  });

  /** Starts `read` with PostgreSQL's answers held, commits `change` elsewhere, waits for its notification, then releases the answer. */
  async function changeDuring<T>(read: () => Promise<T>, change: string, payload: string): Promise<T> {
    relay.hold(true);
    const pending = read();
    // The read's statement reaches PostgreSQL and runs (on the old row) before the change commits.
    await new Promise((r) => setTimeout(r, 200));
    await other.query(`BEGIN; ${change}; SELECT pg_notify('${CHANNELS.cache}', '${payload}'); COMMIT`);
    await waitFor(() => heard.includes(payload), 5000, `the notification ${payload}`);
    relay.hold(false);
    return pending;
  }

  it("an account deleted elsewhere is not cached by a lookup that read it before the deletion", async () => {
    const accounts = new Accounts(db.prisma);
    accounts.listen(notifications);
    const created = await accounts.create("ghost");
    accounts.forget("ghost");
    await changeDuring(() => accounts.find("ghost"), `DELETE FROM account WHERE id = ${created.id}`, "account:ghost");
    assert.equal(await accounts.find("ghost"), null, "the deleted account is not served from the cache");
  });

  it("concurrent lookups that share the read the notification aborts all read again: none fails", async () => {
    // lru-cache tells only the lookup that started a read that it was aborted; the one that joined
    // it got the abort as its error (a 500 on an API request that merely found its account).
    const accounts = new Accounts(db.prisma);
    accounts.listen(notifications);
    const created = await accounts.create("twin");
    accounts.forget("twin");
    const both = await changeDuring(() => Promise.allSettled([accounts.find("twin"), accounts.find("twin")]), `DELETE FROM account WHERE id = ${created.id}`, "account:twin");
    assert.deepEqual(
      both.map((r) => (r.status === "fulfilled" ? r.value : `rejected: ${(r.reason as Error).message}`)),
      [null, null],
      "both lookups read the account again, after the deletion",
    );
  });

  it("a JID blocked elsewhere is not hidden by a blocklist read from before the change", async () => {
    const blocklists = new Blocklists(db.prisma);
    blocklists.listen(notifications);
    const { id } = await new Accounts(db.prisma).create("guarded");
    assert.deepEqual([...(await blocklists.of(id))], [], "nothing blocked at first (and cached)");
    blocklists.forget(id);
    await changeDuring(() => blocklists.of(id), `INSERT INTO block (account_id, jid) VALUES (${id}, 'tybalt@example.com')`, `block:${id}`);
    assert.deepEqual([...(await blocklists.of(id))], ["tybalt@example.com"], "the new block is seen at once");
  });
});
