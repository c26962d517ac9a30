// The marks of sessions DELETE ended (src/db/session-ends.ts): a stream resuming such a session is
// refused for the window only, only while nothing opened the session again, and the janitor's
// purge drops the marks past the window and no others. Ages are set in the table (PostgreSQL's
// clock, as the gateway's queries use), so no test waits out a window.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Database } from "../../src/db/client.js";
import { endedLately, endedWindowSeconds, purgeSessionEnds, recentSessionEnds, recordSessionEnd, undoResumedOpen } from "../../src/db/session-ends.js";
import { deadSeconds, Sessions } from "../../src/db/sessions.js";
import { suiteDatabase } from "../helpers/database.js";

describe("ended sessions' marks", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let sessions: Sessions;
  let accountId = 0;

  before(async () => {
    db = database();
    sessions = new Sessions(db.prisma, db.pool, deadSeconds(60, 15_000));
    accountId = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('ends') RETURNING id")).rows[0]!.id;
  });

  const age = (resource: string, seconds: number) => db.pool.query("UPDATE session_end SET ended_at = now() - make_interval(secs => $3) WHERE account_id = $1 AND resource = $2", [accountId, resource, seconds]);
  const marked = async () => (await db.pool.query<{ resource: string }>("SELECT resource FROM session_end WHERE account_id = $1 ORDER BY resource", [accountId])).rows.map((r) => r.resource);

  it("the window: the grace period, and at least SSE_RETRY plus a minute", () => {
    assert.equal(endedWindowSeconds(60, 2000), 62, "the defaults");
    assert.equal(endedWindowSeconds(600, 2000), 600, "a longer grace");
    assert.equal(endedWindowSeconds(0, 500), 61, "no grace: a retry rounded up, plus a minute");
  });

  it("Sessions.end marks the session; a resume is refused within the window, not after it, and not once the session is open again", async () => {
    await sessions.streamsOpened([{ accountId, resource: "phone", n: 1 }]);
    assert.equal(await endedLately(db.pool, accountId, "phone", 60), false, "a live session is no ended one");
    assert.deepEqual(await db.prisma.$transaction((tx) => sessions.end(tx, accountId, "phone")), { available: false });
    assert.equal(await endedLately(db.pool, accountId, "phone", 60), true, "just ended");
    await age("phone", 30);
    assert.equal(await endedLately(db.pool, accountId, "phone", 60), true, "30 s ago, inside a 60 s window");
    assert.equal(await endedLately(db.pool, accountId, "phone", 20), false, "30 s ago, past a 20 s window");
    // Ended again: the window starts again.
    await db.prisma.$transaction((tx) => recordSessionEnd(tx, accountId, "phone"));
    assert.equal(await endedLately(db.pool, accountId, "phone", 20), true, "a second end counts from then");
    // Opened again (a fresh stream): its reconnects are its own.
    await sessions.streamsOpened([{ accountId, resource: "phone", n: 1 }]);
    assert.equal(await endedLately(db.pool, accountId, "phone", 60), false, "open again");
    assert.equal(await endedLately(db.pool, accountId, "laptop", 60), false, "never ended");
  });

  it("the purge drops the marks past the window, and only those", async () => {
    for (const r of ["old", "new"]) await db.prisma.$transaction((tx) => recordSessionEnd(tx, accountId, r));
    await age("old", 120);
    await age("new", 10);
    assert.equal(await purgeSessionEnds(db.pool, 60), 1);
    assert.deepEqual((await marked()).filter((r) => r !== "phone"), ["new"]);
  });

  it("a stream open tells whether it made the session's row; a resume's row made after an end is undone, unless its credential is newer, the session is in use again, or the end is past the window", async () => {
    const id = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('resumes') RETURNING id")).rows[0]!.id;
    const open = async (resource: string) => (await sessions.streamsOpened([{ accountId: id, resource, n: 1 }]))[0]!.inserted;
    const end = (resource: string) => db.prisma.$transaction((tx) => sessions.end(tx, id, resource));
    const rows = async () => (await db.pool.query<{ resource: string }>("SELECT resource FROM session WHERE account_id = $1 ORDER BY resource", [id])).rows.map((r) => r.resource);
    const undo = (resource: string, issuedAt: number | null = null) => undoResumedOpen(db.pool, id, resource, 60, issuedAt);
    // A batch with a new session and an existing one: each told apart.
    assert.equal(await open("a"), true, "new");
    assert.deepEqual((await sessions.streamsOpened([{ accountId: id, resource: "a", n: 1 }, { accountId: id, resource: "b", n: 1 }])).map((o) => o.inserted), [false, true]);
    for (const r of ["a", "b", "c", "d"]) {
      if (r === "c" || r === "d") await open(r);
      await end(r);
      assert.equal(await open(r), true, `${r}: made again after its end`);
    }
    assert.equal(await undo("z"), false, "no such session");
    assert.equal(await undo("a", Date.now() + 2000), false, "a credential issued after the end");
    await db.pool.query("UPDATE session SET available = true WHERE account_id = $1 AND resource = 'b'", [id]);
    assert.equal(await undo("b"), false, "an available presence set on it since");
    await open("c");
    assert.equal(await undo("c"), false, "another stream on it since");
    await db.pool.query("UPDATE session_end SET ended_at = now() - interval '61 seconds' WHERE account_id = $1 AND resource = 'd'", [id]);
    assert.equal(await undo("d"), false, "ended past the window");
    assert.deepEqual(await rows(), ["a", "b", "c", "d"], "none undone so far");
    assert.equal(await undo("a"), true, "made by a resume after its end");
    assert.deepEqual(await rows(), ["b", "c", "d"]);
  });

  it("the marks inside the window, with whether the session has a row again", async () => {
    const id = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('recent') RETURNING id")).rows[0]!.id;
    for (const r of ["gone", "back", "old"]) {
      await sessions.streamsOpened([{ accountId: id, resource: r, n: 1 }]);
      await db.prisma.$transaction((tx) => sessions.end(tx, id, r));
    }
    await sessions.streamsOpened([{ accountId: id, resource: "back", n: 1 }]);
    await db.pool.query("UPDATE session_end SET ended_at = now() - interval '30 seconds' WHERE account_id = $1 AND resource = 'gone'", [id]);
    await db.pool.query("UPDATE session_end SET ended_at = now() - interval '61 seconds' WHERE account_id = $1 AND resource = 'old'", [id]);
    const marks = (await recentSessionEnds(db.pool, 60, 1000)).filter((m) => m.accountId === id);
    assert.deepEqual(marks.map((m) => [m.resource, m.gone]), [["back", false], ["gone", true]], "newest first, the old one left out");
    assert.ok(marks[1]!.ageMs >= 29_000 && marks[1]!.ageMs < 40_000, `its age: ${marks[1]!.ageMs} ms`);
  });
});
