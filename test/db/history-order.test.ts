// The history's cursor is a message's `seq`, and paging forward (`after`) skips nothing only if
// the messages of one conversation commit in `seq` order. An outbound insert draws its `seq`, and
// here is held before it commits (its Idempotency-Key is taken by a transaction still open, which
// it waits for); an inbound message of the same conversation is stored meanwhile. Before the
// conversation's row was locked ahead of the draw (src/db/conversations.ts lockConversations), the
// inbound one committed first, a forward page ended at it, and the outbound one, committed after
// under a lower `seq`, was behind that page's cursor for good (stop 63's audit forced it so).
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { autocommit } from "../../src/db/client.js";
import { readHistory } from "../../src/db/message-history.js";
import { storeInbound } from "../../src/db/inbound-writes.js";
import { inboundRow, setup, teardown, type Env, type TestAccount } from "../services/setup.js";

const JULIET = "juliet@example.net";

describe("the history's order: messages of a conversation commit in seq order", () => {
  let env: Env;
  let a: TestAccount;
  before(async () => {
    env = await setup();
    a = await env.account("order");
  });
  after(() => teardown(env));

  const inbound = (body: string) => inboundRow(a, body, `${JULIET}/balcony`);

  const outbound = (body: string, key: string | null) => ({ id: randomUUID(), accountId: a.id, peer: JULIET, from: a.jid, to: JULIET, type: "chat" as const, body, idempotencyKey: key, requestHash: key && "h" });
  const waiting = async (n: number) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const { rows } = await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      if (rows[0]!.n >= n) return;
      if (Date.now() > deadline) throw new Error(`${n} waiting on a lock: not within 5 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const page = async (afterSeq: number) => {
    const { rows } = await readHistory(env.db.pool, a.id, JULIET, null, afterSeq, 50);
    // Oldest first: with `after`, readHistory reads upward (the route turns the page newest first).
    return rows.map((m) => ({ body: m.body, seq: Number(m.seq) }));
  };

  it("a forward page read while an earlier-drawn message is held ends before it, and the next holds both", async () => {
    // The conversation exists (its row is what the writers lock): a first message.
    await env.messages.insertOutbound([outbound("first", null)]);
    const [start] = await page(0);
    assert.equal(start?.body, "first");

    // Another transaction holds the key the held message will ask for.
    const key = `k-${randomUUID()}`;
    const holder = new pg.Client({ connectionString: env.tdb.url });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query(
      `INSERT INTO message (id, account_id, direction, peer, "to", "from", type, status, idempotency_key, request_hash) VALUES ($1, $2, 'out', 'someone@example.net', 'someone@example.net', $3, 'chat', 'queued', $4, 'h')`,
      [randomUUID(), a.id, a.jid, key],
    );
    const held = env.messages.insertOutbound([outbound("held", key)]);
    await waiting(1);
    const later = storeInbound(autocommit(env.db.pool), [inbound("later")], []);
    // The inbound one either waits for the held one (the fix) or is committed by now (the bug).
    const settled = await Promise.race([later.then(() => "stored"), new Promise((r) => setTimeout(() => r("waiting"), 500))]);
    const read = await page(start!.seq);
    await holder.query("ROLLBACK");
    await holder.end();
    await held;
    await later;

    const pages = [...read];
    const next = await page(read.length ? read[read.length - 1]!.seq : start!.seq);
    pages.push(...next);
    assert.deepEqual(
      pages.map((m) => m.body),
      ["held", "later"],
      `paging forward from "first" while the held message waited (the inbound one ${settled}): the first page ${JSON.stringify(read)}, the next ${JSON.stringify(next)}`,
    );
  });
});
