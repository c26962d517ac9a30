// Sending messages (src/services/messaging.ts) and the outbox (src/services/delivery.ts) against a
// real PostgreSQL and a fake outbound port: what is stored, what is written, when it counts as sent,
// idempotent retries, refusals, and the drain after the link comes back.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Stanza } from "../../src/domain/stanza.js";
import { Delivery } from "../../src/services/delivery.js";
import { Messaging, type SendMessage } from "../../src/services/messaging.js";
import { appError, setup, teardown, waitFor, type Env, type TestAccount } from "./setup.js";

const TO = "juliet@example.net";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The message stanza as the wire sees it: the OutboundMessage fields, absent ones as null. (The
 * fresh path hands the port the stored row's input object, whose absent fields are undefined and
 * which carries storage-only fields; the drain path hands it the row read back, with nulls.)
 */
function wire(s: Stanza | undefined) {
  assert.ok(s, "a stanza");
  assert.equal(s.kind, "message");
  return {
    kind: s.kind,
    id: s.id,
    from: s.from,
    to: s.to,
    type: s.type,
    body: s.body ?? null,
    subject: s.subject ?? null,
    thread: s.thread ?? null,
    lang: s.lang ?? null,
    receipt: s.receipt ?? false,
    state: s.state ?? null,
  };
}

