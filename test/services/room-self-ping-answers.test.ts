// A self-ping's item-not-found (src/services/room-self-pings.ts answered, src/domain/muc-self-ping.ts
// selfPingVerdict): XEP-0410 §3.2 reads it as "joined, the nick just changed", which for the
// gateway (the only client of its occupant JID) holds only while a nick change of its own is under
// way; once the room answered the change (its 303 about the account), the same answer to the new
// nick means the room does not have the account (Prosody 0.12's room, destroyed when its only
// occupant changed nick), and the account enters it again. The 303 is followed by such a ping.
// Against a real PostgreSQL; the room is played by the test (test/services/room-play.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Rooms } from "../../src/services/rooms.js";
import { RoomSelfPings } from "../../src/services/room-self-pings.js";
import { waitFor, within, type Env, type TestAccount } from "./setup.js";
import { roomSuite, type MucItem } from "./room-play.js";

const ROOM = "sycamore@conference.example.net";
const NOT_FOUND = { type: "cancel", condition: "item-not-found" };

describe("a self-ping's item-not-found around a nick change", () => {
  let env: Env;
  let rooms: Rooms;
  const { says: roomSays, subject: roomSubject } = roomSuite(ROOM, (s) => ({ env, rooms } = s));
  const owner: MucItem = { role: "moderator", affiliation: "owner" };
  const sentTo = (a: TestAccount, kind: string, to: string) => env.out.sent.some((s) => s.kind === kind && "to" in s && s.to === to && s.from === `${a.jid}/rooms`);

  it("is no news while the account's own nick change is under way; after the room's 303, it sends the account in again", async () => {
    const a = await env.account("romeo");
    const pings = new RoomSelfPings(env.delivery, env.domain, 60_000);
    const join = rooms.join(a.ref, ROOM, { nick: "romeo" });
    await waitFor(async () => (await env.flush(), sentTo(a, "muc-join", `${ROOM}/romeo`)), "the join");
    await roomSays(a, "romeo", owner, [110]);
    await roomSubject(a, "");
    await within(join, "the join's answer");

    const rename = rooms.join(a.ref, ROOM, { nick: "montague" });
    await waitFor(async () => (await env.flush(), sentTo(a, "presence", `${ROOM}/montague`)), "the nick change");
    // An answer to a ping of the old nick that crossed the change: the nick just changed.
    assert.equal(await pings.answered(`${ROOM}/romeo`, `${a.jid}/rooms`, NOT_FOUND), false);
    // The room renames the account (§7.6.2) and, before its self-presence under the new nick is
    // read, answers the ping that followed the change: no montague there.
    await roomSays(a, "romeo", { ...owner, nick: "montague" }, [303, 110], "unavailable");
    await within(rename, "the nick change's answer");
    await env.flush();
    assert.ok(sentTo(a, "muc-self-ping", `${ROOM}/montague`), JSON.stringify(env.out.sent));
    assert.equal(await pings.answered(`${ROOM}/montague`, `${a.jid}/rooms`, NOT_FOUND), true);
    await env.flush();
    assert.ok(sentTo(a, "muc-join", `${ROOM}/montague`), JSON.stringify(env.out.sent));
    const row = await env.db.pool.query("SELECT nick, status FROM room WHERE account_id = $1", [a.id]);
    assert.deepEqual(row.rows, [{ nick: "montague", status: "joining" }]);
  });
});
