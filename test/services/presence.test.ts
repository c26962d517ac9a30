// The presence use case (src/services/presence.ts) against a real PostgreSQL and a fake outbound
// port: who gets the account's presence, who is probed, and when unavailable goes out. Roster rows
// are made the way the gateway makes them, through the subscription state machine.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Stanza } from "../../src/domain/stanza.js";
import { checkEvent } from "../helpers/event-schema.js";
import { holdLock } from "../helpers/held-lock.js";
import { Presence, type PresenceInput } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { setup, teardown, type Env, type TestAccount } from "./setup.js";

const TO = "to@example.net";
const FROM = "from@example.net";
const BOTH = "both@example.net";
const NONE = "none@example.net"; // asked, never answered: None + Pending Out
const STRANGER = "stranger@example.net"; // asked us, never answered: None + Pending In

const AVAILABLE: PresenceInput = { type: "available", show: "chat", status: "free", priority: 5 };
const UNAVAILABLE: PresenceInput = { type: "unavailable", show: null, status: "bye", priority: 0 };

/** A stable order for stanzas whose order the service does not define (roster rows come back unordered). */
const sorted = (stanzas: Stanza[]) => [...stanzas].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

const available = (from: string, to: string, p: PresenceInput = AVAILABLE): Stanza => ({ kind: "presence", from, to, type: null, show: p.show, status: p.status, priority: p.priority });
const unavailable = (from: string, to: string, status: string | null = null): Stanza => ({ kind: "presence", from, to, type: "unavailable", show: null, status, priority: null });
/**
 * The account's own sessions' presence events (RFC 6121 §4.2.2, §4.4.2, §4.5.2), in log order:
 * "<whose> <type> → <the session it is for>", checked against the catalogue and its `to`.
 */
const ownEvents = async (env: Env, a: TestAccount) =>
  (await env.events(a.id))
    .filter((e) => e.type === "presence" && (e.data as { self?: boolean }).self)
    .map((e) => {
      const d = e.data as { jid: string; resource: string; type: string; to: string };
      assert.equal(checkEvent("presence", e.data), null);
      assert.deepEqual([d.jid, d.to], [a.jid, `${a.jid}/${e.resource}`]);
      return `${d.resource} ${d.type} → ${e.resource}`;
    });
const probe = (from: string, to: string): Stanza => ({ kind: "presence", from, to, type: "probe", show: null, status: null, priority: null });

/** Everything recorded so far, once Delivery has written it to the port. */
async function sent(env: Env): Promise<Stanza[]> {
  await env.flush();
  return env.out.sent;
}

/** An account with one contact in each subscription state, made through the roster use cases. */
async function withContacts(env: Env, roster: Roster): Promise<TestAccount> {
  const a = await env.account("romeo");
  const inbound = (contact: string, type: "subscribe" | "subscribed") => env.db.transaction((tx) => applySubscription(tx, a.ref, contact, { kind: "inbound", type }));
  for (const c of [TO, BOTH, NONE]) await roster.act(a.ref, c, "subscribe");
  for (const c of [TO, BOTH]) await inbound(c, "subscribed");
  for (const c of [FROM, BOTH, STRANGER]) await inbound(c, "subscribe");
  for (const c of [FROM, BOTH]) await roster.act(a.ref, c, "subscribed");
  const subs = Object.fromEntries((await env.db.prisma.rosterItem.findMany({ where: { accountId: a.id } })).map((r) => [r.jid, r.subscription]));
  assert.deepEqual(subs, { [TO]: "to", [FROM]: "from", [BOTH]: "both", [NONE]: "none", [STRANGER]: "none" });
  await env.flush();
  env.out.reset();
  return a;
}

