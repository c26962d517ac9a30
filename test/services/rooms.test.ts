// Group chat (XEP-0045) at the service level: the Rooms use case and what rooms send to an
// account's occupant JID (src/services/inbound-room.ts), against a real PostgreSQL and a fake
// outbound port. The room is played by the test: it answers the join presence the port received
// with the presence a MUC service sends (XEP-0045 §7.2.2 self-presence, §7.2.16 the subject message
// that ends a join, §7.6.2 nick changes, §9 role and affiliation changes), parsed as the XMPP
// adapter would parse it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Blocklists } from "../../src/db/blocklist.js";
import { EventNotifier } from "../../src/db/event-notifier.js";
import { Notifications } from "../../src/db/notify.js";
import { mucPresence, SUBJECT_GRACE_MS } from "../../src/domain/muc.js";
import { Blocking } from "../../src/services/blocking.js";
import type { Inbound } from "../../src/services/inbound.js";
import type { Delivery } from "../../src/services/delivery.js";
import { Rooms } from "../../src/services/rooms.js";
import { appError, waitFor, within, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";
import { roomSuite } from "./room-play.js";

const ROOM = "piazza@conference.example.net";

describe("Rooms service", () => {
  let env: Env;
  let inbound: Inbound;
  let rooms: Rooms;

  const { says: roomSays, subject: roomSubject, events: roomEvents, lastSeq } = roomSuite(ROOM, (s) => ({ env, inbound, rooms } = s));
  /** Whether `p` is still pending after `ms`. */
  const pendingAfter = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => false, () => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms))]);
  /** What reached the port for the room (from `a`): `muc-join:nick` (a join), `presence:nick` (a nick change, §7.6.1). */
  const toRoom = async (a?: TestAccount) => {
    await env.flush();
    const sent = env.out.sent.filter((s) => "to" in s && s.to.startsWith(`${ROOM}/`) && (!a || s.from.startsWith(`${a.jid}/`)));
    return sent.map((s) => `${s.kind}:${(s as { to: string }).to.slice(ROOM.length + 1)}`);
  };
  /** Waits until the join presence for `nick` (or the nick change's: `kind` presence) reached the port (the room can answer it now). */
  const joinSent = (nick: string, kind = "muc-join") => waitFor(async () => (await toRoom()).includes(`${kind}:${nick}`), `the ${kind} presence for ${nick}`);
  /**
   * PUT /v1/rooms/{room} as the room answers it: `others` present, then the self-presence (110, and
   * 201 when it creates the room) under `given` (the nick the room gives, `nick` by default), then
   * the subject message.
   */
  async function join(a: TestAccount, nick: string, opts: { create?: boolean; others?: string[]; given?: string; statuses?: number[]; via?: Rooms } = {}) {
    env.out.reset();
    const joining = (opts.via ?? rooms).join(a.ref, ROOM, { nick });
    await joinSent(nick);
    for (const other of opts.others ?? []) await roomSays(a, other, { role: "participant", affiliation: "none" });
    const given = opts.given ?? nick;
    if (opts.create) {
      await roomSays(a, given, { role: "moderator", affiliation: "owner" }, [110, 201, ...(opts.statuses ?? [])]);
      await roomSubject(a, "");
      // §10.1.2: the instant-room configuration the gateway sent back is accepted.
      await env.flush();
      await rooms.configured(ROOM, `${a.jid}/rooms`, null);
    } else {
      await roomSays(a, given, { role: "participant", affiliation: "none" }, [110, ...(opts.statuses ?? [])]);
      await roomSubject(a, "");
    }
    return joining;
  }
  const nicks = async (a: TestAccount) => (await rooms.get(a.ref, ROOM)).occupants.map((o) => o.nick);

  it("a join's log reads joined, then the subject (§7.2.16), also when it created the room", async () => {
    const a = await env.account("gregory");
    // The room's order: the self-presence (201), the subject message, then the answer to the instant-room configuration.
    assert.equal((await join(a, "gregory", { create: true })).created, true);
    assert.deepEqual((await roomEvents(a)).map((e) => e.kind), ["joined", "subject"]);
  });

  it("a join of a room the account is not in, or one the room refused, runs no transaction: the join and its presence are one statement", async () => {
    const a = await env.account("abram");
    // The joins' own transactions (the room's answers are stored by the inbound service, in its own).
    let transactions = 0;
    const counted = new Proxy(env.delivery, {
      get: (d, k: keyof Delivery) => (k === "sqlTransaction" ? (fn: Parameters<Delivery["sqlTransaction"]>[0]) => (transactions++, d.sqlTransaction(fn)) : typeof d[k] === "function" ? (d[k] as () => unknown).bind(d) : d[k]),
    });
    const via = new Rooms(env.db, counted, env.domain);
    assert.equal((await join(a, "abram", { create: true, via })).created, true);
    assert.equal(transactions, 0, "a new join");
    // The room refused it since (as a refusal leaves the row): a join takes the row over in the same one statement.
    await env.db.pool.query("UPDATE room SET status = 'failed' WHERE account_id = $1", [a.id]);
    assert.equal((await join(a, "sampson", { via })).view.nick, "sampson");
    assert.equal(transactions, 0, "a join after a refused one");
    // The counter's sentinel: a join under the nick the account has is a step on its locked row.
    await via.join(a.ref, ROOM, { nick: "sampson" });
    assert.equal(transactions, 1, "a repeated join");
  });

  it("a repeated join under the same nick is 200 (created: false) at once: nothing sent, nothing logged (RFC 9110 §9.2.2)", async () => {
    const a = await env.account("romeo");
    const first = await join(a, "romeo", { create: true, others: ["juliet"] });
    assert.equal(first.created, true);
    const seq = await lastSeq(a);
    env.out.reset();
    // No room answers it here: it answers from what the gateway knows.
    const again = await rooms.join(a.ref, ROOM, { nick: "romeo" });
    assert.equal(again.created, false, "the second join did not create the room");
    assert.deepEqual({ ...again.view, occupants: again.view.occupants.map((o) => o.nick) }, { ...first.view, occupants: ["juliet", "romeo"] });
    assert.deepEqual(await toRoom(a), [], "no join presence");
    assert.deepEqual(await roomEvents(a, seq), []);
  });

  it("a join requested again while the first is in flight waits for the same answer: one join presence, one joined", async () => {
    const a = await env.account("abram");
    env.out.reset();
    const first = rooms.join(a.ref, ROOM, { nick: "abram" });
    await joinSent("abram");
    const second = rooms.join(a.ref, ROOM, { nick: "abram" });
    assert.equal(await pendingAfter(second, 100), true, "no answer before the room's");
    await roomSays(a, "abram", { role: "participant", affiliation: "none" }, [110]);
    await roomSubject(a, "Verona");
    const answers = await Promise.all([first, second]);
    assert.deepEqual(answers.map((r) => [r.created, r.view.status, r.view.subject]), [[false, "joined", "Verona"], [false, "joined", "Verona"]]);
    assert.deepEqual(await toRoom(a), ["muc-join:abram"]);
    assert.deepEqual((await roomEvents(a)).map((e) => e.kind), ["joined", "subject"]);
  });

  it("a join under another nick while one is in flight waits for it, then is a nick change (§7.6.1: presence without the MUC <x/>)", async () => {
    const a = await env.account("potpan");
    env.out.reset();
    const first = rooms.join(a.ref, ROOM, { nick: "potpan" });
    await joinSent("potpan");
    const renaming = rooms.join(a.ref, ROOM, { nick: "cook" });
    assert.equal(await pendingAfter(renaming, 100), true);
    assert.deepEqual(await toRoom(a), ["muc-join:potpan"], "nothing more while the first join is unanswered");
    await roomSays(a, "potpan", { role: "participant", affiliation: "none" }, [110]);
    await roomSubject(a, "");
    assert.equal((await first).view.nick, "potpan");
    await joinSent("cook", "presence");
    await roomSays(a, "potpan", { role: "participant", affiliation: "none", nick: "cook" }, [303, 110], "unavailable");
    await roomSays(a, "cook", { role: "participant", affiliation: "none" }, [110]);
    assert.equal((await renaming).view.nick, "cook");
    // After the room's 303, a self-ping under the new nick: is the room still there? (XEP-0410 §3.2; src/services/inbound-room.ts)
    assert.deepEqual(await toRoom(a), ["muc-join:potpan", "presence:cook", "muc-self-ping:cook"]);
    assert.deepEqual((await roomEvents(a)).map((e) => e.kind), ["joined", "subject", "nick-changed"]);
  });

  const WOKEN_MS = 15_000;
  it("a join request on another instance is woken by the account's log (NOTIFY), not its poll: a created room, an existing one, a refusal", async () => {
    // The request's instance hears of the room's answers only through Postgres (this Inbound hands
    // nothing on in-process), and its fallback poll is a minute away: only a wake-up answers within
    // the 15 s each case is given (3 s failed once in a run of nine suites, cause not found).
    const notifications = new Notifications(env.tdb.url, () => undefined);
    await notifications.start();
    try {
      const elsewhere = new Rooms(env.db, env.delivery, env.domain, undefined, { growth: new EventNotifier(notifications), pollMs: [60_000, 60_000] });
      const a = await env.account("friar");
      // Created: the self-presence and subject are logged, the configuration's result (the end) is not.
      const made = await within(join(a, "friar", { create: true, via: elsewhere }), "the join that created the room", WOKEN_MS);
      assert.deepEqual([made.created, made.view.status], [true, "joined"]);
      const b = await env.account("laurence");
      const entered = await within(join(b, "laurence", { via: elsewhere }), "the join of an existing room", WOKEN_MS);
      assert.deepEqual([entered.created, entered.view.status], [false, "joined"]);
      const c = await env.account("john");
      // The check is attached at once: the refusal may come while the inbound side is still idling.
      const refused = assert.rejects(elsewhere.join(c.ref, ROOM, { nick: "friar" }), appError("room-nick-conflict"));
      await joinSent("friar");
      inbound.receive(inboundPresence(`${ROOM}/friar`, `${c.jid}/rooms`, "error", { error: { type: "cancel", condition: "conflict" } }));
      await inbound.idle();
      await within(refused, "the refusal", WOKEN_MS);
    } finally {
      await notifications.stop();
    }
  });

  it("the room refusing the nick as a JID (jid-malformed) fails the join at once as 400 invalid-jid naming body.nick", async () => {
    const a = await env.account("tybalt");
    const joining = assert.rejects(rooms.join(a.ref, ROOM, { nick: "tybalt" }), (err: unknown) => appError("invalid-jid")(err) && (err as { extra: { field?: string } }).extra.field === "body.nick");
    await joinSent("tybalt");
    inbound.receive(inboundPresence(`${ROOM}/tybalt`, `${a.jid}/rooms`, "error", { error: { type: "modify", condition: "jid-malformed" } }));
    await inbound.idle();
    await joining;
    assert.equal((await env.db.prisma.room.findFirstOrThrow({ where: { accountId: a.id } })).status, "failed", "not rejoined");
  });

  it("after the account's own nick change (XEP-0045 §7.6.2) only the new nick is an occupant", async () => {
    const a = await env.account("balthasar");
    await join(a, "balthasar", { others: ["juliet"] });
    env.out.reset();
    const renaming = rooms.join(a.ref, ROOM, { nick: "merc" });
    await joinSent("merc", "presence");
    await roomSays(a, "balthasar", { role: "participant", affiliation: "none", nick: "merc" }, [303, 110], "unavailable");
    await roomSays(a, "merc", { role: "participant", affiliation: "none" }, [110]);
    assert.equal((await renaming).view.nick, "merc");
    assert.deepEqual(await nicks(a), ["juliet", "merc"]);
  });

  it("another occupant's nick change is one nick-changed event, not also an occupant-joined", async () => {
    const a = await env.account("benvolio");
    await join(a, "benvolio", { others: ["juliet"] });
    const seq = await lastSeq(a);
    await roomSays(a, "juliet", { role: "participant", affiliation: "none", nick: "capulet" }, [303], "unavailable");
    await roomSays(a, "capulet", { role: "participant", affiliation: "none" });
    assert.deepEqual(await roomEvents(a, seq), [{ room: ROOM, kind: "nick-changed", nick: "juliet", newNick: "capulet" }]);
    assert.deepEqual(await nicks(a), ["benvolio", "capulet"]);
  });

  it("kicks and bans carry the muc#user item's reason and actor (XEP-0045 §8.2, §9.1), the account's own and other occupants'; a presence <status/> is no reason", async () => {
    const a = await env.account("tybalt");
    await join(a, "tybalt", { others: ["juliet", "nurse", "peter"] });
    const seq = await lastSeq(a);
    const gone = { role: "none", affiliation: "none" };
    await roomSays(a, "juliet", { ...gone, reason: "behave", actor: "escalus" }, [307], "unavailable");
    await roomSays(a, "nurse", { ...gone, affiliation: "outcast", reason: "for good" }, [301], "unavailable");
    inbound.receive(inboundPresence(`${ROOM}/peter`, `${a.jid}/rooms`, "unavailable", { statusText: "Kicked: no reason", muc: mucPresence(gone, ["307"]) }));
    await inbound.idle();
    inbound.receive(inboundPresence(`${ROOM}/tybalt`, `${a.jid}/rooms`, "unavailable", { statusText: "Kicked: service unavailable", muc: mucPresence({ ...gone, actor: "escalus", reason: "brawling" }, ["110", "307"]) }));
    await inbound.idle();
    assert.deepEqual(await roomEvents(a, seq), [
      { room: ROOM, kind: "kicked", nick: "juliet", reason: "behave", actor: "escalus" },
      { room: ROOM, kind: "banned", nick: "nurse", reason: "for good" },
      { room: ROOM, kind: "kicked", nick: "peter" },
      { room: ROOM, kind: "kicked", nick: "tybalt", self: true, reason: "brawling", actor: "escalus" },
    ]);
  });

  it("other occupants removed by an affiliation change (321) or because the room went members-only (322) are removed events, with the room's reason and actor", async () => {
    const a = await env.account("escalus");
    await join(a, "escalus", { others: ["paris", "peter"] });
    const seq = await lastSeq(a);
    await roomSays(a, "paris", { role: "none", affiliation: "none", reason: "not a member any more", actor: "capulet" }, [321], "unavailable");
    await roomSays(a, "peter", { role: "none", affiliation: "none" }, [322], "unavailable");
    assert.deepEqual(await roomEvents(a, seq), [
      { room: ROOM, kind: "removed", nick: "paris", reason: "not a member any more", actor: "capulet" },
      { room: ROOM, kind: "removed", nick: "peter" },
    ]);
    assert.deepEqual(await nicks(a), ["escalus"]);
  });

  it("a refused join is a client error unless the refusal holds for now: not-acceptable (nicks locked down) is 409 room-nick-conflict, a condition of no code of ours 403 room-refused, the same of type wait 503 room-unavailable", async () => {
    const cases = [
      { nick: "rosaline", error: { type: "cancel", condition: "not-acceptable" }, code: "room-nick-conflict" },
      { nick: "abram", error: { type: "cancel", condition: "policy-violation", text: "no" }, code: "room-refused" },
      { nick: "gregory", error: { type: "wait", condition: "policy-violation" }, code: "room-unavailable" },
    ] as const;
    for (const { nick, error, code } of cases) {
      const a = await env.account(nick);
      env.out.reset();
      const joining = assert.rejects(rooms.join(a.ref, ROOM, { nick }), (err: unknown) => appError(code)(err) && (err as { extra: { condition?: string } }).extra.condition === error.condition);
      await joinSent(nick);
      inbound.receive(inboundPresence(`${ROOM}/${nick}`, `${a.jid}/rooms`, "error", { error }));
      await inbound.idle();
      await joining;
    }
  });

  it("a change of the account's own role or affiliation (self-presence, 110) is a role-changed event and shows in the room", async () => {
    const a = await env.account("laurence");
    await join(a, "laurence", { others: ["juliet"] });
    const seq = await lastSeq(a);
    // §8.4 (voice revoked): the room presents the account again, as a visitor.
    await roomSays(a, "laurence", { role: "visitor", affiliation: "none" }, [110]);
    // §9.3 (membership granted): the same role, another affiliation.
    await roomSays(a, "laurence", { role: "visitor", affiliation: "member" }, [110]);
    // The same presence again (a presence update): nothing changed, no event.
    await roomSays(a, "laurence", { role: "visitor", affiliation: "member" }, [110]);
    assert.deepEqual(await roomEvents(a, seq), [
      { room: ROOM, kind: "role-changed", nick: "laurence", role: "visitor", affiliation: "none", self: true },
      { room: ROOM, kind: "role-changed", nick: "laurence", role: "visitor", affiliation: "member", self: true },
    ]);
    const view = await rooms.get(a.ref, ROOM);
    assert.deepEqual({ role: view.role, affiliation: view.affiliation }, { role: "visitor", affiliation: "member" });
  });

  it("while a rejoin waits for the room's answer the account is still in the room: subject changes and invitations are taken, after the join", async () => {
    const a = await env.account("benvolio");
    await join(a, "benvolio");
    env.out.reset();
    await rooms.rejoin();
    assert.equal((await rooms.get(a.ref, ROOM)).status, "joining");
    await rooms.setSubject(a.ref, ROOM, "Verona");
    await rooms.invite(a.ref, ROOM, "mercutio@example.net", null);
    await env.flush();
    const kinds = env.out.sent.filter((s) => "to" in s && s.to.startsWith(ROOM) && s.from.startsWith(a.jid)).map((s) => s.kind);
    assert.deepEqual(kinds, ["muc-join", "muc-subject", "muc-invite"]);
  });

  it("an invalid nick stored before nicks were checked is not rejoined: it would break the link (the join fails instead)", async () => {
    const a = await env.account("paris");
    await join(a, "paris");
    await env.db.pool.query("UPDATE room SET nick = $2 WHERE account_id = $1", [a.id, "pa\uFFFEris"]);
    env.out.reset();
    await rooms.rejoin();
    await env.flush();
    assert.deepEqual(
      env.out.sent.filter((s) => s.kind === "muc-join" && s.to.startsWith(ROOM) && s.from.startsWith(a.jid)),
      [],
      "no join presence with the invalid nick",
    );
    assert.equal((await env.db.prisma.room.findFirstOrThrow({ where: { accountId: a.id } })).status, "failed");
    assert.deepEqual((await roomEvents(a)).at(-1), { room: ROOM, kind: "join-failed", nick: "pa\uFFFEris", error: { type: "modify", condition: "jid-malformed" } });
  });
  it("a room the account blocked before blocking left rooms is left and forgotten at the rejoin, not joined again (XEP-0191 §3.3); the others are joined", async () => {
    const a = await env.account("tybalt");
    const blocking = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const guarded = new Rooms(env.db, env.delivery, env.domain, blocking);
    const [kept, byRoom, byDomain] = [ROOM, "feud@conference.example.net", "brawl@rooms.montague.example"];
    for (const room of [kept, byRoom, byDomain]) {
      await env.db.pool.query("INSERT INTO room (account_id, room, nick, status, role, affiliation) VALUES ($1, $2, 'tybalt', 'joined', 'participant', 'none')", [a.id, room]);
    }
    // Blocked as rows from before blocking left rooms: the room itself, and a domain above another room's.
    await env.db.pool.query("INSERT INTO block (account_id, jid) VALUES ($1, $2), ($1, $3)", [a.id, byRoom, "montague.example"]);
    env.out.reset();
    await guarded.rejoin();
    await env.flush();
    const mine = env.out.sent.filter((s) => "to" in s && s.from.startsWith(`${a.jid}/`));
    assert.deepEqual(
      mine.map((s) => `${s.kind}${s.kind === "presence" ? `:${s.type}` : ""} ${(s as { to: string }).to}`).sort(),
      [`muc-join ${kept}/tybalt`, `presence:unavailable ${byDomain}/tybalt`, `presence:unavailable ${byRoom}/tybalt`],
    );
    assert.deepEqual((await env.db.pool.query<{ room: string }>("SELECT room FROM room WHERE account_id = $1", [a.id])).rows, [{ room: kept }]);
  });
  it("a room the cached list blocks but another instance unblocked (its NOTIFY not heard here) is joined again at the rejoin, its state kept; one still blocked is left and forgotten", async () => {
    // Two instances over one database: `here` rejoins, with a cache of its own that read the list
    // while both blocks were there; `elsewhere` unblocked since, and its NOTIFY never reaches `here`.
    const a = await env.account("benvolio");
    const lists = new Blocklists(env.db.prisma);
    const here = new Blocking(env.db, lists, env.delivery);
    const elsewhere = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const guarded = new Rooms(env.db, env.delivery, env.domain, here);
    const [unblocked, still] = [ROOM, "feud@conference.example.net"];
    for (const room of [unblocked, still]) {
      await env.db.pool.query("INSERT INTO room (account_id, room, nick, status, role, affiliation) VALUES ($1, $2, 'benvolio', 'joined', 'participant', 'none')", [a.id, room]);
    }
    // Blocks as rows (blocking now leaves the rooms it covers; these rooms stay, as rooms joined before it did).
    await env.db.pool.query("INSERT INTO block (account_id, jid) VALUES ($1, $2), ($1, $3)", [a.id, unblocked, still]);
    assert.equal(await here.blocksJid(a.id, `${unblocked}/benvolio`), true, "cached with both blocks");
    await elsewhere.unblock(a.ref, unblocked);
    assert.equal(await here.blocksJid(a.id, `${unblocked}/benvolio`), true, "the cache has not heard of the unblock");
    await env.flush();
    env.out.reset();
    await guarded.rejoin();
    await env.flush();
    const mine = env.out.sent.filter((s) => "to" in s && s.from.startsWith(`${a.jid}/`));
    assert.deepEqual(
      mine.map((s) => `${s.kind}${s.kind === "presence" ? `:${s.type}` : ""} ${(s as { to: string }).to}`).sort(),
      [`muc-join ${unblocked}/benvolio`, `presence:unavailable ${still}/benvolio`],
    );
    assert.deepEqual((await env.db.pool.query<{ room: string }>("SELECT room FROM room WHERE account_id = $1", [a.id])).rows, [{ room: unblocked }], "the unblocked room kept");
    assert.equal(await here.blocksJid(a.id, `${unblocked}/benvolio`), false, "the stale list was forgotten");
  });
  it("answers a join once the subject message came after the self-presence (§7.2.16), with that subject; an earlier join's does not count", async () => {
    const a = await env.account("juliet");
    const first = await join(a, "juliet", { create: true });
    assert.equal(first.view.subject, null, "an empty <subject/>: the room has none");
    env.out.reset();
    // A rejoin (after a reconnect) is in flight: the PUT waits for its answer, sending nothing more.
    await rooms.rejoin();
    const again = rooms.join(a.ref, ROOM, { nick: "juliet" });
    await joinSent("juliet");
    // In flight from the earlier join (it comes before this join's self-presence): not this join's end.
    await roomSubject(a, "stale");
    await roomSays(a, "juliet", { role: "moderator", affiliation: "owner" }, [110]);
    assert.equal(await pendingAfter(again, 300), true, "no answer between the self-presence and the subject");
    await roomSubject(a, "Verona");
    const { view, created } = await again;
    assert.deepEqual({ status: view.status, subject: view.subject, created }, { status: "joined", subject: "Verona", created: false }, "the rejoin did not create the room");
    assert.deepEqual(await toRoom(a), ["muc-join:juliet"], "the rejoin's join presence alone");
    assert.deepEqual((await roomEvents(a)).filter((e) => e.kind === "subject").map((e) => e.subject), [null, "stale", "Verona"]);
  });

  it("answers a join without the subject when the room sends none, after a short grace", async () => {
    const a = await env.account("nurse");
    const joining = rooms.join(a.ref, ROOM, { nick: "nurse" });
    await joinSent("nurse");
    const presented = Date.now();
    await roomSays(a, "nurse", { role: "participant", affiliation: "none" }, [110]);
    const { view } = await joining;
    assert.equal(view.status, "joined");
    assert.ok(Date.now() - presented >= SUBJECT_GRACE_MS - 50, `answered after ${Date.now() - presented} ms, before the grace was over`);
  });

  it("takes the nick the room gives in the self-presence (§7.2.2, status 210): the answer, the list and own messages use it", async () => {
    const a = await env.account("mercutio");
    const { view } = await join(a, "mercutio", { given: "mercutio-2", statuses: [210] });
    assert.equal(view.nick, "mercutio-2");
    assert.deepEqual((await rooms.list(a.ref)).map((r) => r.nick), ["mercutio-2"]);
    assert.deepEqual(view.occupants.map((o) => o.nick), ["mercutio-2"]);
    inbound.receive(inboundMessage(`${ROOM}/mercutio-2`, `${a.jid}/rooms`, { type: "groupchat", id: "m1", body: "mine" }));
    await inbound.idle();
    const mine = (await env.events(a.id)).filter((e) => e.type === "message").map((e) => e.data as Record<string, unknown>);
    assert.deepEqual(mine.map((m) => ({ body: m.body, own: m.own })), [{ body: "mine", own: true }]);
    // Asking again for the nick first asked for: the room presents the account under the nick it has (no rename).
    env.out.reset();
    const again = rooms.join(a.ref, ROOM, { nick: "mercutio" });
    await joinSent("mercutio", "presence");
    await roomSays(a, "mercutio-2", { role: "participant", affiliation: "none" }, [110]);
    assert.equal((await again).view.nick, "mercutio-2");
  });
});
