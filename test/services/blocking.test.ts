// The blocking use case (src/services/blocking.ts) against a real PostgreSQL and a fake outbound
// port: unblocking is idempotent, and a block drops the stored presence of the contacts it covers
// (XEP-0191 §3 matching), so none of it reappears after an unblock.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Blocklists } from "../../src/db/blocklist.js";
import { setContactPresence } from "../../src/db/contact-presence.js";
import { Blocking } from "../../src/services/blocking.js";
import { Presence } from "../../src/services/presence.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { appError, setup, teardown, type Env, type TestAccount } from "./setup.js";

const JULIET = "juliet@example.net";
const TYBALT = "tybalt@sub.example.net"; // covered by a block of example.net (a subdomain)
const MERCUTIO = "mercutio@badexample.net"; // not covered by it: a suffix without the dot
const NURSE = "nurse@other.example";

describe("Blocking service", () => {
  let env: Env;
  let roster: Roster;
  let presence: Presence;
  let blocking: Blocking;

  before(async () => {
    env = await setup();
    roster = new Roster(env.db, env.delivery);
    presence = env.presence({ graceSeconds: 60 });
    blocking = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  const head = async (a: TestAccount) => (await env.events(a.id)).at(-1)?.seq ?? 0;
  const listed = async (a: TestAccount) => (await presence.contacts(a.id)).map((c) => `${c.jid}: ${c.resources.map((r) => r.resource).join(",")}`);

  /** An account subscribed (`to`) to each contact, with the given resources of theirs stored as available. */
  async function withPresence(resources: Record<string, string[]>): Promise<TestAccount> {
    const a = await env.account("romeo");
    for (const [jid, rs] of Object.entries(resources)) {
      await roster.act(a.ref, jid, "subscribe");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, jid, { kind: "inbound", type: "subscribed" }));
      await env.db.transaction(async (tx) => {
        for (const r of rs) await setContactPresence(tx, a.id, jid, r, { show: null, status: null, priority: 0 });
      });
    }
    await env.flush();
    env.out.reset();
    return a;
  }

  it("unblocking a JID that is not blocked succeeds and changes nothing (XEP-0191 defines no error for it)", async () => {
    const a = await env.account("romeo");
    await blocking.unblock(a.ref, JULIET);
    await blocking.block(a.ref, NURSE);
    await blocking.unblock(a.ref, NURSE);
    await blocking.unblock(a.ref, NURSE); // twice: idempotent
    assert.deepEqual(await blocking.list(a.id), []);
    await env.flush();
    assert.deepEqual(env.out.sent, []);
  });

  it("a block clears the stored presence it covers, with an unavailable event each: nothing stale shows after the unblock", async () => {
    const a = await withPresence({ [JULIET]: ["balcony", "garden"], [TYBALT]: ["x"], [MERCUTIO]: ["y"], [NURSE]: ["z"] });
    assert.deepEqual(await listed(a), [`${JULIET}: balcony,garden`, `${MERCUTIO}: y`, `${NURSE}: z`, `${TYBALT}: x`]);
    const gone = (jid: string, resource: string) => ({ type: "presence", data: { jid, from: `${jid}/${resource}`, resource, type: "unavailable", show: null, status: null, priority: 0 } });

    // A full JID item covers that resource only.
    let seen = await head(a);
    await blocking.block(a.ref, `${JULIET}/balcony`);
    assert.deepEqual(
      (await env.events(a.id, seen)).map((e) => ({ type: e.type, data: e.data })),
      [gone(JULIET, "balcony")],
    );
    assert.deepEqual(await listed(a), [`${JULIET}: garden`, `${MERCUTIO}: y`, `${NURSE}: z`, `${TYBALT}: x`]);

    // A domain covers every contact at it and at its subdomains.
    seen = await head(a);
    await blocking.block(a.ref, "example.net");
    assert.deepEqual(
      (await env.events(a.id, seen)).map((e) => ({ type: e.type, data: e.data })),
      [gone(JULIET, "garden"), gone(TYBALT, "x")],
    );

    // Unblocked: what was stored of them is gone, not shown again; the others are untouched.
    await blocking.unblock(a.ref, "example.net");
    await blocking.unblock(a.ref, `${JULIET}/balcony`);
    assert.deepEqual(await listed(a), [`${MERCUTIO}: y`, `${NURSE}: z`]);

    // A bare JID item covers each of its resources.
    seen = await head(a);
    await blocking.block(a.ref, NURSE);
    assert.deepEqual(
      (await env.events(a.id, seen)).map((e) => ({ type: e.type, data: e.data })),
      [gone(NURSE, "z")],
    );
    await blocking.unblock(a.ref, NURSE);
    assert.deepEqual(await listed(a), [`${MERCUTIO}: y`]);
  });

  it("sends a blocked contact nothing when the account unsubscribes, denies or removes it (XEP-0191 §3.3): the roster changes here only", async () => {
    const guarded = new Roster(env.db, env.delivery, blocking);
    const a = await withPresence({ [JULIET]: [], [TYBALT]: [], [MERCUTIO]: [] });
    // Juliet asked for the account's presence too: a request to deny.
    await env.db.transaction((tx) => applySubscription(tx, a.ref, JULIET, { kind: "inbound", type: "subscribe" }));
    await blocking.block(a.ref, "example.net");
    await env.flush();
    env.out.reset();
    assert.equal((await guarded.act(a.ref, JULIET, "unsubscribed")).subscription, "to");
    assert.equal((await guarded.act(a.ref, JULIET, "unsubscribe")).subscription, "none");
    await guarded.remove(a.ref, TYBALT);
    // The sentinel: a contact the block does not cover hears of it.
    await guarded.act(a.ref, MERCUTIO, "unsubscribe");
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => ("to" in s ? [s.to, "type" in s ? s.type : s.kind] : [s.kind])), [[MERCUTIO, "unsubscribe"]]);
    const items = JSON.parse((await guarded.read(a.id, undefined)).json!.toString()).items as { jid: string; subscription: string }[];
    assert.deepEqual(items.map((i) => [i.jid, i.subscription]), [[JULIET, "none"], [MERCUTIO, "none"]]);
  });

  it("subscribe and approve to a JID blocked a moment ago are 400 blocked and roll back, even where the cached list predates the block (XEP-0191 §3.3)", async () => {
    // Two gateway instances over one database: the roster's Blocking cached the account's (empty)
    // list before the other blocked, and never hears of the change (its NOTIFY is not delivered
    // here). The check inside the action's transaction reads the list under the account lock.
    const stale = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const guarded = new Roster(env.db, env.delivery, stale);
    const a = await env.account("romeo");
    await env.db.transaction((tx) => applySubscription(tx, a.ref, NURSE, { kind: "inbound", type: "subscribe" })); // a request to approve
    assert.equal(await stale.blocksJid(a.id, JULIET), false, "cached before the block");
    await blocking.block(a.ref, JULIET);
    await blocking.block(a.ref, NURSE);
    await env.flush();
    env.out.reset();
    const rosterBefore = (await guarded.read(a.id, undefined)).json!.toString();
    const seen = await head(a);

    await assert.rejects(guarded.act(a.ref, JULIET, "subscribe"), appError("blocked"));
    await assert.rejects(guarded.act(a.ref, NURSE, "subscribed"), appError("blocked")); // her request stays unanswered
    await assert.rejects(guarded.act(a.ref, JULIET, "subscribed"), appError("blocked")); // a pre-approval too, as before
    assert.equal((await guarded.read(a.id, undefined)).json!.toString(), rosterBefore, "no roster change");
    assert.deepEqual((await guarded.pending(a.id)).map((p) => p.jid), [NURSE], "the request still waits");
    assert.deepEqual(await env.events(a.id, seen), [], "no event");
    await env.flush();
    assert.deepEqual(env.out.sent, [], "nothing sent");
  });

  it("a send to a JID the cached list blocks but another instance unblocked is not refused; one still blocked is (XEP-0191 §3.4)", async () => {
    // Two gateway instances over one database: `stale` cached the account's list while both JIDs
    // were blocked, and never hears of the unblock (its NOTIFY is not delivered here). A message,
    // a join or an invitation checks the cached list (no statement when it blocks nothing); a
    // block it holds is confirmed by the committed list before the request is refused.
    const stale = new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery);
    const a = await env.account("romeo");
    await blocking.block(a.ref, JULIET);
    await blocking.block(a.ref, NURSE);
    await assert.rejects(stale.assertNotBlocked(a.id, JULIET, "body.to"), appError("blocked"), "cached while blocked");
    await blocking.unblock(a.ref, JULIET);
    assert.equal(await stale.blocksJid(a.id, JULIET), true, "the cached list is stale");

    await stale.assertNotBlocked(a.id, `${JULIET}/balcony`, "body.to");
    await assert.rejects(stale.assertNotBlocked(a.id, NURSE, "body.to"), appError("blocked"), "still blocked");
    assert.equal(await stale.blocksJid(a.id, JULIET), false, "the stale list was forgotten");
  });

  it("checks that ask at once whether a JID the cached list blocks is still blocked share one read of the committed list (a batch's messages)", async () => {
    // Reads through the database's client, not the cache's fills (both are list(); the cache was filled before).
    class Counting extends Blocklists {
      reads = 0;
      override list(tx: Parameters<Blocklists["list"]>[0], accountId: number): Promise<string[]> {
        this.reads++;
        return super.list(tx, accountId);
      }
    }
    const lists = new Counting(env.db.prisma);
    const here = new Blocking(env.db, lists, env.delivery);
    const a = await env.account("romeo");
    await here.block(a.ref, NURSE);
    assert.equal(await here.blocksJid(a.id, NURSE), true, "cached");
    lists.reads = 0;
    const checks = await Promise.allSettled(Array.from({ length: 50 }, () => here.assertNotBlocked(a.id, NURSE, "body.to")));
    assert.equal(checks.filter((c) => c.status === "rejected").length, 50, "all refused");
    assert.equal(lists.reads, 1, "one read for the 50");
  });

  it("an unblock probes the contacts it covered that the account is subscribed to, from its bare JID, so their presence comes back (RFC 6121 §4.3.1)", async () => {
    const FRIAR = "friar@example.net"; // covered, but only subscribed to the account ("from"): not probed
    const a = await withPresence({ [JULIET]: ["balcony", "garden"], [TYBALT]: ["x"], [MERCUTIO]: ["y"], [NURSE]: ["z"] });
    await env.db.transaction((tx) => applySubscription(tx, a.ref, FRIAR, { kind: "inbound", type: "subscribe" }));
    await roster.act(a.ref, FRIAR, "subscribed");
    const probes = async () => {
      await env.flush();
      const sent = env.out.sent.map((s) => ("type" in s ? [s.kind, s.from, s.to, s.type] : [s.kind]));
      env.out.reset();
      return sent;
    };
    const probe = (to: string) => ["presence", a.jid, to, "probe"];

    await blocking.block(a.ref, "example.net");
    await blocking.block(a.ref, `${NURSE}/z`);
    await blocking.block(a.ref, JULIET); // Juliet twice: by her domain and by her bare JID
    await probes();
    assert.deepEqual(await listed(a), [`${MERCUTIO}: y`]);

    // The domain goes: Tybalt (at a subdomain) is probed; Juliet is still blocked, the friar
    // receives no presence of ours to probe for, and Mercutio was never covered.
    await blocking.unblock(a.ref, "example.net");
    assert.deepEqual(await probes(), [probe(TYBALT)]);
    await blocking.unblock(a.ref, JULIET);
    assert.deepEqual(await probes(), [probe(JULIET)]);
    // A full JID item covered one resource of hers: she is probed (the answer brings that one back).
    await blocking.unblock(a.ref, `${NURSE}/z`);
    assert.deepEqual(await probes(), [probe(NURSE)]);
    // Nothing was blocked: nothing sent.
    await blocking.unblock(a.ref, NURSE);
    assert.deepEqual(await probes(), []);
  });
});