describe("Messaging + Delivery", () => {
  let env: Env;
  let delivery: Delivery;
  let messaging: Messaging;

  before(async () => {
    env = await setup();
    delivery = new Delivery(env.db, env.out, env.log, env.metrics);
    messaging = new Messaging(env.messages, delivery, env.out, env.domain, env.metrics);
  });
  after(async () => {
    await messaging?.idle();
    await delivery?.stop();
    await teardown(env);
  });
  beforeEach(() => env.out.reset());

  const status = async (a: TestAccount, id: string) => (await messaging.get(a, id)).status;
  const waitStatus = (a: TestAccount, id: string, want: string) => waitFor(async () => (await status(a, id)) === want, `message ${id} ${want}`);

  it("send: queued, one message stanza with the same id from the full JID, then sent once confirmed", async () => {
    const a = await env.account("romeo");
    const res = await messaging.send(a, "phone", { to: "Juliet@Example.NET/Balcony", body: "hello", thread: "t1", receipt: true }, null);
    assert.equal(res.status, "queued");
    assert.equal(res.replayed, false);
    assert.match(res.id, UUID);
    assert.equal(env.out.sent.length, 1, "written as soon as the insert committed");
    assert.deepEqual(wire(env.out.sent[0]), {
      kind: "message",
      id: res.id,
      from: `${a.localpart}@${env.domain}/phone`,
      to: "juliet@example.net/Balcony",
      type: "chat",
      body: "hello",
      subject: null,
      thread: "t1",
      lang: null,
      receipt: true,
      state: null,
    });
    await waitStatus(a, res.id, "sent");
    const view = await messaging.get(a, res.id);
    assert.equal(view.direction, "out");
    assert.equal(view.to, "juliet@example.net/Balcony");
    assert.equal(env.out.sent.length, 1);
  });

  it("without a resource the message is from the bare JID", async () => {
    const a = await env.account("romeo");
    const res = await messaging.send(a, null, { to: TO, type: "headline", subject: { en: "Hi", fr: "Salut" } }, null);
    assert.deepEqual(wire(env.out.sent[0]), {
      kind: "message",
      id: res.id,
      from: `${a.localpart}@${env.domain}`,
      to: TO,
      type: "headline",
      body: null,
      subject: { en: "Hi", fr: "Salut" },
      thread: null,
      lang: null,
      receipt: false,
      state: null,
    });
    await waitStatus(a, res.id, "sent");
  });

  it("an unconfirmed write stays queued until a drain sends it again", async () => {
    const a = await env.account("romeo");
    env.out.confirms = false;
    const res = await messaging.send(a, null, { to: TO, body: "lost?" }, null);
    assert.equal(env.out.sent.length, 1);
    await waitFor(() => env.out.confirmCalls === 1, "the confirmation to be asked for");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await status(a, res.id), "queued");

    env.out.reset();
    assert.equal(await delivery.drain(), 1);
    assert.deepEqual(env.out.sent.map(wire), [{ kind: "message", id: res.id, from: a.jid, to: TO, type: "chat", body: "lost?", subject: null, thread: null, lang: null, receipt: false, state: null }]);
    assert.equal(await status(a, res.id), "sent", "the drain records what it sent in its own transaction");
  });

  describe("idempotency", () => {
    it("same key, same payload (any key order): the first answer, replayed, and nothing sent again", async () => {
      const a = await env.account("romeo");
      const body: SendMessage = { to: TO, body: "once", thread: "x" };
      const first = await messaging.send(a, null, body, "key-1");
      assert.equal(first.replayed, false);
      await waitStatus(a, first.id, "sent");
      assert.equal(env.out.sent.length, 1);

      const again = await messaging.send(a, null, { thread: "x", body: "once", to: TO }, "key-1");
      assert.deepEqual(again, { id: first.id, status: "sent", createdAt: first.createdAt, replayed: true });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(env.out.sent.length, 1, "a replay writes nothing");
      assert.equal((await env.db.prisma.message.count({ where: { accountId: a.id } })), 1);
    });

    it("same key, different payload: idempotency-key-reused; the same key on another account is independent", async () => {
      const a = await env.account("romeo");
      const first = await messaging.send(a, null, { to: TO, body: "one" }, "key-2");
      await assert.rejects(messaging.send(a, null, { to: TO, body: "two" }, "key-2"), appError("idempotency-key-reused"));
      assert.equal(env.out.sent.length, 1);
      assert.equal((await messaging.get(a, first.id)).body, "one");

      const b = await env.account("mercutio");
      const other = await messaging.send(b, null, { to: TO, body: "two" }, "key-2");
      assert.equal(other.replayed, false);
      assert.notEqual(other.id, first.id);
      await waitStatus(a, first.id, "sent");
      await waitStatus(b, other.id, "sent");
    });

    it("concurrent retries with one key store one message and write it once", async () => {
      const a = await env.account("romeo");
      const results = await Promise.all(Array.from({ length: 8 }, () => messaging.send(a, null, { to: TO, body: "race" }, "key-3")));
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      assert.equal(results.filter((r) => !r.replayed).length, 1);
      assert.equal(env.out.sent.length, 1);
      await waitStatus(a, results[0]!.id, "sent");
    });
  });

  describe("refusals write nothing and store nothing", () => {
    const refused = async (a: TestAccount, m: SendMessage, code: Parameters<typeof appError>[0]) => {
      await assert.rejects(messaging.send(a, null, m, null), appError(code));
      assert.deepEqual(env.out.sent, []);
      assert.equal(await env.db.prisma.message.count({ where: { accountId: a.id } }), 0);
    };

    it("an invalid to: invalid-jid", async () => {
      const a = await env.account("romeo");
      for (const to of ["@example.net", "juliet@", "a@b@c", ""]) await refused(a, { to, body: "x" }, "invalid-jid");
    });

    it("no body, subject or state: validation-failed", async () => {
      const a = await env.account("romeo");
      await refused(a, { to: TO, thread: "t" }, "validation-failed");
    });

    it("over maxStanzaBytes: payload-too-large; just under is accepted", async () => {
      const a = await env.account("romeo");
      env.out.maxStanzaBytes = 4096;
      await refused(a, { to: TO, body: "x".repeat(5000) }, "payload-too-large");
      const ok = await messaging.send(a, null, { to: TO, body: "x".repeat(3500) }, null);
      assert.equal(env.out.sent.length, 1);
      assert.ok(env.out.byteLength(env.out.sent[0]!) <= 4096);
      await waitStatus(a, ok.id, "sent");
    });
  });

  it("with the link down messages stay queued; drain() after it is back sends them in seq order", async () => {
    const a = await env.account("romeo");
    env.out.online = false;
    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = await messaging.send(a, "phone", { to: i % 2 ? TO : "nurse@example.net", body: `m${i}` }, null);
      assert.equal(r.status, "queued");
      ids.push(r.id);
    }
    assert.deepEqual(env.out.sent, []);
    assert.equal(env.out.writes, 0);
    assert.equal(await delivery.drain(), 0, "nothing drains while the link is down");
    for (const id of ids) assert.equal(await status(a, id), "queued");

    env.out.online = true;
    assert.equal(await delivery.drain(), 4);
    assert.deepEqual(
      env.out.sent.map((s) => wire(s)).map((s) => [s.id, s.to, s.body]),
      ids.map((id, i) => [id, i % 2 === 0 ? TO : "nurse@example.net", `m${i + 1}`]),
    );
    assert.equal(env.out.writes, 1, "one batch, one write");
    for (const id of ids) assert.equal(await status(a, id), "sent");
    env.out.reset();
    assert.equal(await delivery.drain(), 0, "sent messages are not drained again");
    assert.deepEqual(env.out.sent, []);
  });

  it("the drain marks a queued message the server would refuse as failed, and sends the ones around it", async () => {
    const a = await env.account("romeo");
    env.out.online = false;
    const small1 = await messaging.send(a, null, { to: TO, body: "before" }, null);
    const big = await messaging.send(a, null, { to: TO, body: "x".repeat(3000) }, null); // fits the limit it was accepted under
    const small2 = await messaging.send(a, null, { to: TO, body: "after" }, null);
    env.out.online = true;
    env.out.maxStanzaBytes = 2000; // ...but not the server's limit now
    assert.equal(await delivery.drain(), 3);
    assert.deepEqual(
      env.out.sent.map((s) => wire(s).id),
      [small1.id, small2.id],
    );
    assert.deepEqual(
      env.out.refused.map((s) => wire(s).id),
      [big.id],
    );
    const failed = await messaging.get(a, big.id);
    assert.equal(failed.status, "failed");
    assert.deepEqual(failed.error, { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" });
    assert.equal(await status(a, small1.id), "sent");
    assert.equal(await status(a, small2.id), "sent");
  });

  it("another account's message reads as message-not-found", async () => {
    const a = await env.account("romeo");
    const b = await env.account("tybalt");
    const res = await messaging.send(a, null, { to: TO, body: "private" }, null);
    await assert.rejects(messaging.get(b, res.id), appError("message-not-found"));
    await waitStatus(a, res.id, "sent");
  });

  // Last: when fixed, what it leaves queued is drained by the test itself.
  it(
    "a fresh message the port refuses is never recorded as sent",
    {
      todo:
        "BUG in src/services/delivery.ts Delivery.sendNow: it ignores the refused list write() returns and marks every message sent after confirm(). " +
        "Reachable because Messaging.checkSize skips measuring when 1024 + 6 * JSON([body, subject, thread]).length <= limit, which ignores the to/from JIDs (up to 3071 chars each)",
    },
    async () => {
      const a = await env.account("romeo");
      env.out.maxStanzaBytes = 4096; // MAX_STANZA_BYTES allows 4096 and up
      const to = `${"l".repeat(1000)}@${Array.from({ length: 15 }, () => "d".repeat(60)).join(".")}/${"r".repeat(1000)}`; // 2916 chars: the HTTP schema allows 3071
      const res = await messaging.send(a, "phone", { to, body: "&".repeat(480) }, null); // 480 * "&amp;" on the wire: about 5.5 kB rendered
      assert.equal(res.status, "queued");
      assert.equal(env.out.sent.length, 0);
      assert.equal(env.out.refused.length, 1, "the port refused the stanza: it was never written");
      await new Promise((r) => setTimeout(r, 100));
      await delivery.stop(); // waits until whatever sendNow recorded as sent is written
      assert.notEqual(await status(a, res.id), "sent", "a stanza that was never written is not sent");
      await delivery.drain();
      assert.equal(await status(a, res.id), "failed");
    },
  );
});
