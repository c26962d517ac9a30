// POST /v1/messages/batch end to end (API 1.1): up to 1,000 messages in one request, one result per
// message in order, each message checked on its own, idempotency per message, every accepted one
// persisted before the 200 and delivered to a real XMPP client in order.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

type Result = { id?: string; status?: string | number; createdAt?: string; replayed?: boolean; code?: string; field?: string; detail?: string };

describe("messages batch", () => {
  let world: XmppWorld<"juliet">;
  let gw: TestGateway;
  let juliet: XmppUser;
  let token: string;
  const sender = () => `romeo@${gw.domain}`;

  before(async () => {
    world = await startWorld("prosody", { juliet: "balcony" }, { env: { MESSAGE_MAX_CHARS: "2000", MAX_STANZA_BYTES: "4096", BATCH_BODY_LIMIT_BYTES: "1000000" } });
    ({ gw } = world);
    juliet = world.users.juliet;
    await gw.createAccount("romeo");
    token = gw.token("romeo");
  });
  after(() => world?.stop());

  const batch = (messages: unknown, t = token) => gw.request("POST", "/v1/messages/batch", { token: t, body: { messages } });
  /** Bodies juliet received from romeo since `start`, up to and including the one with `last`. */
  const bodiesUntil = async (start: number, last: string) => {
    await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === last, 15_000);
    return juliet.stanzas.slice(start).filter((s) => s.is("message") && s.attrs.from === sender()).map((s) => s.getChildText("body"));
  };

  it("accepts 1,000 messages in one request, persisted before the 200, delivered once each in order", async () => {
    const start = juliet.stanzas.length;
    const bodies = Array.from({ length: 1000 }, (_, i) => `bulk ${i}`);
    const r = await batch(bodies.map((body) => ({ to: "juliet@localhost", body })));
    assert.equal(r.status, 200, r.text);
    const results = r.body.results as Result[];
    assert.equal(results.length, 1000);
    assert.ok(results.every((x) => typeof x.id === "string" && (x.status === "queued" || x.status === "sent") && !x.replayed), "every item accepted");
    assert.equal(new Set(results.map((x) => x.id)).size, 1000, "distinct ids");
    // Persisted before the answer: the first, the middle and the last are there at once.
    for (const i of [0, 500, 999]) {
      const got = await gw.request("GET", `/v1/messages/${results[i]!.id}`, { token });
      assert.equal(got.status, 200, got.text);
      assert.equal(got.body.body, bodies[i]);
    }
    assert.deepEqual(await bodiesUntil(start, "bulk 999"), bodies);
    const ids = juliet.stanzas.slice(start).filter((s) => s.is("message") && s.attrs.from === sender()).map((s) => s.attrs.id);
    assert.deepEqual(ids, results.map((x) => x.id), "each stanza carries its item's id");
  });

  it("refuses bad messages one by one, with the field inside the batch, and sends the others", async () => {
    const start = juliet.stanzas.length;
    const r = await batch([
      { to: "juliet@localhost", body: "good 1" },
      { to: "not a jid", body: "bad jid" },
      { to: "juliet@localhost", body: "bell \u0007" },
      { to: "juliet@localhost", body: "x", colour: "red" },
      { to: "juliet@localhost" },
      { to: "juliet@localhost", body: "y".repeat(2001) },
      { to: "juliet@localhost", body: "ü".repeat(1990), subject: "ü".repeat(1000) },
      "not an object",
      { to: "juliet@localhost", body: "good 2" },
    ]);
    assert.equal(r.status, 200, r.text);
    const results = r.body.results as Result[];
    assert.equal(results.length, 9);
    assert.ok(results[0]!.id && results[8]!.id, "the valid ones are accepted");
    const expect: [number, string, number, string][] = [
      [1, "invalid-jid", 400, "body.messages.1.to"],
      [2, "invalid-text", 400, "body.messages.2.body"],
      [3, "validation-failed", 400, "body.messages.3.colour"],
      [4, "validation-failed", 400, "body.messages.4.body"],
      [5, "validation-failed", 400, "body.messages.5.body"],
      [6, "payload-too-large", 413, "body.messages.6.body"],
      [7, "validation-failed", 400, "body.messages.7"],
    ];
    for (const [i, code, status, field] of expect) {
      assert.equal(results[i]!.code, code, `item ${i}: ${JSON.stringify(results[i])}`);
      assert.equal(results[i]!.status, status, `item ${i}`);
      assert.equal(results[i]!.field, field, `item ${i}`);
      assert.equal(results[i]!.id, undefined);
    }
    // "good 2" was written after everything before it: nothing else arrived in between.
    assert.deepEqual(await bodiesUntil(start, "good 2"), ["good 1", "good 2"]);
  });

  it("keeps idempotency per message: a retried batch sends nothing again, a reused key with another payload is refused alone", async () => {
    const start = juliet.stanzas.length;
    const items = [
      { to: "juliet@localhost", body: "keyed a", idempotencyKey: "batch-key-a" },
      { to: "juliet@localhost", body: "keyed b", idempotencyKey: "batch-key-b" },
    ];
    const first = await batch(items);
    assert.equal(first.status, 200, first.text);
    const retry = await batch([...items, { to: "juliet@localhost", body: "keyed a, changed", idempotencyKey: "batch-key-a" }, { to: "juliet@localhost", body: "after the retry" }]);
    assert.equal(retry.status, 200, retry.text);
    const [a, b, changed, fresh] = retry.body.results as Result[];
    assert.equal(a!.id, (first.body.results as Result[])[0]!.id);
    assert.equal(b!.id, (first.body.results as Result[])[1]!.id);
    assert.equal(a!.replayed, true);
    assert.equal(b!.createdAt, (first.body.results as Result[])[1]!.createdAt);
    assert.equal(changed!.code, "idempotency-key-reused");
    assert.equal(changed!.status, 422);
    assert.equal(changed!.field, "body.messages.2.idempotencyKey");
    assert.ok(fresh!.id && !fresh!.replayed);
    assert.deepEqual(await bodiesUntil(start, "after the retry"), ["keyed a", "keyed b", "after the retry"]);
  });

  it("refuses an Idempotency-Key header (400 validation-failed naming headers.idempotency-key): keys are per message, and a retry must not send everything twice", async () => {
    const start = juliet.stanzas.length;
    const items = [{ to: "juliet@localhost", body: "under a batch header" }];
    for (const key of ["batch-header-1", "batch-header-1"]) {
      const r = await gw.request("POST", "/v1/messages/batch", { token, body: { messages: items }, headers: { "idempotency-key": key } });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.code, "validation-failed");
      assert.equal(r.body.field, "headers.idempotency-key");
      assert.match(r.body.detail, /messages\[\]\.idempotencyKey/, "the detail says where the keys go");
    }
    // With one message keyed and one not, still refused, naming the one without.
    const half = await gw.request("POST", "/v1/messages/batch", {
      token,
      body: { messages: [{ ...items[0], idempotencyKey: "batch-header-keyed" }, ...items] },
      headers: { "idempotency-key": "batch-header-2" },
    });
    assert.deepEqual([half.status, half.body.field], [400, "headers.idempotency-key"], half.text);
    assert.match(half.body.detail, /messages 1 have none/);
    // Nothing was sent: a sentinel batch after them is the first thing juliet gets.
    await batch([{ to: "juliet@localhost", body: "after the header" }]);
    assert.deepEqual(await bodiesUntil(start, "after the header"), ["after the header"]);
  });

  it("ignores an Idempotency-Key header when every message has its own key: a retry answers the first results", async () => {
    const start = juliet.stanzas.length;
    const keyed = [{ to: "juliet@localhost", body: "keyed under a header", idempotencyKey: "batch-keyed-under-header" }];
    const send = () => gw.request("POST", "/v1/messages/batch", { token, body: { messages: keyed }, headers: { "idempotency-key": "added-by-middleware" } });
    const first = await send();
    assert.equal(first.status, 200, first.text);
    const again = await send();
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.results[0].id, first.body.results[0].id, "the same message");
    // Sent once: the sentinel batch comes right after it.
    await batch([{ to: "juliet@localhost", body: "after the keyed one" }]);
    assert.deepEqual(await bodiesUntil(start, "after the keyed one"), ["keyed under a header", "after the keyed one"]);
  });

  it("a retried item of a message sent since answers the first result: same id, status queued, createdAt", async () => {
    const items = [{ to: "juliet@localhost", body: "sent before the retry", idempotencyKey: "batch-key-sent" }];
    const first = await batch(items);
    assert.equal(first.status, 200, first.text);
    const [one] = first.body.results as Result[];
    assert.equal(one!.status, "queued", "the 202 of a message goes before the server confirms it");
    await juliet.waitFor((s) => s.is("message") && s.attrs.id === one!.id, 15_000);
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${one!.id}`, { token })).body.status === "sent", 5000, "status sent");
    const retry = await batch(items);
    assert.equal(retry.status, 200, retry.text);
    // API.md: the first response; `replayed` is the batch's Idempotent-Replayed (an extension).
    assert.deepEqual(retry.body.results, [{ ...one, replayed: true }]);
  });

  it("answers 400 for a malformed envelope, 413 for an oversized body, 401 without a token", async () => {
    const one = { to: "juliet@localhost", body: "never sent" };
    for (const body of [{ messages: [] }, { messages: Array(1001).fill(one) }, { messages: one }, { messages: [one], extra: 1 }, {}]) {
      const r = await gw.request("POST", "/v1/messages/batch", { token, body });
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
      assert.equal(r.body.code, "validation-failed");
    }
    const big = await gw.request("POST", "/v1/messages/batch", { token, body: { messages: Array(1000).fill({ to: "juliet@localhost", body: "z".repeat(2000) }) } });
    assert.equal(big.status, 413, big.text);
    const anon = await gw.request("POST", "/v1/messages/batch", { token: null, body: { messages: [one] } });
    assert.equal(anon.status, 401);
    // None of them sent anything: a sentinel batch after them is the first thing juliet gets.
    const start = juliet.stanzas.length;
    await batch([{ to: "juliet@localhost", body: "sentinel" }]);
    assert.deepEqual(await bodiesUntil(start, "sentinel"), ["sentinel"]);
  });
});
