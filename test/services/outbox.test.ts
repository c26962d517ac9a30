// The stanza outbox (src/db/outbox.ts): a run of stanzas that differ only in their recipient (a
// presence broadcast) is stored as one row and written as the stanzas it stands for, in order.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { enqueue } from "../../src/db/outbox.js";
import { presence, subscription, type Stanza } from "../../src/domain/stanza.js";
import { setup, teardown, type Env } from "./setup.js";

describe("outbox", () => {
  let env: Env;
  before(async () => (env = await setup()));
  after(() => teardown(env));
  beforeEach(() => env.clean());

  it("stores a broadcast as one row and writes every stanza of it, in order, once", async () => {
    const a = await env.account("romeo");
    const from = `${a.jid}/phone`;
    const fans = Array.from({ length: 2000 }, (_, i) => `fan${i}@example.net`);
    const stanzas: Stanza[] = [
      ...fans.map((to) => presence(from, to, null, { show: "away", status: "out" })),
      subscription(a.jid, "nurse@example.net", "subscribe"),
      presence(from, "tybalt@example.net", null, { show: "away", status: "out" }),
      presence(from, "mercutio@example.net", null, { show: "dnd" }),
      { kind: "error", from: a.jid, replyTo: { name: "message", from: "x@example.net", id: "m1" }, code: "account-not-found" },
    ];
    await env.db.transaction((tx) => enqueue(tx, a.id, stanzas));
    const { rows } = await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox");
    assert.equal(rows[0]!.n, 5, "2,000 presences in one row, then one row each");
    assert.deepEqual((await env.outbox()).map((r) => r.stanza), stanzas, "listed as the stanzas they stand for");
    await env.flush();
    assert.deepEqual(env.out.sent, stanzas);
  });
});
