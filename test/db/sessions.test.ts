// Sessions in PostgreSQL: the purge of those gone for good (Sessions.purgeStale), and liveness
// (Sessions.touchMany, once per heartbeat for every session with an open stream):
// with room left on each page (migration 20261202130000) the update is HOT, i.e. the new row
// version stays on its page and no index entry is written. The test checks the room with one
// heartbeat. The next ones also need the page to prune the versions the last one left dead, which
// any transaction open in the cluster since then holds back: 15 s apart, as in the gateway, that is
// rare (bench/streams.ts counts the HOT updates: all of them in its runs), but back to back beside
// other test files it was not.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { Database } from "../../src/db/client.js";
import { deadSeconds, Sessions } from "../../src/db/sessions.js";
import { suiteDatabase } from "../helpers/database.js";

const SESSIONS = 2000;

describe("session liveness writes", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let sessions: Sessions;
  let accountId = 0;

  before(async () => {
    db = database();
    // The gateway's defaults: a count untouched for 60 s is of streams that died with their instance.
    sessions = new Sessions(db.prisma, db.pool, deadSeconds(60, 15_000));
    accountId = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('liveness') RETURNING id")).rows[0]!.id;
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

  it("purgeStale forgets sessions gone for good (unavailable, no stream open, not seen since the cut), and only those", async () => {
    const { rows } = await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('purge') RETURNING id");
    const id = rows[0]!.id;
    const DAY = 24 * 3600;
    // [resource, available, streams, last seen how many seconds ago]
    const made: [string, boolean, number, number][] = [
      ["gone", false, 0, 10 * DAY],
      ["recent", false, 0, DAY],
      ["available", true, 0, 10 * DAY],
      // Its stream was counted on an instance that died: nobody touched it for far longer than 60 s.
      ["dead-stream", false, 1, 10 * DAY],
      // A stream open now (touched 5 s ago), against a cut more recent than that.
      ["live-stream", false, 1, 5],
    ];
    for (const [resource, available, streams, secs] of made) {
      await db.pool.query("INSERT INTO session (account_id, resource, available, streams, last_seen_at) VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5))", [id, resource, available, streams, secs]);
    }
    const left = async () => (await db.pool.query<{ resource: string }>("SELECT resource FROM session WHERE account_id = $1 ORDER BY resource", [id])).rows.map((r) => r.resource);
    assert.equal(await sessions.purgeStale(new Date(Date.now() - 7 * DAY * 1000)), 2);
    assert.deepEqual(await left(), ["available", "live-stream", "recent"]);
    assert.equal(await sessions.purgeStale(new Date(Date.now() - 1000)), 1);
    assert.deepEqual(await left(), ["available", "live-stream"], "a stream open now keeps its session whatever the cut");
  });
});

// expire() looks at every session in the database, so these get a database of their own.
describe("streams counted on an instance that died", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let sessions: Sessions;
  /** A count untouched for this long is of streams that died; a stream-less session expires after GRACE. */
  const DEAD = 5;
  const GRACE = 2;

  before(async () => {
    db = database();
    sessions = new Sessions(db.prisma, db.pool, DEAD);
  });

  /** An account with these sessions: [resource, available, streams, last seen how many seconds ago]. */
  async function account(localpart: string, rows: [string, boolean, number, number][]): Promise<number> {
    const id = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ($1) RETURNING id", [localpart])).rows[0]!.id;
    for (const [resource, available, streams, secs] of rows) {
      await db.pool.query("INSERT INTO session (account_id, resource, available, streams, last_seen_at) VALUES ($1, $2, $3, $4, now() - make_interval(secs => $5))", [id, resource, available, streams, secs]);
    }
    return id;
  }
  const state = async (id: number) =>
    Object.fromEntries((await sessions.list(id)).map((s) => [s.resource, { available: s.available, streams: s.streams, closed: s.streamClosedAt === null ? null : s.streamClosedAt.getTime() === s.lastSeenAt.getTime() ? "when last seen" : "later" }]));

  it("reachable does not trust a streams count nobody touched for the dead threshold", async () => {
    const id = await account("reach", [
      ["dead", false, 1, 10],
      ["live", false, 1, 1],
      ["away", true, 0, 10],
      ["idle", false, 0, 1],
    ]);
    const got = Object.fromEntries(await Promise.all(["dead", "live", "away", "idle", "none"].map(async (r) => [r, await sessions.reachable(id, r)] as const)));
    assert.deepEqual(got, { dead: false, live: true, away: true, idle: false, none: false });
  });

  it("expire: a count untouched for the dead threshold goes to 0, available or not, closed when last seen; a live count stays; each session once", async () => {
    const id = await account("expire", [
      ["phone", true, 1, 10], // available, its stream's instance died
      ["tablet", false, 2, 10], // unavailable (or never set presence), two streams on the dead instance
      ["laptop", true, 1, 1], // a live stream on another instance: touched at its last heartbeat
      ["watch", true, 0, 3], // no stream for longer than the grace period
      ["idle", false, 0, 10], // nothing to do
    ]);
    // This account's claims (the other tests' sessions are in the database too).
    const expire = async () => (await db.transaction((tx) => sessions.expire(tx, GRACE))).claimed.filter((r) => r.account_id === id);
    const claimed = (await expire()).map((r) => `${r.resource} ${r.available}`).sort();
    assert.deepEqual(claimed, ["phone true", "tablet false", "watch true"], "the available ones are the ones to broadcast");
    assert.deepEqual(await state(id), {
      phone: { available: false, streams: 0, closed: "when last seen" },
      tablet: { available: false, streams: 0, closed: "when last seen" },
      laptop: { available: true, streams: 1, closed: null },
      watch: { available: false, streams: 0, closed: null },
      idle: { available: false, streams: 0, closed: null },
    });
    assert.deepEqual(await expire(), [], "each session is claimed once");

    // The dead instance was only stalled: its late close finds the count at 0 and leaves it there.
    await sessions.streamsClosed([{ accountId: id, resource: "tablet", n: 2, deliveredSeq: 7 }]);
    const tablet = (await sessions.list(id)).find((s) => s.resource === "tablet")!;
    assert.deepEqual([tablet.streams, tablet.deliveredSeq], [0, 7]);
    // A session whose streams were written off is not taken for one that never had a stream: a
    // new stream on it resumes where it left off (0 here), not after the account's other sessions.
    await db.pool.query("UPDATE session SET delivered_seq = 3 WHERE account_id = $1 AND resource = 'laptop'", [id]);
    const [phone] = await sessions.streamsOpened([{ accountId: id, resource: "phone", n: 1 }]);
    assert.equal(phone!.deliveredSeq, 0);
    assert.equal((await state(id)).phone!.streams, 1);
  });

  it("expire takes the accounts' locks before it claims: an account deleted meanwhile is skipped, a session set meanwhile is checked again", async () => {
    const gone = await account("expire-gone", [["phone", true, 0, 10]]);
    const back = await account("expire-back", [["phone", true, 0, 10]]);
    const other = await account("expire-other", [["phone", true, 0, 10]]);
    // Another transaction holds two of the accounts, as a roster or presence use case would.
    const locker = new pg.Client({ connectionString: db.pool.options.connectionString });
    await locker.connect();
    let claims: Promise<{ account_id: number; resource: string }[]>;
    try {
      await locker.query("BEGIN");
      await locker.query("SELECT id FROM account WHERE id = ANY($1) ORDER BY id FOR UPDATE", [[gone, back]]);
      claims = db.transaction(async (tx) => (await sessions.expire(tx, GRACE)).claimed);
      const waiting = async () => (await locker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n;
      for (const deadline = Date.now() + 5000; (await waiting()) === 0; ) {
        assert.ok(Date.now() < deadline, "expire waits for the account lock");
        await new Promise((r) => setTimeout(r, 5));
      }
      await locker.query("DELETE FROM account WHERE id = $1", [gone]);
      await locker.query("UPDATE session SET last_seen_at = now() WHERE account_id = $1", [back]); // a PUT /v1/presence
      await locker.query("COMMIT");
    } finally {
      await locker.end();
    }
    const mine = (await claims!).filter((r) => [gone, back, other].includes(r.account_id));
    assert.deepEqual(mine.map((r) => [r.account_id, r.resource]), [[other, "phone"]]);
    assert.equal((await state(back)).phone!.available, true);
  });

  it("expire's account locks hold back no insert for those accounts, and one claim takes at most `accounts` of them", async () => {
    const ids = [await account("expire-chunk-a", [["phone", true, 0, 10]]), await account("expire-chunk-b", [["phone", true, 0, 10]])];
    // Only these two are due (the other tests' sessions seen just now).
    await db.pool.query("UPDATE session SET last_seen_at = now() WHERE NOT account_id = ANY($1)", [ids]);
    const other = new pg.Client({ connectionString: db.pool.options.connectionString });
    await other.connect();
    try {
      const first = await db.transaction(async (tx) => {
        const { locked, claimed } = await sessions.expire(tx, GRACE, 1);
        assert.equal(locked, 1);
        // While the claim's transaction is open (a broadcast under way): a new session of the
        // account (its foreign key's lock on the account row) goes in without waiting for it.
        await other.query("SET lock_timeout = '2s'");
        await other.query("INSERT INTO session (account_id, resource) VALUES ($1, 'new')", [claimed[0]!.account_id]);
        return claimed;
      });
      assert.deepEqual(first.map((r) => r.account_id), [ids[0]], "the first account only");
      const second = (await db.transaction((tx) => sessions.expire(tx, GRACE, 1))).claimed;
      assert.deepEqual(second.map((r) => r.account_id), [ids[1]], "the next one in the next claim");
    } finally {
      await other.end();
    }
  });
});
