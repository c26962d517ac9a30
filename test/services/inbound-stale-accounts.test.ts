// Accounts another gateway instance deleted, or deleted and created again under a new id, before
// this one read the NOTIFY that drops its cache entry (API.md "Several instances"): the Inbound
// use case routes with its cached account (src/db/accounts.ts), and what the batch writes under
// the old id fails (its foreign key, its missing row, its lock). The batch is routed again with
// those accounts read afresh (src/services/inbound-stale.ts): the stanzas are the new account's,
// or, for an account only deleted, handled as to an account that never existed; never bounced as
// a storage failure. Here the Inbound's store cached the accounts and has no listener (its NOTIFY
// never comes); another store, as another instance would, deletes and creates them. Against a
// real PostgreSQL and a fake outbound port.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Accounts as AccountStore } from "../../src/db/accounts.js";
import type { InboundMessage, InboundPresence } from "../../src/domain/inbound.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Accounts } from "../../src/services/accounts.js";
import { Roster } from "../../src/services/roster.js";
import { countedInbound, feedBatch, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";
const NURSE = "nurse@other.example/garden";

describe("Inbound with a cached account that another instance deleted (and created again)", () => {
  let env: Env;
  /** The other instance: it deletes and creates, with a cache of its own. */
  let elsewhere: { store: AccountStore; accounts: Accounts };

  before(async () => {
    env = await setup();
    const store = new AccountStore(env.db.prisma);
    elsewhere = { store, accounts: new Accounts(store, env.delivery, env.domain, false) };
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  /** Accounts this instance's store caches (created through it), then deleted elsewhere and, with `again`, created anew. */
  async function stale(again: boolean, ...prefixes: string[]): Promise<{ old: TestAccount[]; now: (number | null)[] }> {
    const old: TestAccount[] = [];
    for (const p of prefixes) old.push(await env.account(p));
    for (const a of old) {
      await elsewhere.accounts.delete(a.localpart);
      if (again) await elsewhere.store.create(a.localpart);
    }
    await env.flush();
    env.out.reset();
    const now = [];
    for (const a of old) now.push((await env.db.prisma.account.findUnique({ where: { localpart: a.localpart } }))?.id ?? null);
    for (const [i, id] of now.entries()) if (again) assert.ok(id !== null && id !== old[i]!.id, "created again under a new id");
    return { old, now };
  }
  const sent = async () => {
    await env.flush();
    return env.out.sent;
  };
  /** Each event's type and, for a message, its body or chat state; for a subscription, its sender. */
  const logged = async (accountId: number) =>
    (await env.events(accountId)).map((e) => {
      const d = e.data as { body?: unknown; state?: unknown; jid?: unknown };
      return `${e.type}: ${e.type === "message" ? String(d.body ?? d.state) : String(d.jid)}`;
    });
  const messagesOf = async (accountId: number) => (await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM message WHERE account_id = $1", [accountId])).rows[0]!.n;
  const feed = (inbound: ReturnType<typeof countedInbound>["inbound"], ...stanzas: (InboundMessage | InboundPresence)[]) => feedBatch(inbound, ...stanzas);

  it("plain messages (the one-statement path): stored for the new accounts with the batch's others, once, on that path; no bounce", async () => {
    const { old, now } = await stale(true, "romeo", "mercutio");
    const other = await env.account("benvolio");
    const { inbound, counts } = countedInbound(env);
    await feed(
      inbound,
      inboundMessage(JULIET, old[0]!.jid, { id: "r1", body: "to romeo" }),
      inboundMessage(NURSE, other.jid, { id: "b1", body: "to benvolio" }),
      inboundMessage(JULIET, old[1]!.jid, { id: "m1", body: "to mercutio" }),
    );
    assert.deepEqual(await sent(), [], "nothing bounced");
    assert.deepEqual(await logged(now[0]!), ["message: to romeo"]);
    assert.deepEqual(await logged(now[1]!), ["message: to mercutio"]);
    assert.deepEqual(await logged(other.id), ["message: to benvolio"], "the batch's other message, once");
    assert.equal(await messagesOf(other.id), 1);
    assert.equal(counts.transactions, 0, "routed again on the one-statement path, not stanza by stanza");

    // Its entries are fresh now: the next batch is the new accounts' at once.
    const before = counts.alone;
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "r2", body: "again" }));
    assert.equal(counts.alone - before, 1, "one statement, as for any batch");
    assert.deepEqual(await logged(now[0]!), ["message: to romeo", "message: again"]);
  });

  it("a chat state alone (events, no message row) and a subscription request (a transaction) are the new accounts'", async () => {
    const { old, now } = await stale(true, "juliet-state", "juliet-sub");
    const { inbound } = countedInbound(env);
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "c1", state: "composing" }));
    await feed(inbound, inboundPresence("nurse@other.example", old[1]!.jid, "subscribe"));
    assert.deepEqual(await sent(), [], "nothing bounced");
    assert.deepEqual(await logged(now[0]!), ["message: composing"]);
    assert.deepEqual(await logged(now[1]!), ["subscription: nurse@other.example"]);
    assert.deepEqual((await new Roster(env.db, env.delivery).pending(now[1]!)).map((p) => p.jid), ["nurse@other.example"]);
  });

  it("a chat state alone to a stale account beside a message to another (events only for it): the other's stored once, not again on the second run", async () => {
    const { old, now } = await stale(true, "state-again");
    const { old: gone } = await stale(false, "state-gone");
    const other = await env.account("benvolio");
    const { inbound, counts } = countedInbound(env);
    await feed(inbound, inboundMessage(NURSE, other.jid, { id: "b1", body: "to benvolio" }), inboundMessage(JULIET, old[0]!.jid, { id: "c1", state: "composing" }));
    assert.equal(counts.transactions, 0, "routed again on the one-statement path");
    // A bounce is recorded with what caused it: this batch's second run is a transaction.
    await feed(inbound, inboundMessage(NURSE, other.jid, { id: "b2", body: "again" }), inboundMessage(JULIET, gone[0]!.jid, { id: "c2", state: "paused" }));
    assert.deepEqual(await logged(other.id), ["message: to benvolio", "message: again"], "each message once");
    assert.equal(await messagesOf(other.id), 2);
    assert.deepEqual(await logged(now[0]!), ["message: composing"]);
    assert.deepEqual(await sent(), [{ kind: "error", from: gone[0]!.jid, replyTo: { name: "message", from: JULIET, id: "c2" }, code: "account-not-found" }], "the chat state to no account bounced, the message not");
  });

  it("deleted only: a message, a chat state too, is bounced as to an account that never existed; a subscription request vanishes; nothing stored", async () => {
    const { old } = await stale(false, "gone-msg", "gone-sub", "gone-state");
    const { inbound } = countedInbound(env);
    const nobody = `nobody@${env.domain}`;
    await feed(inbound, inboundMessage(JULIET, old[0]!.jid, { id: "g1", body: "anyone?" }), inboundMessage(JULIET, nobody, { id: "n1", body: "anyone?" }));
    await feed(inbound, inboundPresence("nurse@other.example", old[1]!.jid, "subscribe"));
    await feed(inbound, inboundMessage(JULIET, old[2]!.jid, { id: "g2", state: "composing" }), inboundMessage(JULIET, nobody, { id: "n2", state: "composing" }));
    const bounce = (from: string, id: string): Stanza => ({ kind: "error", from, replyTo: { name: "message", from: JULIET, id }, code: "account-not-found" });
    assert.deepEqual(
      await sent(),
      [bounce(old[0]!.jid, "g1"), bounce(nobody, "n1"), bounce(old[2]!.jid, "g2"), bounce(nobody, "n2")],
      "service-unavailable, as to no account (RFC 6121 §8.5.1); no answer to the subscription request",
    );
    assert.deepEqual((await env.db.pool.query("SELECT count(*)::int AS n FROM message WHERE stanza_id IN ('g1', 'g2')")).rows[0], { n: 0 });
  });
});
