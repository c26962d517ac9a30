// Unblocks another gateway instance committed that this one has not heard of yet (XEP-0191 §3.4,
// API.md "Several instances"): the Inbound use case checks every stanza against its own cached
// blocklists (src/db/blocklist.ts, forgotten when the NOTIFY of a change comes), and a stanza the
// cached list blocks is dropped only if the list as the batch's transaction reads it agrees
// (src/services/inbound.ts). Here the Inbound's Blocklists cached the account's list while the
// blocks were there; another instance's Blocking (with a cache of its own) then unblocked, and its
// NOTIFY is never delivered here (no listener), so the cached list stays stale. The opposite case,
// a block this instance has not heard of, is inbound-stale-blocks.test.ts. Against a real
// PostgreSQL and a fake outbound port.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { feedBatch, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { JULIET, NURSE, PIAZZA, staleBlocklistKit, type StaleBlocklistKit } from "./stale-blocklist.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

describe("Inbound with a cached blocklist that missed an unblock", () => {
  let env: Env;
  let kit: StaleBlocklistKit;

  before(async () => {
    env = await setup();
    kit = staleBlocklistKit(env);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  /**
   * An account that blocked `blocked`, an Inbound whose cached list of it holds them all, and then
   * the other instance's unblocks of `unblocked`. `prepare`: runs before the blocks.
   */
  async function staleAfter(blocked: string[], unblocked: string[], prepare?: (a: TestAccount) => Promise<void>) {
    const { inbound, lists } = kit.inboundWithCache();
    const a = await env.account("romeo");
    await prepare?.(a);
    for (const item of blocked) await kit.elsewhere.block(a.ref, item);
    assert.deepEqual([...(await lists.of(a.id))].sort(), [...blocked].sort(), "cached with the blocks");
    for (const item of unblocked) await kit.elsewhere.unblock(a.ref, item);
    assert.equal((await lists.of(a.id)).size, blocked.length, "the cache has not heard of the unblocks");
    await env.flush();
    env.out.reset();
    return { a, inbound, lists, seen: (await env.events(a.id)).at(-1)?.seq ?? 0 };
  }

  it("a plain message from a JID unblocked elsewhere is stored and logged, not bounced; the stale list is forgotten", async () => {
    const { a, inbound, lists, seen } = await staleAfter(["juliet@example.net", "nurse@other.example"], ["juliet@example.net"]);
    await feedBatch(inbound, inboundMessage(JULIET, a.jid, { id: "j1", body: "unblocked" }));
    assert.deepEqual(await env.sent(), [], "no bounce");
    assert.deepEqual(await kit.logged(a, seen), ["message: unblocked"]);
    assert.deepEqual(await kit.storedBodies(a), ["unblocked"]);
    assert.deepEqual([...(await lists.of(a.id))], ["nurse@other.example"], "read afresh");
  });

  it("what the committed list still blocks is bounced as before, in the same batch as what it no longer does", async () => {
    // The cached list blocks all three; the committed one only Nurse (and the domain item is gone).
    const TYBALT = "tybalt@sub.example.net/x";
    const { a, inbound, seen } = await staleAfter(["juliet@example.net", "example.net", "nurse@other.example"], ["juliet@example.net", "example.net"]);
    await feedBatch(
      inbound,
      inboundMessage(NURSE, a.jid, { id: "n1", body: "still blocked" }),
      inboundMessage(JULIET, a.jid, { id: "j1", body: "from Juliet" }),
      inboundMessage(TYBALT, a.jid, { id: "t1", body: "from a subdomain" }),
      inboundMessage(NURSE, a.jid, { id: "n2", body: "still blocked again" }),
    );
    assert.deepEqual(await env.sent(), [kit.bounced(a, NURSE, "n1"), kit.bounced(a, NURSE, "n2")]);
    assert.deepEqual(await kit.logged(a, seen), ["message: from Juliet", "message: from a subdomain"]);
    assert.deepEqual(await kit.storedBodies(a), ["from Juliet", "from a subdomain"]);
  });

  it("a sender still blocked costs one read of the committed list per batch, however many stanzas it sends", async () => {
    const { a, inbound, lists, seen } = await staleAfter(["nurse@other.example"], []);
    let reads = 0;
    const list = lists.list.bind(lists);
    lists.list = (tx, accountId) => (tx !== env.db.prisma && reads++, list(tx, accountId)); // not the cache's own reads
    const ids = ["n1", "n2", "n3", "n4", "n5"];
    await feedBatch(inbound, ...ids.map((id) => inboundMessage(NURSE, a.jid, { id, body: id })));
    assert.deepEqual(await env.sent(), ids.map((id) => kit.bounced(a, NURSE, id)));
    assert.deepEqual(await kit.logged(a, seen), []);
    // One in each run: the one-statement path gives up at its first statement, the transaction reads.
    assert.equal(reads, 2);
  });

  it("presence: a contact's answer to the unblock's probe is recorded, and a subscription request is delivered", async () => {
    const roster = new Roster(env.db, env.delivery);
    const presence = env.presence({ graceSeconds: 60 });
    // The account is subscribed to Juliet's presence (`to`), and has a session to hear of it.
    const { a, inbound, seen } = await staleAfter(["juliet@example.net", "tybalt@example.net"], ["juliet@example.net", "tybalt@example.net"], async (a) => {
      await roster.act(a.ref, "juliet@example.net", "subscribe");
      await env.db.transaction((tx) => applySubscription(tx, a.ref, "juliet@example.net", { kind: "inbound", type: "subscribed" }));
      await presence.set(a.ref, "phone", { type: "available", show: null, status: null, priority: 0 });
    });
    await feedBatch(inbound, inboundPresence(JULIET, a.jid, "available", { status: "back" }), inboundPresence("tybalt@example.net", a.jid, "subscribe"));
    assert.deepEqual(await kit.logged(a, seen), ["presence: juliet@example.net back", "subscription: tybalt@example.net"]);
    assert.deepEqual(
      (await presence.contacts(a.id)).map((c) => [c.jid, c.resources.map((r) => r.resource)]),
      [["juliet@example.net", ["balcony"]]],
    );
    assert.deepEqual((await roster.pending(a.id)).map((p) => p.jid), ["tybalt@example.net"]);
  });

  it("room traffic from an occupant unblocked elsewhere is stored; a still blocked one's is dropped", async () => {
    const { a, inbound, seen } = await staleAfter([`${PIAZZA}/tybalt`, `${PIAZZA}/mercutio`], [`${PIAZZA}/tybalt`]);
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [a.id, PIAZZA]);
    await feedBatch(
      inbound,
      inboundMessage(`${PIAZZA}/tybalt`, `${a.jid}/rooms`, { type: "groupchat", id: "g1", body: "unblocked group message" }),
      inboundMessage(`${PIAZZA}/mercutio`, `${a.jid}/rooms`, { type: "groupchat", id: "g2", body: "blocked group message" }),
    );
    assert.deepEqual(await env.sent(), [], "nothing goes back to the room");
    assert.deepEqual(await kit.logged(a, seen), ["message: unblocked group message"]);
    assert.deepEqual(await kit.storedBodies(a), ["unblocked group message"]);
  });
});
