// Blocks another gateway instance committed that this one has not heard of yet (XEP-0191 §3.3,
// API.md "Several instances"): the Inbound use case checks every stanza against its own cached
// blocklists (src/db/blocklist.ts, forgotten when the NOTIFY of a change comes), and the statement
// that would store what a stanza brings checks the committed list (src/db/inbound-writes.ts). Here
// the Inbound's Blocklists cached the account's empty list before another instance's Blocking
// (with a cache of its own) blocked; its NOTIFY is never delivered here (no listener), so the
// cached list stays stale. Against a real PostgreSQL and a fake outbound port.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Inbound } from "../../src/services/inbound.js";
import { Roster } from "../../src/services/roster.js";
import { feedBatch, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { JULIET, NURSE, PIAZZA, staleBlocklistKit, type StaleBlocklistKit } from "./stale-blocklist.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

describe("Inbound with a cached blocklist that missed a block", () => {
  let env: Env;
  let kit: StaleBlocklistKit;

  before(async () => {
    env = await setup();
    kit = staleBlocklistKit(env);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  /** An account, an Inbound whose cached list of it is empty, and then the other instance's blocks of `items`. */
  async function staleAfter(...items: string[]): Promise<{ a: TestAccount; inbound: Inbound; seen: number }> {
    const { inbound, lists } = kit.inboundWithCache();
    const a = await env.account("romeo");
    assert.deepEqual([...(await lists.of(a.id))], [], "cached before the blocks");
    for (const item of items) await kit.elsewhere.block(a.ref, item);
    await env.flush();
    env.out.reset();
    return { a, inbound, seen: (await env.events(a.id)).at(-1)?.seq ?? 0 };
  }

  it("plain messages (the one-statement path): hers is bounced and neither stored nor logged; the batch's others are, and her next one is bounced at once", async () => {
    const { a, inbound, seen } = await staleAfter("juliet@example.net");
    await feedBatch(inbound, inboundMessage(JULIET, a.jid, { id: "j1", body: "blocked" }), inboundMessage(NURSE, a.jid, { id: "n1", body: "sentinel" }));
    assert.deepEqual(await env.sent(), [kit.bounced(a, JULIET, "j1")]);
    assert.deepEqual(await kit.logged(a, seen), ["message: sentinel"]);
    assert.deepEqual(await kit.storedBodies(a), ["sentinel"]);
    assert.deepEqual((await env.db.pool.query("SELECT peer, unread FROM conversation WHERE account_id = $1", [a.id])).rows, [{ peer: "nurse@other.example", unread: 1 }], "no conversation with her");
    env.out.reset();
    await feedBatch(inbound, inboundMessage(JULIET, a.jid, { id: "j2", body: "blocked again" }));
    assert.deepEqual(await env.sent(), [kit.bounced(a, "juliet@example.net/balcony", "j2")]);
    assert.deepEqual(await kit.storedBodies(a), ["sentinel"]);
  });

  it("in a transaction (a subscription request in the batch), by XEP-0191 matching: a domain covers its subdomains, a full JID item that resource alone; nothing of the blocked is kept", async () => {
    const TYBALT = "tybalt@sub.example.net/x"; // under the domain item example.net
    const MERCUTIO = "mercutio@badexample.net/y"; // not under it: a suffix without the dot
    const { a, inbound, seen } = await staleAfter("example.net", "nurse@other.example/garden");
    await feedBatch(
      inbound,
      inboundPresence("tybalt@sub.example.net", a.jid, "subscribe"),
      inboundMessage(TYBALT, a.jid, { id: "t1", body: "from a subdomain" }),
      inboundMessage(NURSE, a.jid, { id: "n1", body: "from the blocked resource" }),
      inboundMessage("nurse@other.example/balcony", a.jid, { id: "n2", body: "from another resource" }),
      inboundPresence("mercutio@badexample.net", a.jid, "subscribe"),
      inboundMessage(MERCUTIO, a.jid, { id: "m1", body: "sentinel" }),
    );
    assert.deepEqual(await env.sent(), [kit.bounced(a, TYBALT, "t1"), kit.bounced(a, NURSE, "n1")], "no answer to the blocked request");
    assert.deepEqual(await kit.logged(a, seen), ["message: from another resource", "subscription: mercutio@badexample.net", "message: sentinel"]);
    assert.deepEqual(await kit.storedBodies(a), ["from another resource", "sentinel"]);
    assert.deepEqual((await new Roster(env.db, env.delivery).pending(a.id)).map((p) => p.jid), ["mercutio@badexample.net"]);
  });

  it("room traffic from a blocked occupant is dropped, not bounced (an error would take the account out of the room): group messages and private ones to the occupant JID", async () => {
    const { a, inbound, seen } = await staleAfter(`${PIAZZA}/tybalt`);
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status) VALUES ($1, $2, 'romeo', 'joined')", [a.id, PIAZZA]);
    await feedBatch(
      inbound,
      inboundMessage(`${PIAZZA}/tybalt`, `${a.jid}/rooms`, { type: "groupchat", id: "g1", body: "blocked group message" }),
      inboundMessage(`${PIAZZA}/tybalt`, `${a.jid}/rooms`, { id: "p1", body: "blocked private message" }),
      inboundMessage(`${PIAZZA}/mercutio`, `${a.jid}/rooms`, { type: "groupchat", id: "g2", body: "sentinel" }),
    );
    assert.deepEqual(await env.sent(), [], "nothing goes back to the room");
    assert.deepEqual(await kit.logged(a, seen), ["message: sentinel"]);
    assert.deepEqual(await kit.storedBodies(a), ["sentinel"]);
  });
});