describe("Presence service", () => {
  let env: Env;
  let roster: Roster;
  let presence: Presence;

  before(async () => {
    env = await setup();
    roster = new Roster(env.db, env.delivery);
    presence = env.presence({ graceSeconds: 60 });
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  it("first available presence: broadcast to from/both, probes to to/both; a second session does not probe", async () => {
    const a = await withContacts(env, roster);
    await presence.set(a.ref, "phone", AVAILABLE);
    assert.deepEqual(
      sorted(await sent(env)),
      sorted([available(`${a.jid}/phone`, FROM), available(`${a.jid}/phone`, BOTH), probe(a.jid, TO), probe(a.jid, BOTH)]),
    );
    assert.equal(env.out.writes, 1, "one write for the whole change");

    await env.flush();
    env.out.reset();
    const away: PresenceInput = { type: "available", show: "away", status: null, priority: -1 };
    await presence.set(a.ref, "laptop", away);
    assert.deepEqual(sorted(await sent(env)), sorted([available(`${a.jid}/laptop`, FROM, away), available(`${a.jid}/laptop`, BOTH, away)]));

    await env.flush();
    env.out.reset();
    await presence.set(a.ref, "phone", { ...AVAILABLE, show: "dnd" });
    assert.deepEqual(
      sorted(await sent(env)),
      sorted([available(`${a.jid}/phone`, FROM, { ...AVAILABLE, show: "dnd" }), available(`${a.jid}/phone`, BOTH, { ...AVAILABLE, show: "dnd" })]),
      "a presence change of an available session is broadcast, without probes",
    );
  });

  it("unavailable goes to from/both for each session, including the last; unavailable of an unavailable session sends nothing", async () => {
    const a = await withContacts(env, roster);
    await presence.set(a.ref, "phone", AVAILABLE);
    await presence.set(a.ref, "laptop", AVAILABLE);
    await env.flush();
    env.out.reset();

    await presence.set(a.ref, "laptop", UNAVAILABLE);
    assert.deepEqual(sorted(await sent(env)), sorted([unavailable(`${a.jid}/laptop`, FROM, "bye"), unavailable(`${a.jid}/laptop`, BOTH, "bye")]));

    await env.flush();
    env.out.reset();
    await presence.set(a.ref, "phone", { ...UNAVAILABLE, status: null });
    assert.deepEqual(sorted(await sent(env)), sorted([unavailable(`${a.jid}/phone`, FROM), unavailable(`${a.jid}/phone`, BOTH)]));
    const sessions = await env.sessions.list(a.id);
    assert.deepEqual(
      sessions.map((s) => [s.resource, s.available]).sort(),
      [
        ["laptop", false],
        ["phone", false],
      ],
    );

    await env.flush();
    env.out.reset();
    await presence.set(a.ref, "phone", UNAVAILABLE);
    assert.deepEqual(await sent(env), []);

    // Everything is unavailable again: the next available presence is initial presence and probes.
    await presence.set(a.ref, "phone", AVAILABLE);
    assert.deepEqual(
      sorted(await sent(env)),
      sorted([available(`${a.jid}/phone`, FROM), available(`${a.jid}/phone`, BOTH), probe(a.jid, TO), probe(a.jid, BOTH)]),
    );
  });

  it("endSession: an available session's end broadcasts unavailable; an unknown session is false and sends nothing", async () => {
    const a = await withContacts(env, roster);
    await presence.set(a.ref, "phone", AVAILABLE);
    await env.sessions.streamOpened(a.id, "tablet"); // a session, never available
    await env.flush();
    env.out.reset();

    assert.equal(await presence.endSession(a.ref, "phone"), true);
    assert.deepEqual(sorted(await sent(env)), sorted([unavailable(`${a.jid}/phone`, FROM), unavailable(`${a.jid}/phone`, BOTH)]));
    assert.deepEqual(
      (await env.sessions.list(a.id)).map((s) => s.resource),
      ["tablet"],
    );

    await env.flush();
    env.out.reset();
    assert.equal(await presence.endSession(a.ref, "tablet"), true, "an unavailable session exists and ends");
    assert.deepEqual(await sent(env), [], "it was not available: nobody is told");
    assert.equal(await presence.endSession(a.ref, "phone"), false, "already ended");
    assert.equal(await presence.endSession(a.ref, "nope"), false);
    assert.deepEqual(await sent(env), []);
    // Tablet was never available: it heard nothing of phone, and phone had no other session to tell.
    assert.deepEqual(await ownEvents(env, a), []);
  });

  it("tells the account's other available sessions of a session's presence, never the session itself (RFC 6121 §4.2.2, §4.4.2, §4.5.2)", async () => {
    const a = await env.account("mercutio");
    await env.sessions.streamOpened(a.id, "laptop"); // a stream, but no presence: not an available resource
    await presence.set(a.ref, "phone", AVAILABLE);
    await presence.set(a.ref, "tablet", AVAILABLE);
    await presence.set(a.ref, "phone", { type: "available", show: "away", status: "out", priority: 1 });
    await presence.endSession(a.ref, "tablet");
    await presence.set(a.ref, "phone", UNAVAILABLE);
    assert.deepEqual(await ownEvents(env, a), ["tablet available → phone", "phone available → tablet", "tablet unavailable → phone"]);
    const away = (await env.events(a.id)).find((e) => e.type === "presence" && e.resource === "tablet")!.data;
    assert.deepEqual(away, { jid: a.jid, from: `${a.jid}/phone`, resource: "phone", type: "available", show: "away", status: "out", priority: 1, to: `${a.jid}/tablet`, self: true });
  });

  it("an account without subscribers sends no broadcast and probes nobody", async () => {
    const a = await env.account("loner");
    await presence.set(a.ref, "phone", AVAILABLE);
    assert.deepEqual(await sent(env), []);
  });
});

// expire() looks at every session in the database, so it gets a database of its own.
describe("Presence.expire", () => {
  let env: Env;

  before(async () => {
    env = await setup();
  });
  after(() => teardown(env));

  it("with graceSeconds 0, a stream-less available session goes unavailable, is broadcast and is told itself; one with a stream stays", async () => {
    const roster = new Roster(env.db, env.delivery);
    const presence = env.presence({ graceSeconds: 0 });
    const a = await withContacts(env, roster);
    await presence.set(a.ref, "phone", AVAILABLE);
    await env.sessions.streamOpened(a.id, "laptop");
    await presence.set(a.ref, "laptop", AVAILABLE);
    await new Promise((r) => setTimeout(r, 5)); // last_seen_at strictly before the expiring statement's now()
    await env.flush();
    env.out.reset();

    assert.equal(await presence.expire(), 1);
    assert.deepEqual(sorted(await sent(env)), sorted([unavailable(`${a.jid}/phone`, FROM), unavailable(`${a.jid}/phone`, BOTH)]));
    // Unavailable as an unavailable PUT leaves it (RFC 6121 §4.5.1): no show, no status, priority 0.
    const sessions = Object.fromEntries((await env.sessions.list(a.id)).map((s) => [s.resource, { available: s.available, show: s.show, status: s.status, priority: s.priority }]));
    assert.deepEqual(sessions, { phone: { available: false, show: null, status: null, priority: 0 }, laptop: { available: true, show: "chat", status: "free", priority: 5 } });

    await env.flush();
    env.out.reset();
    assert.equal(await presence.expire(), 0, "each session expires once");
    assert.deepEqual(await sent(env), []);
    // The expired session is told as well (its own event: a stream resuming it reads it).
    assert.deepEqual(await ownEvents(env, a), ["laptop available → phone", "phone unavailable → laptop", "phone unavailable → phone"]);
  });

  it("a session whose streams died with their instance goes unavailable once and is broadcast; an unavailable one only stops counting them", async () => {
    const roster = new Roster(env.db, env.delivery);
    // Dead after 60 s untouched: env.sessions' deadSeconds(60, 15 s).
    const presence = env.presence({ graceSeconds: 1 });
    const a = await withContacts(env, roster);
    for (const r of ["phone", "tablet", "laptop"]) await env.sessions.streamOpened(a.id, r);
    await presence.set(a.ref, "phone", AVAILABLE);
    await presence.set(a.ref, "laptop", AVAILABLE);
    // The phone's and the tablet's streams were on an instance that died 2 minutes ago; the laptop's is live.
    await env.db.pool.query("UPDATE session SET last_seen_at = now() - interval '120 seconds' WHERE account_id = $1 AND resource IN ('phone', 'tablet')", [a.id]);
    await env.flush();
    env.out.reset();

    assert.equal(await presence.expire(), 1, "one session went unavailable");
    assert.deepEqual(sorted(await sent(env)), sorted([unavailable(`${a.jid}/phone`, FROM), unavailable(`${a.jid}/phone`, BOTH)]));
    const sessions = Object.fromEntries((await env.sessions.list(a.id)).map((s) => [s.resource, [s.available, s.streams]]));
    assert.deepEqual(sessions, { phone: [false, 0], tablet: [false, 0], laptop: [true, 1] });

    await env.flush();
    env.out.reset();
    assert.equal(await presence.expire(), 0, "each session expires once");
    assert.deepEqual(await sent(env), []);
    assert.deepEqual(await ownEvents(env, a), ["laptop available → phone", "phone unavailable → laptop", "phone unavailable → phone"]);
  });

  it("one expire() sweeps every due account, past a chunk that claimed fewer accounts than it locked", async () => {
    // Two accounts a transaction: the first chunk locks the first two of three due accounts.
    const presence = env.presence({ graceSeconds: 0, expireAccounts: 2 });
    await presence.expire(); // nothing else due: the chunks are these accounts'
    const [held, a, b] = [await env.account("chunk"), await env.account("chunk"), await env.account("chunk")];
    for (const x of [held, a, b]) await presence.set(x.ref, "phone", AVAILABLE);
    await new Promise((r) => setTimeout(r, 5)); // last_seen_at strictly before the expiring statement's now()
    // The first account is held, as a PUT /v1/presence holds it (lockAccount), and goes unavailable
    // in that transaction: the first chunk finds it due and locks it once the PUT commits, but its
    // claim (checking again) finds it no longer due, and claims one account of the two it locked.
    const hold = await holdLock(env.tdb.url, async (c) => {
      await c.query("SELECT id FROM account WHERE id = $1 FOR UPDATE", [held.id]);
      await c.query("UPDATE session SET available = false, last_seen_at = now() WHERE account_id = $1", [held.id]);
    });
    let swept: Promise<number>;
    try {
      swept = presence.expire();
      await hold.until(1, "the sweep to wait for the held account");
    } finally {
      await hold.release();
    }
    assert.equal(await swept!, 2, "a's and b's sessions went unavailable in the one sweep");
    const phone = async (x: TestAccount) => (await env.sessions.list(x.id)).map((s) => [s.resource, s.available]);
    assert.deepEqual([await phone(held), await phone(a), await phone(b)], [[["phone", false]], [["phone", false]], [["phone", false]]]);
  });
});
