// A nick change in a room that lost the account (src/services/inbound-room-refusal.ts): the room
// answers item-not-found, the gateway enters again under the nick asked for (rejoinAsAsked) and,
// if the room has that nick taken (conflict, XEP-0045 §7.2.9), under the nick the account had
// (fallBackNick); the PUT answers 409 room-nick-conflict (src/services/room-joins.ts). Around it:
// a second PUT for the same nick meanwhile, a late second conflict for the nick left, a refusal
// for now and a reconnect during the rejoin, and a rejoin under the asked nick refused otherwise;
// the fallback's rejoin refused for now; and a nick change cut short by the room dropping the account.
// Against a real PostgreSQL; the room is played by the test (test/services/room-play.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Inbound } from "../../src/services/inbound.js";
import type { Rooms } from "../../src/services/rooms.js";
import { mucPresence } from "../../src/domain/muc.js";
import { feedBatch, waitFor, within, type Env, type TestAccount } from "./setup.js";
import { roomSuite, type MucItem } from "./room-play.js";
import { inboundPresence } from "./stanzas.js";

const ROOM = "verona@conference.example.net";

describe("a nick change into a taken nick in a room that lost the account", () => {
  let env: Env;
  let rooms: Rooms;
  let inbound: Inbound;
  const { says, subject, events } = roomSuite(ROOM, (s) => ({ env, rooms, inbound } = s));
  const owner: MucItem = { role: "moderator", affiliation: "owner" };
  /** How many stanzas of `kind` reached the port for the occupant JID room/nick from `a`. */
  const sentTo = (a: TestAccount, kind: string, nick: string) => env.out.sent.filter((s) => s.kind === kind && "to" in s && s.to === `${ROOM}/${nick}` && s.from === `${a.jid}/rooms`).length;
  const awaitSent = (a: TestAccount, kind: string, nick: string, n: number) => waitFor(async () => (await env.flush(), sentTo(a, kind, nick) >= n), `${kind} #${n} to ${nick}`);
  /** The room's presence error from room/nick (RFC 6120 §8.3). */
  const errorFrom = (a: TestAccount, nick: string, condition: string, type = "cancel") => inboundPresence(`${ROOM}/${nick}`, `${a.jid}/rooms`, "error", { error: { type, condition } });
  const roomError = (a: TestAccount, nick: string, condition: string, type = "cancel") => feedBatch(inbound, errorFrom(a, nick, condition, type));
  const settle = <T>(p: Promise<T>) => p.then((ok) => ({ ok }), (e: unknown) => ({ err: e as { code?: string; message?: string } }));
  /** The account's row: `error` the join's (or a rejoin's for now), `answer` the nick change's (src/domain/muc.ts NickAnswer). */
  const row = async (a: TestAccount) =>
    (await env.db.pool.query("SELECT nick, status, error, nick_answer AS answer FROM room WHERE account_id = $1", [a.id])).rows[0] as { nick: string; status: string; error: unknown; answer: unknown };
  const CONFLICT = { refused: { type: "cancel", condition: "conflict" } };
  /** `a` joins the room under `nick` and the room lets it in (self-presence as owner, the subject). */
  async function joined(a: TestAccount, nick: string) {
    const join = rooms.join(a.ref, ROOM, { nick });
    await awaitSent(a, "muc-join", nick, 1);
    await says(a, nick, owner, [110]);
    await subject(a, "");
    await within(join, "joined");
  }
  /** `a` in the room under `nick`; then its nick change to `asked` answered item-not-found (the room lost it): the rejoin under `asked` sent. */
  async function lostOnRename(a: TestAccount, nick: string, asked: string) {
    await joined(a, nick);
    const rename = settle(rooms.join(a.ref, ROOM, { nick: asked }));
    await awaitSent(a, "presence", asked, 1);
    await roomError(a, asked, "item-not-found");
    await awaitSent(a, "muc-join", asked, 1);
    return { rename }; // not awaited: it answers once the room does
  }

  it("a second PUT for the taken nick while the account enters again waits for the fallback, and its nick change then answers 409, not 200 under the old nick", async () => {
    const a = await env.account("paris");
    const { rename } = await lostOnRename(a, "paris", "tybalt");
    // The client retries its PUT (same body) while the rejoin under tybalt is in flight.
    const again = settle(rooms.join(a.ref, ROOM, { nick: "tybalt" }));
    await new Promise((r) => setTimeout(r, 200));

    await roomError(a, "tybalt", "conflict"); // tybalt is Juliet's: back in as paris
    // Read before the account is in again, when the second PUT's nick change clears it.
    const first = await within(rename, "the nick change");
    assert.equal("err" in first ? first.err.code : "200", "room-nick-conflict");
    await awaitSent(a, "muc-join", "paris", 2);
    await says(a, "paris", owner, [110]);
    await subject(a, "");

    // The second PUT decides again once in: a nick change (§7.6.1), which the room refuses (§7.6.3).
    const early = await Promise.race([again, new Promise((r) => setTimeout(() => r("waiting"), 100))]);
    assert.equal(early, "waiting", "the second PUT answered before its nick change");
    await awaitSent(a, "presence", "tybalt", 2);
    await roomError(a, "tybalt", "conflict");
    const second = await within(again, "the second PUT");
    assert.equal("err" in second ? second.err.code : `200 as ${second.ok.view.nick}`, "room-nick-conflict");
    assert.deepEqual(await row(a), { nick: "paris", status: "joined", error: null, answer: CONFLICT });
  });

  it("a second conflict for the nick the rejoin fell back from (a resent join's late answer) is no answer to the rejoin under the old nick", async () => {
    const a = await env.account("romeo");
    const { rename } = await lostOnRename(a, "romeo", "tybalt");
    // The join under tybalt went out twice (unanswered after JOIN_RESEND_MS, src/db/room-rejoins.ts takeDueRejoins): two answers.
    await roomError(a, "tybalt", "conflict"); // back in as romeo
    await roomError(a, "tybalt", "conflict"); // the resent join's, late
    const answered = await within(rename, "the nick change");
    assert.equal("err" in answered ? answered.err.code : "200", "room-nick-conflict");
    assert.deepEqual((await events(a)).filter((e) => e.kind === "join-failed"), [], "no join-failed");
    assert.deepEqual(await row(a), { nick: "romeo", status: "joining", error: null, answer: CONFLICT });
    await awaitSent(a, "muc-join", "romeo", 2);
    await says(a, "romeo", owner, [110]);
    assert.equal((await row(a)).status, "joined");
  });

  it("a rejoin's refusal for now ends with a reconnect's rejoin; the fallback's conflict is kept past one", async () => {
    const a = await env.account("mercutio");
    await joined(a, "mercutio");
    // A reconnect: the rejoin is refused for now (RFC 6120 §8.3.2, type wait), then the link
    // drops and comes back again before its next attempt, and that rejoin is answered.
    await rooms.rejoin();
    await awaitSent(a, "muc-join", "mercutio", 2);
    await roomError(a, "mercutio", "remote-server-timeout", "wait");
    assert.equal((await row(a)).status, "joining");
    await rooms.rejoin();
    await awaitSent(a, "muc-join", "mercutio", 3);
    await says(a, "mercutio", owner, [110]);
    assert.deepEqual(await row(a), { nick: "mercutio", status: "joined", error: null, answer: null }, "the refusal for now is over");

    // The rejoin under the asked nick refused for now, then as taken: the conflict is the nick
    // change's answer, whatever the refusal before it.
    const b = await env.account("benvolio");
    const { rename } = await lostOnRename(b, "benvolio", "tybalt");
    await roomError(b, "tybalt", "remote-server-timeout", "wait");
    const answered = await within(rename, "the nick change");
    assert.equal("err" in answered ? answered.err.code : "200", "room-unavailable");
    await roomError(b, "tybalt", "conflict");
    await awaitSent(b, "muc-join", "benvolio", 2);
    await says(b, "benvolio", owner, [110]);
    assert.deepEqual(await row(b), { nick: "benvolio", status: "joined", error: null, answer: CONFLICT });
  });

  it("a rejoin under the asked nick refused for another reason says the account is out of the room", async () => {
    const a = await env.account("balthasar");
    const { rename } = await lostOnRename(a, "balthasar", "tybalt");
    await roomError(a, "tybalt", "forbidden"); // banned meanwhile (§7.2.7)
    const answered = await within(rename, "the nick change");
    assert.ok("err" in answered, "refused");
    assert.deepEqual([answered.err.code, answered.err.message], ["room-banned", `${ROOM} refused the nick change: forbidden; the account is out of the room`]);
    assert.equal((await row(a)).status, "failed");
  });

  it("a rejoin under the asked nick refused with no error element answers the nick change at once: the account is out of the room", async () => {
    const a = await env.account("abram");
    const { rename } = await lostOnRename(a, "abram", "tybalt");
    inbound.receive(inboundPresence(`${ROOM}/tybalt`, `${a.jid}/rooms`, "error")); // RFC 6120 §8.3 says it has one; a room may not
    await inbound.idle();
    assert.deepEqual(await row(a), { nick: "tybalt", status: "failed", error: null, answer: null });
    const answered = await within(rename, "the nick change");
    assert.ok("err" in answered, "refused");
    assert.equal(answered.err.message, `${ROOM} refused the nick change: undefined-condition; the account is out of the room`);
  });

  it("the fallback's rejoin under the old nick refused for now: the nick change still answers 409, not the wait's 503, nor 200 once back in", async () => {
    // Each batch is one transaction: the request reads the row only after all of it.
    const wait = ["remote-server-timeout", "wait"] as const;
    const a = await env.account("gregory");
    const first = await lostOnRename(a, "gregory", "tybalt");
    await feedBatch(inbound, errorFrom(a, "tybalt", "conflict"), errorFrom(a, "gregory", ...wait));
    const answered = await within(first.rename, "the nick change");
    assert.ok("err" in answered, "refused");
    assert.deepEqual([answered.err.code, answered.err.message], ["room-nick-conflict", `${ROOM} refused the nick change: conflict; entering it again as gregory`]);
    assert.deepEqual(await row(a), { nick: "gregory", status: "joining", error: { type: "wait", condition: "remote-server-timeout" }, answer: CONFLICT });

    // Read only once the room took the rejoin after all (its refusal for now over: markJoined).
    const b = await env.account("sampson");
    const second = await lostOnRename(b, "sampson", "tybalt");
    const self = inboundPresence(`${ROOM}/sampson`, `${b.jid}/rooms`, "available", { muc: mucPresence(owner, ["110"]) });
    await feedBatch(inbound, errorFrom(b, "tybalt", "conflict"), errorFrom(b, "sampson", ...wait), self);
    const later = await within(second.rename, "the nick change");
    assert.ok("err" in later, `refused, not 200 as ${"ok" in later ? later.ok.view.nick : ""}`);
    assert.deepEqual([later.err.code, later.err.message], ["room-nick-conflict", `${ROOM} refused the nick change: conflict; still in the room as sampson`]);
    assert.deepEqual(await row(b), { nick: "sampson", status: "joined", error: null, answer: CONFLICT });
  });

  it("a nick change cut short by the room dropping the account (333) answers 503: it enters again under its old nick, not 200 under it", async () => {
    const a = await env.account("peter");
    await joined(a, "peter");
    const rename = settle(rooms.join(a.ref, ROOM, { nick: "friar" }));
    await awaitSent(a, "presence", "friar", 1);
    // Removed by an error (XEP-0045 §17.1, status 333) before the change reached the room: the
    // account enters again under peter, and the room's answer to the change, from a non-occupant
    // (item-not-found), is no answer to that rejoin.
    await says(a, "peter", { role: "none", affiliation: "owner" }, [110, 333], "unavailable");
    await awaitSent(a, "muc-join", "peter", 2);
    await roomError(a, "friar", "item-not-found");
    await says(a, "peter", owner, [110]);
    await subject(a, "");
    const answered = await within(rename, "the nick change");
    assert.ok("err" in answered, `refused, not 200 as ${"ok" in answered ? answered.ok.view.nick : ""}`);
    assert.equal(answered.err.code, "room-unavailable");
    assert.match(answered.err.message ?? "", new RegExp(`^${a.jid} was out of ${ROOM} during the nick change \\(removed by the room, or the link was lost\\); (entering it|in the room) again as peter$`));
    assert.deepEqual(await row(a), { nick: "peter", status: "joined", error: null, answer: { cutShort: true } });
    // Asked again, once back in: a nick change, which the room takes (§7.6.2).
    const again = rooms.join(a.ref, ROOM, { nick: "friar" });
    await awaitSent(a, "presence", "friar", 2);
    await says(a, "peter", { ...owner, nick: "friar" }, [110, 303], "unavailable");
    await says(a, "friar", owner, [110]);
    assert.equal((await within(again, "the nick change, asked again")).view.nick, "friar");
    assert.deepEqual(await row(a), { nick: "friar", status: "joined", error: null, answer: null });
  });
});
