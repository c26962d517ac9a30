// Idempotency-Key on POST /v1/messages: a retry within 24 h with the same payload gets the first
// answer (same id, `Idempotent-Replayed: true`) and nothing is sent again; another payload under
// the same key is 422 `idempotency-key-reused`; after 24 h the key is free and the request is new.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { XmppUser } from "../../scripts/harness/xmpp-user.js";
import xml from "@xmpp/xml";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";
import { parseJid } from "../../src/domain/jid.js";
import { formerFingerprint, requestFingerprint } from "../../src/services/request-fingerprint.js";

describe("idempotency", () => {
  let world: XmppWorld<"juliet">;
  let gw: TestGateway;
  let juliet: XmppUser;
  let tok: string;
  let romeo: string;

  before(async () => {
    world = await startWorld("prosody", { juliet: "balcony" });
    ({ gw } = world);
    juliet = world.users.juliet;
    romeo = await gw.createAccount("romeo");
    tok = gw.token("romeo");
  });
  after(() => world?.stop());

  const post = (body: unknown, key?: string) => gw.request("POST", "/v1/messages", { token: tok, body, headers: key ? { "idempotency-key": key } : {} });
  /** The ids of the messages from Romeo that Juliet received in [start, end). */
  const idsFrom = (start: number, end: number) => receivedFrom(juliet, romeo, start, end).filter((s) => s.is("message")).map((s) => s.attrs.id);
  /**
   * Everything the gateway sent to Juliet so far is in once a marker message (the outbox sends in
   * order, so a duplicate would leave before it) and then a sentinel (bounced behind anything
   * else the gateway wrote to the link) have come back. Returns the index of the sentinel's bounce.
   */
  async function settled(): Promise<number> {
    const marker = await post({ to: "juliet@localhost", body: "marker" });
    assert.equal(marker.status, 202, marker.text);
    await juliet.waitFor((s) => s.is("message") && s.attrs.id === marker.body.id);
    return gatewaySentinel(juliet, gw.domain);
  }

  it("replays the same key and payload, rejects another payload, and frees the key after 24 h", async () => {
    const key = "order-66-retry";
    const payload = { to: "juliet@localhost", body: "Wherefore art thou?", thread: "balcony" };
    const start = juliet.stanzas.length;

    const first = await post(payload, key);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.headers.get("idempotent-replayed"), null, "the first answer is not a replay");
    await juliet.waitFor((s) => s.is("message") && s.attrs.id === first.body.id);

    // The same payload with its keys in another order is the same request.
    const replay = await post({ thread: "balcony", body: "Wherefore art thou?", to: "juliet@localhost" }, key);
    assert.equal(replay.status, 202, replay.text);
    assert.equal(replay.body.id, first.body.id);
    assert.equal(replay.body.createdAt, first.body.createdAt);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");

    const reused = await post({ ...payload, body: "A different question" }, key);
    assert.equal(reused.status, 422, reused.text);
    assert.equal(reused.body.code, "idempotency-key-reused");
    assert.equal(reused.body.field, "headers.idempotency-key");

    let end = await settled();
    const sent = idsFrom(start, end);
    assert.equal(sent.filter((id) => id === first.body.id).length, 1, `sent once: ${sent.join(", ")}`);
    assert.equal(sent.length, 2, `only the first message and the marker reached Juliet: ${sent.join(", ")}`);
    const history = await gw.request("GET", "/v1/messages?with=juliet@localhost", { token: tok });
    assert.deepEqual(
      (history.body.items as { body: string }[]).map((m) => m.body),
      ["marker", "Wherefore art thou?"],
      "neither the replay nor the refused payload was stored",
    );

    // 25 h later the key is free again: the same request is a new message, sent again.
    const aged = await gw.running.db.pool.query("UPDATE message SET created_at = now() - interval '25 hours' WHERE id = $1", [first.body.id]);
    assert.equal(aged.rowCount, 1);
    const mark = juliet.stanzas.length;
    const again = await post(payload, key);
    assert.equal(again.status, 202, again.text);
    assert.notEqual(again.body.id, first.body.id);
    assert.equal(again.headers.get("idempotent-replayed"), null);
    const got = await juliet.waitFor((s) => s.is("message") && s.attrs.id === again.body.id);
    assert.equal(got.getChildText("body"), "Wherefore art thou?");
    // And the new message now owns the key: a retry replays it, not the aged one.
    const replay2 = await post(payload, key);
    assert.equal(replay2.body.id, again.body.id);
    assert.equal(replay2.headers.get("idempotent-replayed"), "true");
    end = await settled();
    assert.equal(idsFrom(mark, end).length, 2, `the new message and the marker: ${idsFrom(mark, end).join(", ")}`);
  });

  it("a default spelt out or left out is the same payload (receipt false; markable as the type would have it); a value that changes the stanza is not", async () => {
    const replays = async (key: string, first: Record<string, unknown>, retries: Record<string, unknown>[], other: Record<string, unknown>) => {
      const a = await post(first, key);
      assert.equal(a.status, 202, a.text);
      for (const retry of retries) {
        const b = await post(retry, key);
        assert.deepEqual([b.status, b.body.id, b.headers.get("idempotent-replayed")], [202, a.body.id, "true"], `${key}: ${JSON.stringify(retry)}: ${b.text}`);
      }
      const c = await post(other, key);
      assert.deepEqual([c.status, c.body.code], [422, "idempotency-key-reused"], `${key}: ${JSON.stringify(other)}: ${c.text}`);
    };
    const to = "juliet@localhost";
    await replays("defaults-chat", { to, body: "a2" }, [{ to, body: "a2", receipt: false }, { to, body: "a2", markable: true }, { to, type: "chat", body: "a2", receipt: false, markable: true }], { to, body: "a2", markable: false });
    await replays("defaults-receipt", { to, body: "a3", receipt: false, markable: true }, [{ to, body: "a3" }], { to, body: "a3", receipt: true });
    // A chat state alone is not markable, nor is a normal message: false is their default.
    await replays("defaults-state", { to, state: "composing" }, [{ to, state: "composing", markable: false }], { to, state: "composing", markable: true });
    await replays("defaults-normal", { to, type: "normal", body: "a4" }, [{ to, type: "normal", body: "a4", markable: false }], { to, type: "normal", body: "a4", markable: true });
    const start = juliet.stanzas.length;
    const end = await settled();
    // One stanza for each of the four keys came before the marker; none after the first of each.
    assert.equal(idsFrom(start, end).length, 1, `only the marker after the keys' first messages: ${idsFrom(start, end).join(", ")}`);
  });

  it("a key stored before defaults were left out of the hash still replays its request as it was sent", async () => {
    const payload = { to: "juliet@localhost", body: "stored before", receipt: false, markable: true };
    const first = await post(payload, "former-hash");
    assert.equal(first.status, 202, first.text);
    // As the hash was before: of the request as sent, with the type the schema fills in.
    const sent = { ...payload, type: "chat" };
    const former = formerFingerprint(sent, parseJid(payload.to));
    assert.notEqual(former, requestFingerprint(sent, parseJid(payload.to)));
    assert.equal((await gw.running.db.pool.query("UPDATE message SET request_hash = $2 WHERE id = $1", [first.body.id, former])).rowCount, 1);
    const replay = await post(payload, "former-hash");
    assert.deepEqual([replay.status, replay.body.id, replay.headers.get("idempotent-replayed")], [202, first.body.id, "true"], replay.text);
    const other = await post({ ...payload, body: "another" }, "former-hash");
    assert.equal(other.status, 422, other.text);
  });

  it("a replay after the message was delivered is still the first response, byte for byte (status queued)", async () => {
    const key = "delivered-then-retried";
    const payload = { to: "juliet@localhost/balcony", body: "Did my letter reach you?", receipt: true };
    const first = await post(payload, key);
    assert.equal(first.status, 202, first.text);
    // The first answer is always `queued`: the 202 goes before the XMPP server can confirm anything.
    assert.equal(first.body.status, "queued");
    const m = await juliet.waitFor((s) => s.is("message") && s.attrs.id === first.body.id);
    await juliet.send(xml("message", { to: m.attrs.from, id: "rcpt-replay" }, xml("received", { xmlns: "urn:xmpp:receipts", id: first.body.id })));
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${first.body.id}`, { token: tok })).body.status === "delivered", 5000, "status delivered");
    const replay = await post(payload, key);
    assert.equal(replay.status, 202, replay.text);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal(replay.text, first.text, "API.md: the same key and payload return the first response");
    assert.deepEqual(replay.body, first.body);
  });

  it("a correction (replace) holds its key too: the same payload replays with nothing sent, another is 422; in a batch as well", async () => {
    const original = await post({ to: "juliet@localhost", body: "Parting is such sweet sorow" });
    assert.equal(original.status, 202, original.text);
    const start = juliet.stanzas.length;
    const payload = { to: "juliet@localhost", body: "Parting is such sweet sorrow", replace: original.body.id };
    const first = await post(payload, "fix-1");
    assert.equal(first.status, 202, first.text);
    const replay = await post(payload, "fix-1");
    assert.deepEqual([replay.status, replay.headers.get("idempotent-replayed"), replay.text], [202, "true", first.text]);
    const other = await post({ ...payload, body: "Parting is such sweet, sweet sorrow" }, "fix-1");
    assert.deepEqual([other.status, other.body.code], [422, "idempotency-key-reused"]);
    const batch = await gw.request("POST", "/v1/messages/batch", { token: tok, body: { messages: [{ ...payload, body: "Parting!", idempotencyKey: "fix-1" }] } });
    assert.deepEqual([batch.status, batch.body.results[0].code], [200, "idempotency-key-reused"]);
    // A new message under the correction's key is another request too, alone or in a batch.
    const fresh = await post({ to: "juliet@localhost", body: "Good night, good night!" }, "fix-1");
    assert.deepEqual([fresh.status, fresh.body.code], [422, "idempotency-key-reused"], fresh.text);
    const freshBatch = await gw.request("POST", "/v1/messages/batch", { token: tok, body: { messages: [{ to: "juliet@localhost", body: "Good night, good night!", idempotencyKey: "fix-1" }] } });
    assert.deepEqual([freshBatch.status, freshBatch.body.results[0].code], [200, "idempotency-key-reused"], freshBatch.text);
    const end = await settled();
    const fixes = receivedFrom(juliet, romeo, start, end).filter((s) => s.is("message") && s.getChild("replace", "urn:xmpp:message-correct:0"));
    assert.deepEqual(fixes.map((s) => s.getChildText("body")), ["Parting is such sweet sorrow"], "one correction went out");
    const bodies = receivedFrom(juliet, romeo, start, end).map((s) => s.getChildText("body"));
    assert.ok(bodies.length > 0 && !bodies.includes("Good night, good night!"), `no new message under the correction's key: ${bodies.join(" | ")}`);
  });
});
