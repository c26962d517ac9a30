// Sending a message does not write its row (src/db/message-status.ts): it leaves the message
// queue, and every reader derives `sent` (a group message: still on its way until its room
// reflects it) from that. Each reader is checked before and after the drain.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { listConversations } from "../../src/db/conversations.js";
import { lockMessage, messageRecord } from "../../src/db/message-state.js";
import type { NewOutbound } from "../../src/db/messages.js";
import { markReflected } from "../../src/db/room-reflections.js";
import { messageView } from "../../src/domain/views.js";
import { setup, teardown, type Env, type TestAccount } from "./setup.js";

const PEER = "juliet@example.net";
const ROOM = "chamber@rooms.example.net";

describe("message status as read", () => {
  let env: Env;
  before(async () => (env = await setup()));
  after(() => teardown(env));
  beforeEach(() => env.clean());

  const outbound = (a: TestAccount, type: "chat" | "groupchat"): NewOutbound => {
    const to = type === "chat" ? PEER : ROOM;
    return { id: randomUUID(), accountId: a.id, peer: to, from: a.jid, to, type, body: `a ${type}`, idempotencyKey: null, requestHash: null };
  };

  /** The status of `id` as each reader reports it. */
  const reads = async (a: TestAccount, id: string, peer: string) => {
    const tx = env.db.prisma;
    return {
      get: (await env.messages.get(id))!.status,
      history: (await env.messages.history(a.id, peer, null, null, 10)).rows.find((r) => r.id === id)!.status,
      record: (await messageRecord(tx, id)).status,
      locked: (await tx.$transaction((t) => lockMessage(t, a.id, id)))!.status,
      conversation: (await listConversations(tx, a.id, null, 10)).rows.find((c) => c.peer === peer)!.last.status,
    };
  };
  const every = (status: string) => ({ get: status, history: status, record: status, locked: status, conversation: status });
  const versions = async (ids: string[]) => (await env.db.pool.query<{ v: string }>("SELECT xmin::text || ctid::text AS v FROM message WHERE id = ANY($1::uuid[]) ORDER BY seq", [ids])).rows.map((r) => r.v);

  it("reads queued until the drain takes a message out of the queue, then sent, and the send leaves the row as it was", async () => {
    const a = await env.account("status");
    const [chat] = await env.messages.insertOutbound([outbound(a, "chat")]);
    assert.deepEqual(await reads(a, chat!.id, PEER), every("queued"));
    const before = await versions([chat!.id]);
    await env.flush();
    assert.ok(env.out.sent.some((s) => s.kind === "message" && s.id === chat!.id), "the drain sent it");
    assert.deepEqual(await reads(a, chat!.id, PEER), every("sent"));
    assert.deepEqual(await versions([chat!.id]), before, "no second version of the row");
    assert.equal(before.length, 1);
  });

  it("a group message reads written (queued in the API) once sent, and sent once its room reflected it", async () => {
    const a = await env.account("status");
    const [group] = await env.messages.insertOutbound([outbound(a, "groupchat")]);
    await env.flush();
    assert.deepEqual(await reads(a, group!.id, ROOM), every("written"));
    assert.equal(messageView((await env.messages.get(group!.id))!).status, "queued");
    assert.equal(await env.db.prisma.$transaction((t) => markReflected(t, a.id, group!.id)), "first");
    assert.deepEqual(await reads(a, group!.id, ROOM), every("sent"));
  });

  it("a receipt or an error recorded while the message is queued is what it reads, before and after the queue", async () => {
    const a = await env.account("status");
    const [delivered, failed] = await env.messages.insertOutbound([outbound(a, "chat"), outbound(a, "chat")]);
    await env.db.prisma.$transaction(async (t) => {
      assert.equal(await env.messages.markDelivered(t, a.id, delivered!.id, PEER), "marked");
      assert.equal(await env.messages.markFailed(t, a.id, failed!.id, PEER, { condition: "item-not-found" }), "marked");
    });
    assert.equal((await env.messages.get(delivered!.id))!.status, "delivered");
    assert.equal((await env.messages.get(failed!.id))!.status, "failed");
    await env.flush();
    assert.equal((await env.messages.get(delivered!.id))!.status, "delivered");
    assert.equal((await env.messages.get(failed!.id))!.status, "failed");
  });
});
