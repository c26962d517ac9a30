// What a room's presence does to the account's row and occupants (src/services/inbound-room.ts
// roomPresence, src/db/rooms.ts occupantPresence and markConfigured), in the cases the join's
// usual path does not cover: a rejoin that makes the room anew while occupants from before are
// known, a join after a refused one, a self-presence without status 110, occupants' later
// presences, and a presence from a room the account is not in. Against a real PostgreSQL; the room
// is played by the test, as in test/services/rooms.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mucPresence } from "../../src/domain/muc.js";
import type { Inbound } from "../../src/services/inbound.js";
import type { Rooms } from "../../src/services/rooms.js";
import { appError, waitFor, within, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";
import { roomSuite, type MucItem } from "./room-play.js";

const ROOM = "capulet@conference.example.net";

describe("room presence", () => {
  let env: Env;
  let inbound: Inbound;
  let rooms: Rooms;

  const { says: roomSays, subject: roomSubject, events: roomEvents, lastSeq } = roomSuite(ROOM, (s) => ({ env, inbound, rooms } = s));
  const participant: MucItem = { role: "participant", affiliation: "none" };
  const owner: MucItem = { role: "moderator", affiliation: "owner" };
  /** Waits until the join presence for `nick` reached the port. */
  const joinSent = (a: TestAccount, nick: string) =>
    waitFor(async () => {
      await env.flush();
      return env.out.sent.some((s) => s.kind === "muc-join" && s.to === `${ROOM}/${nick}` && s.from.startsWith(`${a.jid}/`));
    }, `the join presence for ${nick}`);
  const occupantRows = async (a: TestAccount) =>
    (await env.db.pool.query<{ nick: string; stale: boolean }>("SELECT nick, stale FROM room_occupant WHERE account_id = $1 ORDER BY nick", [a.id])).rows;

  it("a rejoin the room answers as a new room (201): occupants known from before and not presented again leave once it is configured", async () => {
    const a = await env.account("capulet");
    const first = rooms.join(a.ref, ROOM, { nick: "capulet" });
    await joinSent(a, "capulet");
    for (const nick of ["juliet", "nurse"]) await roomSays(a, nick, participant);
    await roomSays(a, "capulet", participant, [110]);
    await roomSubject(a, "");
    assert.deepEqual((await first).view.occupants.map((o) => o.nick), ["capulet", "juliet", "nurse"]);
    // The server lost its rooms: the rejoin makes the room again, and only juliet is back.
    env.out.reset();
    await rooms.rejoin();
    const waiting = rooms.join(a.ref, ROOM, { nick: "capulet" });
    await joinSent(a, "capulet");
    const seq = await lastSeq(a);
    await roomSays(a, "juliet", participant);
    await roomSays(a, "capulet", owner, [110, 201]);
    await roomSubject(a, "");
    assert.deepEqual(await occupantRows(a), [
      { nick: "capulet", stale: false },
      { nick: "juliet", stale: false },
      { nick: "nurse", stale: true },
    ]);
    await rooms.configured(ROOM, `${a.jid}/rooms`, null);
    const answer = await within(waiting, "the rejoin's answer");
    assert.deepEqual([answer.created, answer.view.status, answer.view.role, answer.view.affiliation], [true, "joined", "moderator", "owner"]);
    assert.deepEqual(answer.view.occupants.map((o) => o.nick), ["capulet", "juliet"]);
    // No subject before, none now: no subject event (the account's view of it did not change).
    assert.deepEqual(await roomEvents(a, seq), [
      { room: ROOM, kind: "joined", nick: "capulet", role: "moderator", affiliation: "owner", self: true },
      { room: ROOM, kind: "occupant-left", nick: "nurse" },
    ]);
  });

  it("a join after a refused one is recorded again: the refused join's occupants are gone, the new answer lists the room as it is now", async () => {
    const a = await env.account("paris");
    const refused = rooms.join(a.ref, ROOM, { nick: "paris" });
    await joinSent(a, "paris");
    await roomSays(a, "juliet", participant);
    inbound.receive(inboundPresence(`${ROOM}/paris`, `${a.jid}/rooms`, "error", { error: { type: "cancel", condition: "conflict" } }));
    await inbound.idle();
    await assert.rejects(refused, appError("room-nick-conflict"));
    env.out.reset();
    const again = rooms.join(a.ref, ROOM, { nick: "county" });
    await joinSent(a, "county");
    await roomSays(a, "nurse", participant);
    await roomSays(a, "county", participant, [110]);
    await roomSubject(a, "");
    const answer = await within(again, "the second join's answer");
    assert.deepEqual([answer.created, answer.view.nick, answer.view.occupants.map((o) => o.nick)], [false, "county", ["county", "nurse"]]);
  });

  it("a self-presence without status 110 is known by the nick: joined, and the subject after it ends the join (no wait for the grace)", async () => {
    const a = await env.account("tybalt");
    const joining = rooms.join(a.ref, ROOM, { nick: "tybalt" });
    await joinSent(a, "tybalt");
    await roomSays(a, "tybalt", participant);
    await roomSubject(a, "Verona");
    const { rows } = await env.db.pool.query<{ status: string; join_stage: string | null }>("SELECT status, join_stage FROM room WHERE account_id = $1", [a.id]);
    assert.deepEqual(rows, [{ status: "joined", join_stage: "subject" }]);
    assert.deepEqual((await within(joining, "the join's answer")).view.subject, "Verona");
    assert.deepEqual((await roomEvents(a)).map((e) => e.kind), ["joined", "subject"]);
  });

  it("after the account's own presence an occupant's presence is an event when it is new or its role or affiliation changed, none when nothing changed", async () => {
    const a = await env.account("montague");
    const joining = rooms.join(a.ref, ROOM, { nick: "montague" });
    await joinSent(a, "montague");
    await roomSays(a, "romeo", participant);
    await roomSays(a, "montague", participant, [110]);
    await roomSubject(a, "");
    await joining;
    const seq = await lastSeq(a);
    await roomSays(a, "romeo", participant, [], "available");
    await roomSays(a, "benvolio", participant);
    await roomSays(a, "romeo", { role: "moderator", affiliation: "none" });
    await roomSays(a, "romeo", { role: "moderator", affiliation: "admin" });
    await roomSays(a, "romeo", { role: "moderator", affiliation: "admin" });
    assert.deepEqual(await roomEvents(a, seq), [
      { room: ROOM, kind: "occupant-joined", nick: "benvolio", role: "participant", affiliation: "none", jid: null },
      { room: ROOM, kind: "role-changed", nick: "romeo", role: "moderator", affiliation: "none" },
      { room: ROOM, kind: "role-changed", nick: "romeo", role: "moderator", affiliation: "admin" },
    ]);
  });

  it("a presence from a room the account is not in stores nothing, and the batch it came in is stored as usual", async () => {
    const a = await env.account("balthasar");
    const warned = env.log.entries.filter((e) => e.level === "warn").length;
    inbound.receive(inboundPresence(`${ROOM}/romeo`, `${a.jid}/rooms`, "available", { muc: mucPresence(participant, []) }));
    inbound.receive(inboundPresence(`${ROOM}/balthasar`, `${a.jid}/rooms`, "available", { muc: mucPresence(owner, ["110", "201"]) }));
    // Its subject message too: no room row to change, and a group message from no room of ours bounces (§8.5.3.2.1).
    inbound.receive(inboundMessage(ROOM, `${a.jid}/rooms`, { type: "groupchat", subject: "Verona", body: null, id: "subj" }));
    inbound.receive(inboundMessage("romeo@example.net", a.jid, { body: "sentinel", id: "sentinel" }));
    await inbound.idle();
    // The sentinel came after them in the same batch: it is stored, so they were handled.
    assert.deepEqual((await env.events(a.id)).map((e) => e.type), ["message"]);
    assert.deepEqual(await occupantRows(a), []);
    assert.equal((await env.db.pool.query("SELECT 1 FROM room WHERE account_id = $1", [a.id])).rowCount, 0);
    await env.flush();
    assert.deepEqual(env.out.sent.filter((s) => s.kind === "muc-instant"), [], "no configuration for a room the account did not join");
    assert.deepEqual(env.out.sent.flatMap((s) => (s.kind === "error" ? [[s.replyTo.from, s.replyTo.id]] : [])), [[ROOM, "subj"]], "the subject message bounced");
    assert.equal(env.log.entries.filter((e) => e.level === "warn").length, warned, "nothing failed");
  });
});
