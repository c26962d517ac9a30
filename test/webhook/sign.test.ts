// Standard Webhooks 1.0 signatures (src/webhook/sign.ts), without a server: the specification's
// published test vector, agreement with the reference `standardwebhooks` package (sign and verify)
// for our own secrets and for non-ASCII bodies, two secrets during a rotation each verifying on
// their own, and the shape and randomness of new secrets.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { newSecret, signatures } from "../../src/webhook/sign.js";

/** Now in Unix seconds: `standardwebhooks` refuses timestamps more than 5 minutes away. */
const nowSeconds = () => Math.floor(Date.now() / 1000);

function headers(id: string, timestamp: number, signature: string): Record<string, string> {
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

describe("signatures", () => {
  it("reproduces the Standard Webhooks test vector", () => {
    // From the specification's reference libraries (standard-webhooks/libraries tests).
    const sig = signatures(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    assert.equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("the test vector also comes out of the reference package (so the vector is the right one)", () => {
    const wh = new Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert.equal(wh.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", new Date(1614265330 * 1000), '{"test": 2432232314}'), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  const bodies = [
    '{"id":1,"account":"alice@example.com","type":"message","data":{"body":"hi"},"createdAt":"2024-05-01T12:00:00.000Z"}',
    // Non-ASCII: both sides must sign the UTF-8 bytes.
    JSON.stringify({ id: 2, type: "message", data: { body: "fußball π 🎉 \u2028 \u0000" } }),
    "",
  ];
  for (const [i, body] of bodies.entries()) {
    it(`agrees with standardwebhooks' sign and verify for a new secret (body ${i + 1})`, () => {
      const secret = newSecret();
      const id = `msg_6f1c3e528a0b4c1e9d2f0a1b2c3d4e5f_7_${i + 1}`;
      const ts = nowSeconds();
      const ours = signatures([secret], id, ts, body);
      const wh = new Webhook(secret);
      assert.equal(ours, wh.sign(id, new Date(ts * 1000), body));
      // verify() returns the parsed body (undefined for an empty one) and throws on a mismatch.
      assert.deepEqual(wh.verify(body, headers(id, ts, ours)), body === "" ? undefined : JSON.parse(body));
    });
  }

  it("a signature does not verify with another secret, id, timestamp or body (the check can fail)", () => {
    const secret = newSecret();
    const ts = nowSeconds();
    const body = '{"id":1}';
    const sig = signatures([secret], "msg_a", ts, body);
    const wh = new Webhook(secret);
    assert.doesNotThrow(() => wh.verify(body, headers("msg_a", ts, sig)));
    assert.throws(() => new Webhook(newSecret()).verify(body, headers("msg_a", ts, sig)), /No matching signature/);
    assert.throws(() => wh.verify(body, headers("msg_b", ts, sig)), /No matching signature/);
    assert.throws(() => wh.verify(body, headers("msg_a", ts - 1, sig)), /No matching signature/);
    assert.throws(() => wh.verify('{"id":2}', headers("msg_a", ts, sig)), /No matching signature/);
  });

  it("two secrets (during a rotation) give two space-separated signatures, each verifying on its own", () => {
    const current = newSecret();
    const previous = newSecret();
    const id = "msg_6f1c3e528a0b4c1e9d2f0a1b2c3d4e5f_7_42";
    const ts = nowSeconds();
    const body = '{"id":42,"type":"roster"}';
    const header = signatures([current, previous], id, ts, body);
    const parts = header.split(" ");
    assert.equal(parts.length, 2, header);
    for (const p of parts) assert.match(p, /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(parts[0], parts[1]);
    // In the order of the secrets, each the single-secret signature.
    assert.deepEqual(parts, [signatures([current], id, ts, body), signatures([previous], id, ts, body)]);
    // A receiver holding either secret accepts the header holding both.
    for (const secret of [current, previous]) {
      assert.deepEqual(new Webhook(secret).verify(body, headers(id, ts, header)), JSON.parse(body));
    }
    assert.throws(() => new Webhook(newSecret()).verify(body, headers(id, ts, header)), /No matching signature/);
  });

  it("accepts a secret without the whsec_ prefix as its base64 key, as standardwebhooks does", () => {
    const secret = newSecret();
    const bare = secret.slice("whsec_".length);
    assert.equal(signatures([bare], "msg_x", 1614265330, "{}"), signatures([secret], "msg_x", 1614265330, "{}"));
    assert.equal(signatures([bare], "msg_x", 1614265330, "{}"), new Webhook(bare).sign("msg_x", new Date(1614265330 * 1000), "{}"));
  });
});

describe("newSecret", () => {
  it("is whsec_ + base64 of 32 bytes", () => {
    for (let i = 0; i < 20; i++) {
      const secret = newSecret();
      assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      const key = Buffer.from(secret.slice("whsec_".length), "base64");
      assert.equal(key.length, 32);
      assert.equal("whsec_" + key.toString("base64"), secret, "canonical base64");
    }
  });

  it("differs between calls", () => {
    const secrets = Array.from({ length: 100 }, () => newSecret());
    assert.equal(new Set(secrets).size, 100);
  });

  it("keys differ in many bits (randomBytes, not a counter or a clock)", () => {
    const [a, b] = [newSecret(), newSecret()].map((s) => Buffer.from(s.slice(6), "base64"));
    let differing = 0;
    for (let i = 0; i < 32; i++) for (let bit = 0; bit < 8; bit++) if (((a![i]! ^ b![i]!) >> bit) & 1) differing++;
    // Two independent 256-bit keys differ in about 128 bits; below 64 has probability < 1e-15.
    assert.ok(differing > 64, `${differing} differing bits`);
  });
});
