// Endpoints that share one host (an integration platform's: one receiver, a path per endpoint):
// each request goes out at once, not queued behind the others for a connection, so an endpoint
// that answers well within WEBHOOK_TIMEOUT of getting its request is delivered at its first
// attempt (API.md Webhooks: any 2xx within 10 s is success). Twelve endpoints answering 1.2 s after
// their request, with a 2 s timeout: with 8 connections a host, four waited for one and timed out.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../scripts/harness/webhook-receiver.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";

const ENDPOINTS = 12;

describe("webhook endpoints on one host", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  before(async () => {
    server = await startXmppServer("prosody");
    receiver = await startWebhookReceiver();
    gw = await startTestGateway(server, { WEBHOOK_ALLOW_PRIVATE: "127.0.0.1", WEBHOOK_TIMEOUT: "2s", WEBHOOK_RETRY_SCHEDULE: "30s" });
  });
  after(async () => {
    await gw?.stop();
    await receiver?.stop();
    await server?.stop();
  });

  it("sends every endpoint's request at once: each answering 200 1.2 s after it got it is delivered at the first attempt", async () => {
    const hooks: { lp: string; id: string }[] = [];
    for (let i = 0; i < ENDPOINTS; i++) {
      const lp = `host${i}`;
      await gw.createAccount(lp);
      await receiver.plan(lp, ["slow:1200"]);
      const r = await gw.request("POST", "/v1/webhooks", { token: gw.token(lp), body: { url: receiver.url(lp) } });
      assert.equal(r.status, 201, r.text);
      hooks.push({ lp, id: r.body.id as string });
    }
    await Promise.all(hooks.map(async (h) => assert.equal((await gw.request("PUT", "/v1/roster/a@localhost", { token: gw.token(h.lp), body: { name: "a" } })).status, 201)));
    type Delivery = { status: string; attempts: number; error: string | null };
    const first = async () => Promise.all(hooks.map(async (h) => ((await gw.request("GET", `/v1/webhooks/${h.id}/deliveries`, { token: gw.token(h.lp) })).body.items[0] ?? null) as Delivery | null));
    // Settled: delivered, or failed once and waiting 30 s for its retry.
    await waitFor(async () => (await first()).every((d) => d !== null && (d.status === "delivered" || d.attempts >= 1)), 15_000, "every endpoint's first attempt settled");
    const outcomes = (await first()).map((d, i) => `${hooks[i]!.lp}: ${d!.status} ${d!.attempts} ${d!.error ?? ""}`.trim());
    assert.deepEqual(outcomes, hooks.map((h) => `${h.lp}: delivered 1`));
    const arrived = await Promise.all(hooks.map((h) => receiver.log(h.lp)));
    assert.deepEqual(arrived.map((l) => l.length), hooks.map(() => 1), "one request each, none repeated");
  });
});
