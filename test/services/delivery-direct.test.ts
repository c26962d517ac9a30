// The direct path of src/services/delivery.ts: on the single link holder, a message this instance
// inserts goes on the link right after its insert, with no claim, and is recorded as sent after a
// barrier. These tests pin down when it may and may not: anything queued ahead that the holder
// does not know of (another instance's message, a stanza in the outbox) keeps the sequence order
// by sending through the drain; a failed barrier leaves the message queued for the next drain; a
// drain under steady load hands back to the direct path.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { subscription, type Stanza } from "../../src/domain/stanza.js";
import { Delivery } from "../../src/services/delivery.js";
import { Messaging } from "../../src/services/messaging.js";
import { FakeOutbound } from "./fake-port.js";
import { setup, teardown, waitFor, type Env } from "./setup.js";
import { statusSql } from "../../src/db/message-status.js";

const TO = "juliet@example.net";
const tag = (s: Stanza) => (s.kind === "message" ? `message ${String(s.body)}` : `${s.kind} ${s.from}`);

describe("Delivery: the direct path", () => {
  let env: Env;
  let messaging: Messaging;

  before(async () => {
    env = await setup();
    messaging = env.messaging();
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  /** Waits until the direct path is open (a send is on the port when it resolves); returns the port's stanzas from then on. */
  const untilDirect = async (a: Env["account"] extends (...x: never[]) => Promise<infer A> ? A : never) => {
    await waitFor(async () => {
      const r = await messaging.send(a, null, { to: TO, body: "probe" }, null);
      return env.out.sent.some((s) => s.kind === "message" && s.id === r.id);
    }, "the direct path");
    await waitFor(async () => (await env.db.pool.query(`SELECT 1 FROM message m WHERE direction = 'out' AND ${statusSql("m")} = 'queued'`)).rowCount === 0, "probes recorded sent");
    env.out.take();
  };

  const status = async (id: string) => (await env.db.pool.query<{ status: string }>(`SELECT ${statusSql("m")} AS status FROM message m WHERE id = $1`, [id])).rows[0]?.status;

  it("writes a message before send() resolves, without a drain, and records it sent after the barrier", async () => {
    const a = await env.account("romeo");
    const res = await messaging.send(a, null, { to: TO, body: "direct" }, null);
    // No kick, no flush: it is on the port already.
    assert.deepEqual(env.out.sent.map(tag), ["message direct"]);
    await waitFor(async () => (await status(res.id)) === "sent", "recorded as sent");
    assert.equal(env.out.confirmCalls, 1);
  });

  it("a burst shares barriers: 200 concurrent sends, far fewer confirmations, each message once, all recorded sent", async () => {
    const a = await env.account("romeo");
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => messaging.send(a, null, { to: TO, body: `b${i}` }, null)));
    await waitFor(async () => (await env.db.pool.query(`SELECT 1 FROM message m WHERE id = ANY($1::uuid[]) AND ${statusSql("m")} = 'queued'`, [results.map((r) => r.id)])).rowCount === 0, "all sent");
    assert.equal(env.out.sent.length, 200);
    assert.equal(new Set(env.out.sent.map(tag)).size, 200, "no message twice");
    assert.ok(env.out.confirmCalls <= 20, `${env.out.confirmCalls} barriers for 200 messages`);
  });

  it("a stanza another instance put in the outbox goes out first: the message waits for the drain", async () => {
    const a = await env.account("romeo");
    await untilDirect(a);
    // Recorded as another instance would, but its wake-up not (yet) arrived: the insert itself must notice.
    await env.db.pool.query("INSERT INTO outbox (account_id, stanza) VALUES ($1, $2::json)", [a.id, JSON.stringify(subscription(`${a.localpart}@${env.domain}`, TO, "subscribe"))]);
    await messaging.send(a, null, { to: TO, body: "after the subscribe" }, null);
    await env.flush();
    assert.deepEqual(env.out.sent.map(tag), [`subscription ${a.localpart}@${env.domain}`, "message after the subscribe"]);
  });

  it("a message another instance queued goes out first", async () => {
    const a = await env.account("romeo");
    await untilDirect(a);
    const other = randomUUID();
    await env.messages.insertOutbound([{ id: other, accountId: a.id, peer: TO, from: `${a.localpart}@${env.domain}`, to: TO, type: "chat", body: "from elsewhere", idempotencyKey: null, requestHash: null }]);
    await messaging.send(a, null, { to: TO, body: "mine" }, null);
    await env.flush();
    assert.deepEqual(env.out.sent.map(tag), ["message from elsewhere", "message mine"]);
  });

  it("when the barrier fails the message stays queued and the next drain sends it again, same id", async () => {
    const a = await env.account("romeo");
    await untilDirect(a);
    env.out.confirms = false;
    const res = await messaging.send(a, null, { to: TO, body: "unconfirmed" }, null);
    await waitFor(() => env.out.confirmCalls >= 1, "the barrier");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await status(res.id), "queued");
    env.out.confirms = true;
    await env.flush();
    const copies = env.out.sent.filter((s) => s.kind === "message" && s.id === res.id);
    // Written directly, then by the drain (which may also try while the barrier still fails).
    assert.ok(copies.length >= 2, `${copies.length} copies`);
    assert.equal(await status(res.id), "sent");
  });

  it("a drain started during steady sending ends, and the direct path opens again", async () => {
    const a = await env.account("romeo");
    let stop = false;
    let n = 0;
    const senders = Array.from({ length: 8 }, async () => {
      while (!stop) await messaging.send(a, null, { to: TO, body: `s${n++}` }, null);
    });
    await waitFor(() => env.out.sent.length > 50, "sending");
    env.delivery.kick(); // as a wake-up from another instance or the sweep would
    await new Promise((r) => setTimeout(r, 300));
    const before = env.out.sent.length;
    // Once the drain has ended, a send is on the port when it resolves.
    await waitFor(async () => {
      const r = await messaging.send(a, null, { to: TO, body: "probe" }, null);
      return env.out.sent.some((s) => s.kind === "message" && s.id === r.id);
    }, "a direct write after the drain");
    stop = true;
    await Promise.all(senders);
    await env.flush();
    assert.ok(env.out.sent.length > before);
    const bodies = env.out.sent.flatMap((s) => (s.kind === "message" && String(s.body).startsWith("s") ? [Number(String(s.body).slice(1))] : []));
    assert.equal(new Set(bodies).size, bodies.length, "no message twice");
    assert.equal(bodies.length, n, "every message once");
  });

  it("the periodic sweep finds a row whose wake-up was lost and sends it, with the direct path open", async () => {
    const a = await env.account("romeo");
    // Its own port: what reaches it was written by this Delivery, not by the suite's.
    const port = new FakeOutbound();
    const swept = new Delivery(env.db, port, env.gate, env.log, env.metrics, 50);
    const own = env.messaging(swept, port);
    swept.start();
    try {
      await waitFor(async () => {
        const r = await own.send(a, null, { to: TO, body: "probe" }, null);
        return port.sent.some((s) => s.kind === "message" && s.id === r.id);
      }, "the direct path");
      const lost = randomUUID();
      await env.messages.insertOutbound([{ id: lost, accountId: a.id, peer: TO, from: `${a.localpart}@${env.domain}`, to: TO, type: "chat", body: "no wake-up", idempotencyKey: null, requestHash: null }]);
      await waitFor(() => port.sent.some((s) => s.kind === "message" && s.id === lost), "the swept message", 3000);
      await waitFor(async () => (await status(lost)) === "sent", "recorded as sent");
    } finally {
      await own.idle();
      await swept.stop();
    }
  });
});
