// Statement texts cached per shape (src/db/statement-texts.ts): the inbound store
// (src/db/inbound-writes.ts storeInbound) and the events' append (src/db/events.ts) each build
// their text once per shape. Here every shape runs in one process, each after others, against a
// real PostgreSQL: a key that left out what a text depends on would hand one shape another's
// text, whose parameters do not match (PostgreSQL refuses the statement) or whose rows differ.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { autocommit, type AnyTx } from "../../src/db/client.js";
import { appendEvents, type NewEvent } from "../../src/db/events.js";
import { storeInbound, type InboundRow, type Sender } from "../../src/db/inbound-writes.js";
import { event } from "../../src/domain/events.js";
import { inboundRow, setup, teardown, type Env, type TestAccount } from "../services/setup.js";

const sub = (a: TestAccount, n: string): NewEvent => ({ accountId: a.id, ...event("subscription", { jid: `${n}@example.net`, type: "subscribe" }) }) as NewEvent;
const row = (a: TestAccount, body: string): InboundRow => inboundRow(a, body);
const sender = (a: TestAccount): Sender => ({ accountId: a.id, jid: "juliet@example.net/balcony" });

describe("statement texts cached per shape", () => {
  let env: Env;
  let a: TestAccount;
  let b: TestAccount;
  before(async () => {
    env = await setup();
    a = await env.account("shape");
    b = await env.account("shape");
  });
  after(() => teardown(env));

  it("every shape of storeInbound and appendEvents, one after another, writes what it was given", async () => {
    const pg = autocommit(env.db.pool);
    const viaPrisma = (fn: (tx: AnyTx) => Promise<unknown>) => env.db.transaction(async (tx) => void (await fn(tx)));
    // Each step: what it stores, and the subscription names it appends per account.
    const steps: [string, () => Promise<unknown>, string[], string[]][] = [
      ["one event", () => storeInbound(pg, [], [sub(a, "e1")]), ["e1"], []],
      ["one event and a room's latest message time", () => storeInbound(pg, [], [sub(a, "e1a")], null, [{ accountId: a.id, room: "lobby@conference.example.net", at: new Date() }]), ["e1a"], []],
      ["one event, one sender", () => storeInbound(pg, [], [sub(a, "e2")], null, [], [sender(a)]), ["e2"], []],
      ["two accounts' events", () => storeInbound(pg, [], [sub(a, "e3"), sub(b, "e4")]), ["e3"], ["e4"]],
      ["two events of one account", () => storeInbound(pg, [], [sub(a, "e3a"), sub(a, "e3b")]), ["e3a", "e3b"], []],
      ["one event, two senders", () => storeInbound(pg, [], [sub(b, "e3c")], null, [], [sender(a), sender(b)]), [], ["e3c"]],
      ["one message and its event, one sender", () => storeInbound(pg, [row(a, "m1")], [sub(a, "e5")], null, [], [sender(a)]), ["e5"], []],
      ["two messages, two events, two senders", () => storeInbound(pg, [row(a, "m2"), row(b, "m3")], [sub(a, "e6"), sub(b, "e7")], null, [], [sender(a), sender(b)]), ["e6"], ["e7"]],
      ["one message and its event", () => storeInbound(pg, [row(a, "m4")], [sub(a, "e8")]), ["e8"], []],
      ["two messages, one event", () => storeInbound(pg, [row(a, "m5"), row(a, "m6")], [sub(a, "e8a")]), ["e8a"], []],
      ["one event in a Prisma transaction", () => viaPrisma((tx) => storeInbound(tx, [], [sub(a, "e9")])), ["e9"], []],
      ["one event in a Prisma transaction, one sender", () => viaPrisma((tx) => storeInbound(tx, [], [sub(b, "e10")], null, [], [sender(b)])), [], ["e10"]],
      ["appendEvents, one event", () => appendEvents(pg, [sub(a, "e11")]), ["e11"], []],
      ["appendEvents, two accounts", () => appendEvents(pg, [sub(a, "e12"), sub(b, "e13")]), ["e12"], ["e13"]],
      ["one event again", () => storeInbound(pg, [], [sub(b, "e14")]), [], ["e14"]],
    ];
    const names = async (t: TestAccount) => (await env.events(t.id)).map((e) => (e.data as { jid: string }).jid.split("@")[0]);
    const want = { a: [] as string[], b: [] as string[] };
    for (const [what, run, forA, forB] of steps) {
      await run().catch((err: unknown) => assert.fail(`${what}: ${String(err)}`));
      want.a.push(...forA);
      want.b.push(...forB);
      assert.deepEqual({ a: await names(a), b: await names(b) }, want, what);
    }
    const { rows } = await env.db.pool.query<{ body: unknown }>("SELECT body FROM message WHERE account_id = ANY($1::int[]) ORDER BY seq", [[a.id, b.id]]);
    assert.deepEqual(rows.map((r) => r.body), ["m1", "m2", "m3", "m4", "m5", "m6"]);
  });
});
