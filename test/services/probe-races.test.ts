// A probe's answer (src/services/inbound-presence.ts) racing a change of the account's presence,
// against a real PostgreSQL. The answer reads the available sessions inside the inbound batch's
// transaction and is queued only when that batch commits; a session's end (DELETE
// /v1/sessions, the expiry sweep) or a PUT /v1/presence broadcasts under the account's lock.
// Unless the answer's read takes a lock that those writers wait for, a writer that commits
// between the read and the batch's commit has its broadcast queued before the answer, and the
// prober is left with the answer's stale presence for good (online after the end, offline after
// the account came online). The interleaving is forced by a separate client holding the row of
// another account that the same batch writes to after the probe (a message to it): the batch
// stops after the probe's read, and the writer runs (or waits for the batch) meanwhile.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { holdLock } from "../helpers/held-lock.js";
import type { Stanza } from "../../src/domain/stanza.js";
import type { Inbound } from "../../src/services/inbound.js";
import { Presence, type PresenceInput } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { feedBatch, inboundOf, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const CONTACT = "contact@example.net"; // subscribed to the account (`from`): her server probes it
const AVAILABLE: PresenceInput = { type: "available", show: null, status: null, priority: 0 };

/**
 * Holds account `id`'s row (FOR UPDATE, as lockAccount): a batch that writes to that account waits
 * there until release(). `until(n)` waits for n transactions of this database to wait on a lock.
 */
async function holdAccount(env: Env, id: number) {
  return holdLock(env.tdb.url, (c) => c.query("SELECT id FROM account WHERE id = $1 FOR UPDATE", [id]));
}

/**
 * What the contact makes of the presence she was sent from the account, in order: its available
 * resources (a bare unavailable, the answer for none, ends them all, RFC 6121 §4.3.2).
 */
function seenOnline(sent: Stanza[], a: TestAccount): string[] {
  const online = new Set<string>();
  for (const s of sent) {
    // Broadcasts go to her bare JID, the probe's answer to the full JID that probed: both reach her.
    if (s.kind !== "presence" || !(s.to === CONTACT || s.to.startsWith(`${CONTACT}/`)) || !(s.from === a.jid || s.from.startsWith(`${a.jid}/`))) continue;
    const resource = s.from.slice(a.jid.length + 1);
    if (s.type === null) online.add(resource);
    else if (s.type === "unavailable") {
      if (resource) online.delete(resource);
      else online.clear();
    }
  }
  return [...online].sort();
}

describe("a probe's answer racing a change of the account's presence", () => {
  let env: Env;
  let roster: Roster;
  let inbound: Inbound;

  before(async () => {
    env = await setup();
    roster = new Roster(env.db, env.delivery);
    inbound = inboundOf(env);
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** An account CONTACT is subscribed to, with `phone` available unless `online` is false. */
  async function account(presence: Presence, online = true): Promise<TestAccount> {
    const a = await env.account("juliet");
    await env.db.transaction((tx) => applySubscription(tx, a.ref, CONTACT, { kind: "inbound", type: "subscribe" }));
    await roster.act(a.ref, CONTACT, "subscribed");
    if (online) await presence.set(a.ref, "phone", AVAILABLE);
    return a;
  }

  /**
   * CONTACT's probe and, in the same batch, a message to another account whose row is held: the
   * batch stops after the probe's read. `change` runs then, to its end (no lock orders it with the
   * probe) or until it waits for the batch; then the batch goes on. Returns what was sent since.
   */
  async function race(a: TestAccount, change: () => Promise<unknown>): Promise<Stanza[]> {
    const other = await env.account("romeo");
    await env.flush();
    env.out.reset();
    const hold = await holdAccount(env, other.id);
    let batch: Promise<void>;
    let changed: Promise<unknown>;
    try {
      batch = feedBatch(inbound, inboundPresence(`${CONTACT}/home`, a.jid, "probe"), inboundMessage("nurse@example.net/x", other.jid, { body: "the sentinel" }));
      await hold.until(1, "the batch to wait for the held account");
      changed = change();
      await Promise.race([changed, hold.until(2, "the change to wait (for the batch)")]);
    } finally {
      await hold.release();
    }
    await Promise.all([batch!, changed!]);
    assert.deepEqual(
      (await env.events(other.id)).map((e) => e.type),
      ["message"],
      "the batch committed (its message is stored)",
    );
    await env.flush();
    return env.out.sent;
  }

  /** Both stanzas of the race went to the contact (the check below is over a list that has them). */
  function assertBoth(sent: Stanza[], a: TestAccount, changeType: "unavailable" | null) {
    const toContact = sent.filter((s) => s.kind === "presence" && s.to.startsWith(CONTACT));
    assert.ok(toContact.some((s) => s.kind === "presence" && s.to === CONTACT && s.from.startsWith(a.jid) && s.type === changeType), `the change's broadcast: ${JSON.stringify(toContact)}`);
    assert.ok(toContact.some((s) => s.kind === "presence" && s.to === `${CONTACT}/home`), `the probe's answer: ${JSON.stringify(toContact)}`);
  }

  it("DELETE /v1/sessions (endSession): the prober is not left seeing the ended session online", async () => {
    const presence = env.presence({ graceSeconds: 3600 });
    const a = await account(presence);
    const sent = await race(a, () => presence.endSession(a.ref, "phone"));
    assertBoth(sent, a, "unavailable");
    assert.deepEqual(seenOnline(sent, a), [], `what the contact was sent: ${JSON.stringify(sent)}`);
  });

  it("the expiry sweep (expire): the prober is not left seeing the expired session online", async () => {
    const presence = env.presence({ graceSeconds: 0 });
    const a = await account(presence);
    await sleep(5); // last_seen_at strictly before the sweep's now()
    const sent = await race(a, () => presence.expire());
    assertBoth(sent, a, "unavailable");
    assert.deepEqual(seenOnline(sent, a), [], `what the contact was sent: ${JSON.stringify(sent)}`);
  });

  it("PUT /v1/presence unavailable: the prober is not left seeing the session online", async () => {
    const presence = env.presence({ graceSeconds: 3600 });
    const a = await account(presence);
    const sent = await race(a, () => presence.set(a.ref, "phone", { type: "unavailable", show: null, status: "gone", priority: 0 }));
    assertBoth(sent, a, "unavailable");
    assert.deepEqual(seenOnline(sent, a), [], `what the contact was sent: ${JSON.stringify(sent)}`);
  });

  it("a revocation of her subscription (unsubscribed): the prober is not sent the presence she no longer may see", async () => {
    // The probe decides from the roster item whether the prober is a subscriber (§4.3.2). The
    // revocation (Roster.act: RFC 6121 §3.2.2, unsubscribed then the sessions' unavailable) is
    // stopped at its send, holding the account's lock with the item changed but not committed;
    // the probe then reads the item and waits for that lock. Read before the lock, the item says
    // `from`, and the answer (the available session) goes out after the revocation's stanzas.
    const presence = env.presence({ graceSeconds: 3600 });
    const a = await account(presence);
    await env.flush();
    env.out.reset();
    const hold = await holdLock(env.tdb.url, (c) => c.query("LOCK TABLE outbox IN SHARE MODE"));
    let revoked: Promise<unknown>;
    let batch: Promise<void>;
    try {
      revoked = roster.act(a.ref, CONTACT, "unsubscribed");
      await hold.until(1, "the revocation to wait at its send");
      batch = feedBatch(inbound, inboundPresence(`${CONTACT}/home`, a.jid, "probe"));
      await hold.until(2, "the probe to wait for the account's lock");
    } finally {
      await hold.release();
    }
    await Promise.all([revoked!, batch!]);
    await env.flush();
    const sent = env.out.sent;
    // The sentinels: the revocation's unsubscribed, and the probe's answer (presence to her full
    // JID, or the unsubscribed a non-subscriber's probe gets): two stanzas at least.
    const unsubscribed = sent.filter((s) => s.kind === "subscription" && s.to === CONTACT && s.from === a.jid && s.type === "unsubscribed");
    const toFull = sent.filter((s) => s.kind === "presence" && s.to === `${CONTACT}/home`);
    assert.ok(unsubscribed.length >= 1 && unsubscribed.length + toFull.length >= 2, `the revocation and the probe's answer: ${JSON.stringify(sent)}`);
    assert.ok(!sent.some((s) => s.kind === "presence" && s.to === `${CONTACT}/home` && s.type === null), `no presence answers her probe: ${JSON.stringify(sent)}`);
    assert.deepEqual(seenOnline(sent, a), [], `what the contact was sent: ${JSON.stringify(sent)}`);
  });

  it("PUT /v1/presence available: the prober is not left seeing the account offline", async () => {
    const presence = env.presence({ graceSeconds: 3600 });
    const a = await account(presence, false);
    const sent = await race(a, () => presence.set(a.ref, "phone", AVAILABLE));
    assertBoth(sent, a, null);
    assert.deepEqual(seenOnline(sent, a), ["phone"], `what the contact was sent: ${JSON.stringify(sent)}`);
  });
});
