// Group messages from rooms in a batch (src/services/inbound.ts, src/services/inbound-room.ts,
// src/db/room-lookups.ts): what each needs to know (the account in the room, its nick there, the
// sender's real JID, whether the message is stored already) is read for the whole batch in one
// statement, and the batch is written in one more, with no transaction. These check that this
// changes nothing a room message means: a copy is one message, whether stored before or in the
// same batch; a presence in the batch is seen by the messages after it; rooms' last message times.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import type { Inbound } from "../../src/services/inbound.js";
import { countedInbound, feedBatch, setup, teardown, type Env, type InboundCounts } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const PIAZZA = "piazza@conference.example.net";
const LOGGIA = "loggia@conference.example.net";

describe("Inbound room message batches", () => {
  let env: Env;
  let inbound: Inbound;
  let counts: InboundCounts;

  before(async () => {
    env = await setup();
    ({ inbound, counts } = countedInbound(env));
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** One batch (setup.ts feedBatch). */
  const feed = (...stanzas: (InboundMessage | InboundPresence)[]) => feedBatch(inbound, ...stanzas);
  const joined = async (accountId: number, ...rooms: string[]) => {
    for (const room of rooms) await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [accountId, room]);
  };
  const stored = async (accountId: number) =>
    (await env.db.pool.query<{ body: string; peer: string; stanza_id: string; ext: unknown }>("SELECT body, peer, stanza_id, ext FROM message WHERE account_id = $1 AND direction = 'in' ORDER BY seq", [accountId])).rows;
  const logged = async (accountId: number, after: number) =>
    (await env.events(accountId, after)).map((e) => {
      const d = e.data as { body?: string; room?: string; nick?: string; kind?: string };
      return e.type === "message" ? [d.body, d.room ?? null, d.nick ?? null] : [e.type, d.kind];
    });
  const lastMessageAt = async (accountId: number) =>
    Object.fromEntries(
      (await env.db.pool.query<{ room: string; at: Date | null }>("SELECT room, last_message_at AS at FROM room WHERE account_id = $1", [accountId])).rows.map((r) => [r.room, r.at?.toISOString() ?? null]),
    );

  it("one statement reads the batch's room facts and one writes it: a copy stored before, or earlier in the batch, is one message; last message times are the rooms' latest", async () => {
    const a = await env.account("romeo");
    await joined(a.id, PIAZZA, LOGGIA);
    await env.db.pool.query("INSERT INTO room_occupant (account_id, room, nick, role, affiliation, jid) VALUES ($1, $2, 'mercutio', 'participant', 'none', 'mercutio@example.net/phone')", [a.id, PIAZZA]);
    const group = (room: string, nick: string, id: string, body: string, delay: string) =>
      inboundMessage(`${room}/${nick}`, `${a.jid}/rooms`, { type: "groupchat", id, body, delay });
    await feed(group(PIAZZA, "mercutio", "g0", "stored before", "2026-11-01T10:00:00.000Z"));
    const h = (await env.events(a.id)).at(-1)!.seq;
    const [before, aloneBefore] = [counts.transactions, counts.alone];
    await feed(
      group(PIAZZA, "mercutio", "g0", "stored before (history)", "2026-11-30T10:00:00.000Z"),
      group(PIAZZA, "mercutio", "g1", "one", "2026-11-02T10:00:00.000Z"),
      group(LOGGIA, "tybalt", "g1", "two", "2026-11-04T10:00:00.000Z"),
      inboundMessage("juliet@example.net/balcony", a.jid, { id: "c1", body: "a chat message" }),
      group(PIAZZA, "mercutio", "g1", "one (again)", "2026-11-29T10:00:00.000Z"),
      group(PIAZZA, "benvolio", "g2", "three", "2026-11-03T10:00:00.000Z"),
    );
    assert.equal(counts.transactions - before, 0, "no transaction");
    assert.equal(counts.alone - aloneBefore, 2, "the room messages' facts, then the batch's writes");
    assert.deepEqual(await logged(a.id, h), [
      ["one", PIAZZA, "mercutio"],
      ["two", LOGGIA, "tybalt"],
      ["a chat message", null, null],
      ["three", PIAZZA, "benvolio"],
    ]);
    const rows = await stored(a.id);
    assert.deepEqual(
      rows.map((r) => [r.body, r.peer, r.stanza_id]),
      [
        ["stored before", PIAZZA, "g0"],
        ["one", PIAZZA, "g1"],
        ["two", LOGGIA, "g1"],
        ["a chat message", "juliet@example.net", "c1"],
        ["three", PIAZZA, "g2"],
      ],
    );
    assert.deepEqual(rows[1]!.ext, { occupant: { jid: "mercutio@example.net" } }, "the sender's real JID, as the room presented it");
    assert.equal(rows[4]!.ext, null, "an occupant the room did not present: no real JID");
    // A copy (seen) does not move the time a rejoin asks history from.
    assert.deepEqual(await lastMessageAt(a.id), { [PIAZZA]: "2026-11-03T10:00:00.000Z", [LOGGIA]: "2026-11-04T10:00:00.000Z" });
  });

  it("a copy is also known by the stanza-id its room gave it (XEP-0359): without an id from its sender, or with one too long to store; before the batch or in it", async () => {
    const a = await env.account("romeo");
    await joined(a.id, PIAZZA);
    const long = "x".repeat(3200);
    const group = (id: string | null, roomStanzaId: string | null, body: string, delay: string | null = null) =>
      inboundMessage(`${PIAZZA}/mercutio`, `${a.jid}/rooms`, { type: "groupchat", id, body, roomStanzaId, delay });
    const past = "2026-12-01T10:00:00.000Z";
    await feed(group(long, "rs-1", "a long id"), group(null, "rs-2", "no id"), group(null, null, "no ids at all"));
    const h = (await env.events(a.id)).at(-1)!.seq;
    // The rejoin's history replays them (§7.2.15, delayed), beside two new messages, one of them
    // twice; the second copy of "newer" is known by its sender's id alone, as history. After it,
    // a live message with that id again: news (a sender may use an id again on a new stream).
    await feed(
      group(long, "rs-1", "a long id", past),
      group(null, "rs-2", "no id", past),
      group(null, "rs-3", "new"),
      group("n-4", "rs-4", "newer"),
      group(null, "rs-3", "new", past),
      group("n-4", null, "newer", past),
      group("n-4", null, "live, its id again"),
    );
    assert.deepEqual(await logged(a.id, h), [
      ["new", PIAZZA, "mercutio"],
      ["newer", PIAZZA, "mercutio"],
      ["live, its id again", PIAZZA, "mercutio"],
    ]);
    assert.deepEqual(
      (await stored(a.id)).map((r) => r.body),
      ["a long id", "no id", "no ids at all", "new", "newer", "live, its id again"],
    );
  });

  it("a room's presence in the batch is what the messages after it see: an occupant's real JID, the account's new nick, a kick; all in one raw pg transaction", async () => {
    const a = await env.account("romeo");
    await joined(a.id, PIAZZA, LOGGIA);
    const group = (room: string, nick: string, id: string, body: string, extra: Partial<InboundMessage> = {}) =>
      inboundMessage(`${room}/${nick}`, `${a.jid}/rooms`, { type: "groupchat", id, body, ...extra });
    const muc = (extra: object) => ({ role: "participant" as const, affiliation: "none" as const, jid: null, newNick: null, statuses: [], ...extra });
    const h = (await env.events(a.id)).at(-1)?.seq ?? 0;
    const [before, rawBefore] = [counts.transactions, counts.raw];
    await feed(
      group(PIAZZA, "benvolio", "b1", "before entering"),
      inboundPresence(`${PIAZZA}/benvolio`, `${a.jid}/rooms`, "available", { muc: muc({ jid: "benvolio@example.net/desk" }) }),
      group(PIAZZA, "benvolio", "b2", "after entering"),
      // The account's nick changes (§7.6.2): its own messages come from the new one.
      inboundPresence(`${PIAZZA}/romeo`, `${a.jid}/rooms`, "unavailable", { muc: muc({ newNick: "montague", statuses: [110, 303] }) }),
      group(PIAZZA, "montague", "o1", "from the new nick"),
      // Kicked from the loggia (§8.2): what follows from it is no room message of the account's.
      group(LOGGIA, "tybalt", "t1", "before the kick"),
      inboundPresence(`${LOGGIA}/romeo`, `${a.jid}/rooms`, "unavailable", { muc: muc({ role: "none", statuses: [110, 307] }) }),
      group(LOGGIA, "tybalt", "t2", "after the kick"),
    );
    // Rooms' stanzas run raw SQL only: no Prisma transaction (src/services/inbound.ts needsPrisma).
    assert.deepEqual([counts.transactions - before, counts.raw - rawBefore], [1, 1], "one raw pg transaction");
    const rows = await stored(a.id);
    assert.deepEqual(
      rows.map((r) => [r.body, r.ext]),
      [
        ["before entering", null],
        ["after entering", { occupant: { jid: "benvolio@example.net" } }],
        ["from the new nick", null],
        ["before the kick", null],
      ],
    );
    const events = await env.events(a.id, h);
    const own = events.filter((e) => e.type === "message").map((e) => [(e.data as { body: string }).body, (e.data as { own?: boolean }).own]);
    assert.deepEqual(own, [
      ["before entering", false],
      ["after entering", false],
      ["from the new nick", true],
      ["before the kick", false],
    ]);
    assert.deepEqual(
      events.filter((e) => e.type === "room").map((e) => (e.data as { kind: string }).kind),
      ["occupant-joined", "nick-changed", "kicked"],
    );
    // "after the kick": a groupchat message from no room the account is in, to its room resource, bounced (RFC 6121 §8.5.3.2.1).
    await env.flush();
    assert.deepEqual(
      env.out.sent.filter((s) => s.kind === "error").map((s) => (s as { replyTo: { id: string } }).replyTo.id),
      ["t2"],
    );
  });
});
