// The rooms to self-ping (src/db/room-self-pings.ts): joined rooms quiet for the idle time, neither
// confirmed, pinged nor heard from since, the quietest first, each taken once however many
// instances look at the same time; taking one starts its quiet spell again.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { sql } from "../../src/db/client.js";
import { takeQuietRooms } from "../../src/db/room-self-pings.js";
import { markJoined, recordJoin } from "../../src/db/rooms.js";
import { suiteDatabase } from "../helpers/database.js";

const IDLE = 60_000;

describe("quiet rooms to self-ping", () => {
  const database = suiteDatabase(2);
  const tx = <T>(fn: (t: Parameters<Parameters<ReturnType<typeof database>["sqlTransaction"]>[0]>[0]) => Promise<T>) => database().sqlTransaction(fn);

  it("takes the joined rooms quiet for the idle time, once, the quietest first", async () => {
    const accountId = (await tx((t) => sql<{ id: number }>(t, "INSERT INTO account (localpart) VALUES ('livia') RETURNING id", [])))[0]!.id;
    const join = (room: string, joined = true) =>
      tx(async (t) => {
        await recordJoin(t, accountId, room, "livia", null, null);
        if (joined) await markJoined(t, accountId, room, "participant", "member", false);
      });
    for (const room of ["quiet@muc", "quieter@muc", "fresh@muc", "chatty@muc", "pinged@muc"]) await join(room);
    await join("entering@muc", false);
    // Checked (joined or pinged) minutes ago, except fresh@muc; chatty@muc had a message a second ago.
    await tx((t) => sql(t, "UPDATE room SET checked_at = now() - interval '2 min' WHERE room NOT IN ('fresh@muc', 'quieter@muc')", []));
    await tx((t) => sql(t, "UPDATE room SET checked_at = now() - interval '150 s' WHERE room = 'quiet@muc'", []));
    await tx((t) => sql(t, "UPDATE room SET checked_at = now() - interval '3 min' WHERE room = 'quieter@muc'", []));
    await tx((t) => sql(t, "UPDATE room SET last_message_at = now() - interval '1 s' WHERE room = 'chatty@muc'", []));
    await tx((t) => sql(t, "UPDATE room SET last_message_at = now() - interval '5 min' WHERE room = 'pinged@muc'", []));

    const first = await tx((t) => takeQuietRooms(t, IDLE, 2));
    assert.deepEqual(first.map((r) => `${r.room} ${r.localpart} ${r.nick} ${r.accountId === accountId}`), ["quieter@muc livia livia true", "quiet@muc livia livia true"]);
    // Two instances at once: the one quiet room left is taken by one of them.
    const [a, b] = await Promise.all([tx((t) => takeQuietRooms(t, IDLE, 10)), tx((t) => takeQuietRooms(t, IDLE, 10))]);
    assert.deepEqual([...a!, ...b!].map((r) => r.room), ["pinged@muc"]);
    // Taken: quiet no more until another idle time has passed.
    assert.deepEqual(await tx((t) => takeQuietRooms(t, IDLE, 10)), []);
    assert.deepEqual((await tx((t) => takeQuietRooms(t, 0, 10))).map((r) => r.room).sort(), ["chatty@muc", "fresh@muc", "pinged@muc", "quiet@muc", "quieter@muc"]);
  });
});
