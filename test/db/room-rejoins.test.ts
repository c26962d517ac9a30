// The gateway's rejoins refused for now (src/db/room-rejoins.ts): only a rejoin is kept for later
// (a request's own join is not), the wait doubles up to its cap, and a due rejoin is taken once.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { sql } from "../../src/db/client.js";
import { deferRejoin, markRejoining, rejoinsDue, takeDueRejoins } from "../../src/db/room-rejoins.js";
import { enqueueAhead } from "../../src/db/outbox.js";
import { findRoom, markJoined, recordJoin } from "../../src/db/rooms.js";
import { rejoinWaiting } from "../../src/services/rooms.js";
import { suiteDatabase } from "../helpers/database.js";

const WAIT = { type: "wait", condition: "remote-server-timeout" };
const RETRY: readonly [number, number] = [5_000, 20_000];

describe("rejoins refused for now", () => {
  const database = suiteDatabase(2);
  const tx = <T>(fn: (t: Parameters<Parameters<ReturnType<typeof database>["sqlTransaction"]>[0]>[0]) => Promise<T>) => database().sqlTransaction(fn);
  let accountId = 0;
  /** A room the account is in (joined), and the seconds from now to its row's next rejoin. */
  const joinedRoom = async (room: string) => {
    if (!accountId) accountId = (await tx((t) => sql<{ id: number }>(t, "INSERT INTO account (localpart) VALUES ('friar') RETURNING id", [])))[0]!.id;
    await tx(async (t) => {
      await recordJoin(t, accountId, room, "friar", null, null);
      await markJoined(t, accountId, room, "participant", "member", false);
    });
  };
  const secondsToRejoin = async (room: string) =>
    (await tx((t) => sql<{ s: number }>(t, "SELECT extract(epoch FROM rejoin_at - now())::float8 AS s FROM room WHERE account_id = $1 AND room = $2", [accountId, room])))[0]!.s;

  it("keeps a rejoin for later, twice as long at each refusal up to the cap; a request's join is not kept", async () => {
    await joinedRoom("a@muc");
    await tx((t) => markRejoining(t, { accountId, room: "a@muc" }));
    const waits: number[] = [];
    const firsts: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const later = await tx((t) => deferRejoin(t, accountId, "a@muc", WAIT, RETRY));
      assert.ok(later, `refusal ${i + 1} kept for later`);
      firsts.push(later.first);
      waits.push(Math.round(await secondsToRejoin("a@muc")));
    }
    assert.deepEqual(waits, [5, 10, 20, 20]);
    assert.deepEqual(firsts, [true, false, false, false]);
    const row = await tx((t) => findRoom(t, accountId, "a@muc"));
    assert.deepEqual([row?.status, row?.rejoinAttempts, row?.error], ["joining", 4, WAIT]);
    assert.equal(rejoinWaiting(row), true, "what is sent to the room is refused while the rejoin waits");
    // A reconnect sends the rejoin now, counted afresh: no longer waiting, and its first refusal
    // waits the first step again.
    await tx((t) => markRejoining(t));
    const fresh = await tx((t) => findRoom(t, accountId, "a@muc"));
    assert.deepEqual([fresh?.status, fresh?.rejoinAttempts, rejoinWaiting(fresh)], ["joining", 0, false]);
    const again = await tx((t) => deferRejoin(t, accountId, "a@muc", WAIT, RETRY));
    assert.deepEqual([again?.first, Math.round(await secondsToRejoin("a@muc"))], [true, 5]);

    // A request's join (no rejoin): its refusal is its answer, nothing kept.
    await tx((t) => recordJoin(t, accountId, "b@muc", "friar", null, null));
    assert.equal(await tx((t) => deferRejoin(t, accountId, "b@muc", WAIT, RETRY)), null);
    // Joined again: no rejoin is waiting any more.
    await tx((t) => markJoined(t, accountId, "a@muc", "participant", "member", false));
    assert.equal((await tx((t) => findRoom(t, accountId, "a@muc")))?.rejoinAttempts, null);
    assert.equal(await tx((t) => deferRejoin(t, accountId, "a@muc", WAIT, RETRY)), null);
  });

  it("takes a due rejoin once, and none that is not due", async () => {
    await joinedRoom("c@muc");
    await joinedRoom("d@muc");
    for (const room of ["c@muc", "d@muc"]) {
      await tx((t) => markRejoining(t, { accountId, room }));
      await tx((t) => deferRejoin(t, accountId, room, WAIT, RETRY));
    }
    assert.equal(await tx((t) => rejoinsDue(t)), false, "none due yet");
    assert.deepEqual(await tx((t) => takeDueRejoins(t)), []);
    await tx((t) => sql(t, "UPDATE room SET rejoin_at = now() - interval '1 s' WHERE room = 'c@muc'", []));
    assert.equal(await tx((t) => rejoinsDue(t)), true);
    const [taken, again] = await Promise.all([tx((t) => takeDueRejoins(t)), tx((t) => takeDueRejoins(t))]);
    assert.deepEqual([...taken!, ...again!].map((r) => `${r.room} ${r.localpart} ${r.nick}`), ["c@muc friar friar"], "taken once");
    assert.equal(await tx((t) => rejoinsDue(t)), false);
  });
  it("sends a join the room has not answered again, twice as long after each time up to the cap, until an answer", async () => {
    await joinedRoom("x@muc"); // the account row
    const due = (room: string) => tx((t) => sql(t, "UPDATE room SET rejoin_at = now() - interval '1 s' WHERE account_id = $1 AND room = $2", [accountId, room]));
    // A request's join waits 10 s (JOIN_RESEND_MS) for its answer.
    await tx((t) => recordJoin(t, accountId, "e@muc", "friar", null, { maxStanzas: 5 }));
    assert.equal(Math.round(await secondsToRejoin("e@muc")), 10);
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      await due("e@muc");
      const taken = await tx((t) => takeDueRejoins(t, RETRY));
      assert.deepEqual(taken.map((r) => [r.room, r.rejoinAttempts, r.history]), [["e@muc", null, { maxStanzas: 5 }]], "a request's join, as it asked");
      waits.push(Math.round(await secondsToRejoin("e@muc")));
    }
    assert.deepEqual(waits, [10, 20, 20]);
    // After a reconnect every join goes out again and waits for its answer from then.
    await tx((t) => markRejoining(t));
    assert.equal(Math.round(await secondsToRejoin("e@muc")), 10);
    assert.equal(Math.round(await secondsToRejoin("x@muc")), 10, "a joined room, rejoined");
    // Answered: nothing is due.
    for (const room of ["e@muc", "x@muc"]) await tx((t) => markJoined(t, accountId, room, "participant", "member", false));
    assert.deepEqual((await tx((t) => sql<{ n: number }>(t, "SELECT count(*)::int AS n FROM room WHERE rejoin_at IS NOT NULL AND room IN ('e@muc', 'x@muc')", [])))[0]!.n, 0);
  });
  it("does not send a join again while it waits in the queue behind a backlog, and does once it went out", async () => {
    await joinedRoom("y@muc"); // the account row
    const due = (rooms: string[]) => tx((t) => sql(t, "UPDATE room SET rejoin_at = now() - interval '1 s' WHERE account_id = $1 AND room = ANY($2)", [accountId, rooms]));
    const resends = async (room: string) => (await tx((t) => sql<{ n: number }>(t, "SELECT join_resends AS n FROM room WHERE account_id = $1 AND room = $2", [accountId, room])))[0]!.n;
    // A request's join, its presence queued with it (one outbox row); two rejoins queued ahead as
    // one row (the same presence but for the room: src/db/outbox.ts compress).
    const join = (room: string, history: { since: string } | null) => ({ kind: "muc-join" as const, from: `friar@gw/rooms`, to: `${room}/friar`, password: null, history });
    await tx((t) => recordJoin(t, accountId, "f@muc", "friar", null, null, { stanzas: [join("f@muc", null)], origin: "test" }));
    const since = { since: new Date(0).toISOString() };
    await tx((t) => markRejoining(t, { accountId, room: "y@muc" }));
    await joinedRoom("z@muc");
    await tx((t) => markRejoining(t, { accountId, room: "z@muc" }));
    await tx((t) => enqueueAhead(t, accountId, [join("y@muc", since), join("z@muc", since)]));
    const rows = await tx((t) => sql<{ fanout: boolean }>(t, "SELECT stanza->'fanout' IS NOT NULL AS fanout FROM outbox WHERE account_id = $1 ORDER BY seq", [accountId]));
    assert.deepEqual(rows.map((r) => r.fanout), [true, false], "the rejoins as one row, the request's join as another");
    await due(["f@muc", "y@muc", "z@muc"]);
    assert.deepEqual(await tx((t) => takeDueRejoins(t, RETRY)), [], "all three still queued");
    for (const room of ["f@muc", "y@muc", "z@muc"]) {
      assert.equal(Math.round(await secondsToRejoin(room)), 5, `${room} looked at again after the first wait`);
      assert.equal(await resends(room), 0, `${room} not counted as sent again`);
    }
    // The queue drained (the rows confirmed and deleted): each is sent again once it is due.
    await tx((t) => sql(t, "DELETE FROM outbox WHERE account_id = $1", [accountId]));
    await due(["f@muc", "y@muc", "z@muc"]);
    const taken = await tx((t) => takeDueRejoins(t, RETRY));
    assert.deepEqual(taken.map((r) => r.room).sort(), ["f@muc", "y@muc", "z@muc"]);
  });
});
