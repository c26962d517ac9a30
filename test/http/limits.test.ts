// Protective limits on the real app: rate limits per account and per IP (429 + Retry-After),
// body size, open streams per account.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("limits", () => {
  let server: XmppServer;
  let server2: XmppServer;
  let gw: TestGateway;
  let ipGw: TestGateway;

  before(async () => {
    [server, server2] = await Promise.all([startXmppServer(), startXmppServer()]);
    gw = await startTestGateway(server, { RATE_LIMIT_PER_ACCOUNT: "5", RATE_LIMIT_WINDOW: "30s", BODY_LIMIT_BYTES: "4096", MAX_STREAMS_PER_ACCOUNT: "2" });
    ipGw = await startTestGateway(server2, { RATE_LIMIT_PER_IP: "8", RATE_LIMIT_WINDOW: "30s" });
    await gw.createAccount("busy");
    await gw.createAccount("calm");
  });
  after(async () => {
    await gw?.stop();
    await ipGw?.stop();
    await server?.stop();
    await server2?.stop();
  });

  it("limits requests per account with 429, Retry-After and a problem document; other accounts are unaffected", async () => {
    const busy = gw.token("busy");
    const statuses: number[] = [];
    let limited;
    for (let i = 0; i < 7; i++) {
      const r = await gw.request("GET", "/v1/sessions", { token: busy });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.equal(limited!.body.code, "rate-limited");
    assert.match(limited!.headers.get("content-type") ?? "", /problem\+json/);
    const retry = Number(limited!.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}`);
    assert.equal((await gw.request("GET", "/v1/sessions", { token: gw.token("calm") })).status, 200);
    assert.equal((await gw.request("GET", "/healthz", { token: null })).status, 200, "operations routes are not limited");
  });

  it("limits requests per client IP before authentication", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await ipGw.request("GET", "/v1/sessions", { token: "not-a-token" })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 429, 429]);
  });

  it("refuses bodies over BODY_LIMIT_BYTES with 413", async () => {
    const r = await gw.request("POST", "/v1/messages", { token: gw.token("calm"), body: { to: "juliet@localhost", body: "x".repeat(5000) } });
    assert.equal(r.status, 413);
    assert.equal(r.body.code, "payload-too-large");
  });

  it("caps open event streams per account", async () => {
    await gw.createAccount("streamer");
    const tok = gw.token("streamer");
    const a = await gw.sse("/v1/events", tok);
    const b = await gw.sse("/v1/events", tok);
    const c = await gw.sse("/v1/events", tok);
    assert.deepEqual([a.status, b.status, c.status], [200, 200, 429]);
    await a.close();
    await new Promise((r) => setTimeout(r, 100));
    const d = await gw.sse("/v1/events", tok);
    assert.equal(d.status, 200, "a slot frees when a stream closes");
    await b.close();
    await d.close();
  });
});
