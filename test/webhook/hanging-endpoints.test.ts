// Webhooks to receivers that hang (the load audit). WEBHOOK_CONCURRENCY bounds the endpoints served
// at once; README: it "caps the endpoints one instance serves at once, so slow receivers cannot
// exhaust it". A healthy endpoint does not wait behind the hanging ones' whole retry backlogs (it
// waited 24 s for their 36 attempts): an endpoint whose attempt failed hands its slot back while
// its retry waits. The hanging ones are still retried, never more than the cap in flight.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../scripts/harness/webhook-receiver.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("webhooks to hanging receivers", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  before(async () => {
    server = await startXmppServer("prosody");
    receiver = await startWebhookReceiver();
    gw = await startTestGateway(server, {
      WEBHOOK_ALLOW_PRIVATE: "127.0.0.1",
      WEBHOOK_TIMEOUT: "1s",
      WEBHOOK_RETRY_SCHEDULE: "200ms,200ms,200ms,200ms,200ms",
      WEBHOOK_CONCURRENCY: "2",
    });
  });
  after(async () => {
    await gw?.stop();
    await receiver?.stop();
    await server?.stop();
  });

  it("a healthy endpoint is served within a few timeouts while hanging endpoints fill WEBHOOK_CONCURRENCY; no more than that in flight", async () => {
    // Two accounts with endpoints that never answer, each with 3 events (6 attempts of 1 s each).
    const hanging = ["hang0", "hang1"];
    for (const lp of hanging) {
      await gw.createAccount(lp);
      await receiver.plan(lp, Array(100).fill("timeout"));
      const r = await gw.request("POST", "/v1/webhooks", { token: gw.token(lp), body: { url: receiver.url(lp) } });
      assert.equal(r.status, 201, r.text);
      for (let i = 0; i < 3; i++) assert.equal((await gw.request("PUT", `/v1/roster/c${i}@localhost`, { token: gw.token(lp), body: { name: `c${i}` } })).status, 201);
    }
    await receiver.waitFor("hang0", 1, 10_000);
    await receiver.waitFor("hang1", 1, 10_000);
    await gw.createAccount("healthy");
    const h = await gw.request("POST", "/v1/webhooks", { token: gw.token("healthy"), body: { url: receiver.url("healthy") } });
    assert.equal(h.status, 201, h.text);
    const t0 = Date.now();
    assert.equal((await gw.request("PUT", "/v1/roster/x@localhost", { token: gw.token("healthy"), body: { name: "x" } })).status, 201);
    const got = await receiver.waitFor("healthy", 1, 60_000);
    const waited = got[0]!.at - t0;
    // The hanging ones go on being tried, taking turns with the rest.
    await receiver.waitFor("hang0", 3, 20_000);
    await receiver.waitFor("hang1", 3, 20_000);
    // concurrency bound: requests to the hanging endpoints held open at once (each held 1 s until the gateway gives up)
    const all = [...(await receiver.log("hang0")), ...(await receiver.log("hang1"))].map((r) => r.at).sort((a, b) => a - b);
    let maxInFlight = 0;
    for (const t of all) maxInFlight = Math.max(maxInFlight, all.filter((u) => u <= t && u > t - 950).length);
    assert.ok(maxInFlight <= 2, `at most WEBHOOK_CONCURRENCY in flight, saw ${maxInFlight}`);
    assert.ok(waited < 5000, `the healthy endpoint waited ${waited.toFixed(0)} ms behind two hanging endpoints' retries`);
  });
});
