// A session's last_seen_at is compared with PostgreSQL's clock when the sweep expires sessions
// (Sessions.expire: now() - grace), so it is stamped by that clock too. Sessions.setPresence stamped
// it by the gateway's (new Date()): an instance whose clock ran behind by more than the grace had
// the session expired at the next sweep, one ahead kept it past its grace (the presence audit of
// stop 64). The gateway's clock here runs 5 minutes behind; grace is 60 s.
import { after, before, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import type { Database, Tx } from "../../src/db/client.js";
import { deadSeconds, Sessions } from "../../src/db/sessions.js";
import { suiteDatabase } from "../helpers/database.js";

const SKEW_MS = -5 * 60_000;
const GRACE_S = 60;

describe("a session's last_seen_at, by the database's clock", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let sessions: Sessions;
  let accountId = 0;

  before(async () => {
    db = database();
    sessions = new Sessions(db.prisma, db.pool, deadSeconds(GRACE_S, 15_000));
    accountId = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('clocks') RETURNING id")).rows[0]!.id;
  });
  after(() => mock.timers.reset());

  /** Seconds between the row's last_seen_at and the database's clock now. */
  const age = async (resource: string) =>
    (await db.pool.query<{ s: number }>("SELECT extract(epoch FROM localtimestamp - last_seen_at)::float AS s FROM session WHERE account_id = $1 AND resource = $2", [accountId, resource])).rows[0]!.s;
  /** Runs `f` with the gateway's clock (new Date(), Date.now()) SKEW_MS off. */
  const skewed = async (f: () => Promise<void>) => {
    mock.timers.enable({ apis: ["Date"], now: Date.now() + SKEW_MS });
    try {
      await f();
    } finally {
      mock.timers.reset();
    }
  };
  const inTx = <T>(f: (tx: Tx) => Promise<T>): Promise<T> => db.prisma.$transaction((tx) => f(tx as Tx));
  const presence = (available: boolean) => ({ available, show: available ? "away" : null, status: available ? { en: "out" } : null, priority: available ? 5 : 0 });

  for (const available of [true, false]) {
    it(`a presence (${available ? "available" : "unavailable"}) stamps it by the database's clock`, async () => {
      const resource = `r-${available}`;
      await sessions.streamOpened(accountId, resource);
      await skewed(() => inTx((tx) => sessions.setPresence(tx, accountId, resource, presence(available))));
      const s = await age(resource);
      assert.ok(Math.abs(s) < 5, `last_seen_at is ${s.toFixed(1)} s from the database's now`);
      const row = (await db.pool.query("SELECT available, show, status, priority FROM session WHERE account_id = $1 AND resource = $2", [accountId, resource])).rows[0];
      assert.deepEqual(row, presence(available), "the presence itself is stored");
      if (!available) return; // the sweep expires available sessions only
      // Its stream closed, the session is within its grace: the sweep keeps it.
      await sessions.streamClosed(accountId, resource);
      await skewed(() => inTx((tx) => sessions.setPresence(tx, accountId, resource, presence(available))));
      const swept = await inTx((tx) => sessions.expire(tx, GRACE_S));
      assert.deepEqual(swept.claimed.filter((c) => c.account_id === accountId && c.resource === resource), [], "not expired inside its grace");
      assert.equal((await db.pool.query("SELECT 1 FROM session WHERE account_id = $1 AND resource = $2", [accountId, resource])).rowCount, 1, "the row is still there");
    });
  }

  it("an available presence creates a session that had no row, by the database's clock", async () => {
    await skewed(() => inTx((tx) => sessions.setPresence(tx, accountId, "new", presence(true))));
    const s = await age("new");
    assert.ok(Math.abs(s) < 5, `last_seen_at is ${s.toFixed(1)} s from the database's now`);
  });
});
