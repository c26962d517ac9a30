// Sessions in PostgreSQL: the purge of those gone for good (Sessions.purgeStale), and liveness
// (Sessions.touchMany, once per heartbeat for every session with an open stream):
// with room left on each page (migration 20261202130000) the update is HOT, i.e. the new row
// version stays on its page and no index entry is written. The test checks the room with one
// heartbeat. The next ones also need the page to prune the versions the last one left dead, which
// any transaction open in the cluster since then holds back: 15 s apart, as in the gateway, that is
// rare (bench/streams.ts counts the HOT updates: all of them in its runs), but back to back beside
// other test files it was not.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { Sessions } from "../../src/db/sessions.js";

const SESSIONS = 2000;

describe("session liveness writes", () => {
  let tdb: TestDatabase;
  let db: Database;
  let sessions: Sessions;
  let accountId = 0;

  before(async () => {
    tdb = await createTestDatabase();
    db = openDatabase(tdb.url, 2);
    await migrate(db.pool);
    sessions = new Sessions(db.prisma, db.pool);
    accountId = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('liveness') RETURNING id")).rows[0]!.id;
  });
  after(async () => {
    await db?.close();
    await tdb?.drop();
  });

  /** resource → the heap page its live row version is on. */
  const pages = async () =>
    new Map((await db.pool.query<{ resource: string; page: number }>("SELECT resource, (ctid::text::point)[0]::int AS page FROM session WHERE account_id = $1", [accountId])).rows.map((r) => [r.resource, r.page]));

  it(`keeps the rows of ${SESSIONS} sessions on their pages through a heartbeat`, async () => {
    const resources = Array.from({ length: SESSIONS }, (_, i) => `phone-${i}`);
    await sessions.streamsOpened(resources.map((resource) => ({ accountId, resource, n: 1 })));
    const before = await pages();
    assert.equal(before.size, SESSIONS);
    await sessions.touchMany(resources.map((resource) => ({ accountId, resource, deliveredSeq: 1 })));
    const after = await pages();
    // At most 1% (at fillfactor 100 every row moved).
    const moved = [...before].filter(([resource, page]) => after.get(resource) !== page).length;
    assert.ok(moved <= SESSIONS / 100, `${moved} of ${SESSIONS} rows left their page`);
    // The heartbeat did write: every session records its cursor.
    const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM session WHERE account_id = $1 AND delivered_seq = 1", [accountId]);
    assert.equal(Number(rows[0]!.n), SESSIONS);
  });

  it("purgeStale forgets sessions gone for good (unavailable, no stream, not seen since the cut), and only those", async () => {
    const { rows } = await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('purge') RETURNING id");
    const id = rows[0]!.id;
    // [resource, available, streams, last seen how many days ago]
    const made: [string, boolean, number, number][] = [
      ["gone", false, 0, 10],
      ["recent", false, 0, 1],
      ["available", true, 0, 10],
      ["streaming", false, 1, 10],
    ];
    for (const [resource, available, streams, days] of made) {
      await db.pool.query("INSERT INTO session (account_id, resource, available, streams, last_seen_at) VALUES ($1, $2, $3, $4, now() - make_interval(days => $5))", [id, resource, available, streams, days]);
    }
    assert.equal(await sessions.purgeStale(new Date(Date.now() - 7 * 24 * 3600_000)), 1);
    const left = await db.pool.query<{ resource: string }>("SELECT resource FROM session WHERE account_id = $1 ORDER BY resource", [id]);
    assert.deepEqual(left.rows.map((r) => r.resource), ["available", "recent", "streaming"]);
  });
});
