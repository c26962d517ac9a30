// Protective limits on the real app: rate limits per account and per IP (429 + Retry-After),
// body size, open streams per account, stanza size (MAX_STANZA_BYTES).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";

describe("limits", () => {
  let server: XmppServer;
  let server2: XmppServer;
  let gw: TestGateway;
  let ipGw: TestGateway;

  before(async () => {
    [server, server2] = await Promise.all([startXmppServer(), startXmppServer()]);
    gw = await startTestGateway(server, { RATE_LIMIT_PER_ACCOUNT: "5", RATE_LIMIT_WINDOW: "30s", BODY_LIMIT_BYTES: "4096", MAX_STREAMS_PER_ACCOUNT: "2" });
    // As behind a load balancer on this host: X-Forwarded-For from 127.0.0.1 names the client.
    ipGw = await startTestGateway(server2, { RATE_LIMIT_PER_IP: "8", RATE_LIMIT_WINDOW: "30s", TRUST_PROXY: "127.0.0.1" });
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

  it("behind a trusted proxy (TRUST_PROXY), counts each client by X-Forwarded-For, not the proxy's address", async () => {
    const from = async (ip: string) => (await ipGw.request("GET", "/v1/sessions", { token: "not-a-token", headers: { "x-forwarded-for": ip } })).status;
    const busy: number[] = [];
    for (let i = 0; i < 9; i++) busy.push(await from("203.0.113.1"));
    assert.deepEqual(busy, [401, 401, 401, 401, 401, 401, 401, 401, 429]);
    // Another client behind the same proxy has its own count: one count for all would be 429 here.
    assert.equal(await from("198.51.100.7"), 401);
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

  it("tells a reconnect (Last-Event-ID) at the cap to come back (200, retry:, the end), which an EventSource does; a 429 would end it for good", async () => {
    await gw.createAccount("reconnector");
    const tok = gw.token("reconnector");
    const a = await gw.sse("/v1/events", tok);
    const b = await gw.sse("/v1/events", tok);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const reconnect = () => fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${tok}`, accept: "text/event-stream", "last-event-id": "0" }, signal: AbortSignal.timeout(5000) });
    const later = await reconnect();
    assert.equal(later.status, 200);
    assert.match(later.headers.get("content-type") ?? "", /^text\/event-stream/);
    // The whole body: the stream ends at once, telling the client to wait 5 s, with no id (its Last-Event-ID stays).
    assert.equal(await later.text(), "retry: 5000\n: too-many-streams: at most 2 event streams per account; close one first\n\n");
    await a.close();
    await new Promise((r) => setTimeout(r, 100));
    const back = await gw.sse("/v1/events", tok, { "last-event-id": "0" });
    assert.equal(back.status, 200, "a place is free again: the reconnect streams");
    await b.close();
    await back.close();
  });

  it("HEAD of the stream view answers as GET would: 429 at the cap, 200 below it with the GET's header fields, taking no place", async () => {
    // Five requests: within this gateway's RATE_LIMIT_PER_ACCOUNT, so every 429 here is the stream cap's.
    await gw.createAccount("header");
    const tok = gw.token("header");
    const head = () => gw.request("HEAD", "/v1/events", { token: tok, headers: { accept: "text/event-stream" } });
    const a = await gw.sse("/v1/events", tok);
    const b = await gw.sse("/v1/events", tok);
    assert.deepEqual([a.status, b.status], [200, 200]);
    const full = await head();
    assert.equal(full.status, 429, "at the cap (RFC 9110 §9.3.2: HEAD answers as GET)");
    assert.ok(full.headers.get("retry-after"), "with Retry-After");
    await a.close();
    await new Promise((r) => setTimeout(r, 100));
    const below = await head();
    assert.equal(below.status, 200, "below the cap");
    const c = await gw.sse("/v1/events", tok);
    assert.equal(c.status, 200, "the HEAD took no place: a GET still opens");
    // The same header fields as the GET (RFC 9110 §9.3.2), its session's name included.
    const fields = ["content-type", "cache-control", "x-accel-buffering", "vary", "balcony-resource"];
    const got = fields.map((f) => [f, c.headers!.get(f)]);
    assert.ok(got.every(([, v]) => v), JSON.stringify(got));
    assert.deepEqual(fields.map((f) => [f, below.headers.get(f)]), got);
    await b.close();
    await c.close();
  });
});

// MAX_STANZA_BYTES: the XMPP server drops a component that writes a stanza over its limit, so the
// gateway refuses such a message before storing it. The bound is exact: a stanza of exactly the
// limit goes through, one byte more is refused.
describe("MAX_STANZA_BYTES", () => {
  const LIMIT = 4096;
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let tok: string;

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw-juliet");
    gw = await startTestGateway(server, { MAX_STANZA_BYTES: String(LIMIT) });
    await gw.createAccount("verbose");
    tok = gw.token("verbose");
    juliet = await connectUser(server, "juliet", "pw-juliet", "balcony");
    await juliet.sendPresence();
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  const post = (body: string) => gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body } });
  const history = async () => {
    const r = await gw.request("GET", "/v1/messages?with=juliet@localhost", { token: tok });
    assert.equal(r.status, 200, r.text);
    return (r.body.items as { id: string; body: unknown }[]).map((m) => m.body);
  };

  it("refuses a message whose stanza would exceed it with 413 naming body.body; stores and sends nothing; delivers one of exactly the limit", async () => {
    // The stanza's size apart from the body is fixed (the message id is a UUID): learn it from the refusal.
    const probe = await post("x".repeat(LIMIT));
    assert.equal(probe.status, 413, probe.text);
    const overhead = Number(/would be a (\d+)-byte stanza/.exec(probe.body.detail)?.[1]) - LIMIT;
    assert.ok(overhead > 100 && overhead < 1000, `stanza overhead ${overhead} bytes (${probe.body.detail})`);

    const mark = juliet.stanzas.length;
    const over = "o".repeat(LIMIT - overhead + 1);
    const r = await post(over);
    assert.equal(r.status, 413, r.text);
    assert.match(r.headers.get("content-type") ?? "", /problem\+json/);
    assert.equal(r.body.code, "payload-too-large");
    assert.equal(r.body.field, "body.body");
    assert.match(r.body.detail, new RegExp(`would be a ${LIMIT + 1}-byte stanza; the limit is ${LIMIT} bytes`));

    const under = "u".repeat(LIMIT - overhead);
    const ok = await post(under);
    assert.equal(ok.status, 202, ok.text);
    const got = await juliet.waitFor((s) => s.is("message") && s.attrs.id === ok.body.id);
    assert.equal(got.getChildText("body"), under);
    assert.equal(Buffer.byteLength(got.getChildText("body") ?? ""), LIMIT - overhead);

    // Outbound messages leave in order and the sentinel's bounce after them: had the refused ones
    // been sent, they would be in before it.
    const end = await gatewaySentinel(juliet, gw.domain);
    const fromUs = receivedFrom(juliet, `verbose@${gw.domain}`, mark, end).filter((s) => s.is("message"));
    assert.deepEqual(fromUs.map((s) => s.attrs.id), [ok.body.id], "only the message within the limit reached Juliet");
    const stored = await history();
    assert.equal(stored.length, 1, `stored: ${stored.length}`);
    assert.equal(stored[0], under);
  });

  it("refuses a correction (XEP-0308 replace) whose stanza would exceed it with 413 like a message: the text stays, nothing is sent; one within it goes out", async () => {
    const original = await post("short");
    assert.equal(original.status, 202, original.text);
    await juliet.waitFor((s) => s.is("message") && s.attrs.id === original.body.id);
    const correct = (body: string) => gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body, replace: original.body.id } });

    const mark = juliet.stanzas.length;
    const r = await correct("c".repeat(LIMIT));
    assert.equal(r.status, 413, r.text);
    assert.equal(r.body.code, "payload-too-large");
    assert.equal(r.body.field, "body.body");
    assert.match(r.body.detail, /-byte stanza; the limit is 4096 bytes/);
    const view = await gw.request("GET", `/v1/messages/${original.body.id}`, { token: tok });
    assert.equal(view.status, 200, view.text);
    assert.equal(view.body.body, "short", "the refused correction did not change the stored text");
    assert.equal(view.body.edited, null);

    const ok = await correct("shorter");
    assert.equal(ok.status, 202, ok.text);
    const end = await gatewaySentinel(juliet, gw.domain);
    const corrections = receivedFrom(juliet, `verbose@${gw.domain}`, mark, end).filter((s) => s.getChild("replace") !== undefined);
    assert.deepEqual(corrections.map((s) => s.getChildText("body")), ["shorter"], "only the correction within the limit reached Juliet");
  });
});
