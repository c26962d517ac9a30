// A session going unavailable (Presence.endSession, Presence.expire) racing a subscription
// approval, against a real PostgreSQL. The approval gives the new subscriber the account's current
// presence from the available sessions it reads (RFC 6121 §3.1.5); the session's end tells the
// subscribers it reads that it is unavailable (§4.5.2). Without a lock they share, each reads the
// other's change as not yet made, and the new subscriber is told "available" and never
// "unavailable": the account stays online to her for good. The interleaving is forced by holding
// the outbox table: each use case waits at its first send, after its reads.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { holdLock } from "../helpers/held-lock.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Presence, type PresenceInput } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { setup, teardown, type Env, type TestAccount } from "./setup.js";

const OLD = "old@example.net"; // a subscriber (from) before the race
const NEW = "new@example.net"; // asked us; approved during the race
const AVAILABLE: PresenceInput = { type: "available", show: null, status: null, priority: 0 };

/**
 * Holds the outbox table in SHARE mode: every transaction that records a stanza (an INSERT) waits
 * there until release(). `until(n)` waits for n transactions of this database to wait on a lock.
 */
async function holdOutbox(env: Env) {
  return holdLock(env.tdb.url, (c) => c.query("LOCK TABLE outbox IN SHARE MODE"));
}

/** An account with one subscriber (OLD), a pending request from NEW, and `phone` available. */
async function account(env: Env, roster: Roster, presence: Presence): Promise<TestAccount> {
  const a = await env.account("juliet");
  const inbound = (contact: string) => env.db.transaction((tx) => applySubscription(tx, a.ref, contact, { kind: "inbound", type: "subscribe" }));
  await inbound(OLD);
  await roster.act(a.ref, OLD, "subscribed");
  await inbound(NEW);
  await presence.set(a.ref, "phone", AVAILABLE);
  return a;
}

/** Runs `ending` (the session's end) to its first send, then the approval of NEW, then lets both go. */
async function race(env: Env, roster: Roster, a: TestAccount, ending: () => Promise<unknown>): Promise<Stanza[]> {
  await env.flush();
  env.out.reset();
  const hold = await holdOutbox(env);
  let ended: Promise<unknown>;
  let approved: Promise<unknown>;
  try {
    ended = ending();
    await hold.until(1, "the session's end to wait");
    approved = roster.act(a.ref, NEW, "subscribed");
    await hold.until(2, "the approval to wait too");
  } finally {
    await hold.release();
  }
  await Promise.all([ended!, approved!]);
  await env.flush();
  return env.out.sent;
}

/** What the race must end with: OLD told unavailable, NEW approved, and never left with "available". */
function assertNotStuck(sent: Stanza[], a: TestAccount) {
  const phone = `${a.jid}/phone`;
  assert.ok(
    sent.some((s) => s.kind === "presence" && s.from === phone && s.to === OLD && s.type === "unavailable"),
    "the old subscriber is told the session is unavailable",
  );
  // The sentinel: the approval's own stanzas arrived.
  assert.ok(sent.some((s) => s.kind === "subscription" && s.to === NEW && s.type === "subscribed"), "the approval went out");
  const toNew = sent.flatMap((s) => (s.kind === "presence" && s.to === NEW && s.from === phone ? [s] : []));
  assert.ok(toNew.length === 0 || toNew.at(-1)!.type === "unavailable", `the new subscriber's last presence of the session: ${JSON.stringify(toNew)}`);
}

describe("Presence: a session's end racing a subscription approval", () => {
  let env: Env;
  let roster: Roster;

  before(async () => {
    env = await setup();
    roster = new Roster(env.db, env.delivery);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  it("expire(): the new subscriber is not left seeing the expired session available", async () => {
    const presence = env.presence({ graceSeconds: 0 });
    const a = await account(env, roster, presence);
    await sleep(5); // last_seen_at strictly before the expiring statement's now()
    assertNotStuck(await race(env, roster, a, () => presence.expire()), a);
    assert.deepEqual((await env.sessions.list(a.id)).map((s) => [s.resource, s.available]), [["phone", false]]);
  });

  it("endSession(): the new subscriber is not left seeing the ended session available", async () => {
    const presence = env.presence({ graceSeconds: 3600 });
    const a = await account(env, roster, presence);
    // Ended once before and available again: the end's mark (session_end) is there already, so
    // the second end writes no new row whose foreign key would take a share lock on the account.
    await presence.endSession(a.ref, "phone");
    await presence.set(a.ref, "phone", AVAILABLE);
    assertNotStuck(await race(env, roster, a, () => presence.endSession(a.ref, "phone")), a);
    assert.deepEqual(await env.sessions.list(a.id), []);
  });
});
