// Stream tickets (POST /v1/events/tickets, GET /v1/events?ticket=): how a browser's EventSource,
// which cannot send Authorization, opens the event stream. Real gateway, Postgres and Prosody;
// Juliet is a real XMPP user whose message must reach the ticket's stream. Also the /demo page's
// static files and their headers.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Writable } from "node:stream";
import pg from "pg";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { createLogger } from "../../src/logger.js";
import { startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { SseClient } from "../helpers/sse.js";

describe("stream tickets and the demo page", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  const logLines: string[] = [];

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw-juliet");
    // Request logging on, captured: a ticket in a URL must not reach the logs.
    const sink = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
    // A short maintenance interval: expired tickets are purged by it.
    // Heartbeats every second: a stream past its token's expiry ends at its next heartbeat turn.
    gw = await startTestGateway(server, { LOG_REQUESTS: "true", LOG_LEVEL: "info", MAINTENANCE_INTERVAL: "300ms", SSE_HEARTBEAT: "1s" }, undefined, createLogger("info", sink));
    juliet = await connectUser(server, "juliet", "pw-juliet", "balcony");
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  const mint = (token: string, body: unknown = {}, headers: Record<string, string> = {}) => gw.request("POST", "/v1/events/tickets", { token, body, headers });
  const stream = (query: string, headers: Record<string, string> = {}) => SseClient.open(`${gw.url}/v1/events?${query}`, headers);

  it("a ticket opens the stream of the token's account and session, without Authorization", async () => {
    const romeo = uniq("romeo");
    const jid = await gw.createAccount(romeo);
    const minted = await mint(gw.token(romeo), { ttlSeconds: 120 }, { "balcony-resource": "web" });
    assert.equal(minted.status, 201, minted.text);
    assert.match(minted.body.ticket, /^st_[A-Za-z0-9_-]{43}$/);
    assert.equal(minted.body.jid, jid);
    assert.equal(minted.body.resource, "web");
    const ttl = Date.parse(minted.body.expiresAt) - Date.now();
    assert.ok(ttl > 110_000 && ttl <= 120_000, `expires in ${ttl} ms, asked 120 s`);
    // No body at all: every field is optional, so a bare POST mints one of the default lifetime.
    const bare = await gw.request("POST", "/v1/events/tickets", { token: gw.token(romeo) });
    assert.equal(bare.status, 201, bare.text);
    assert.match(bare.body.ticket, /^st_/);

    const s = await stream(`ticket=${encodeURIComponent(minted.body.ticket)}`);
    try {
      assert.equal(s.status, 200);
      await juliet.send(xml("message", { to: `${jid}/web`, type: "chat" }, xml("body", {}, "wherefore")));
      await s.waitFor((evs) => evs.some((e) => e.event === "message" && (e.json as { body?: string }).body === "wherefore"));
      // The session is the ticket's: GET /v1/sessions shows "web" with this stream open.
      const sessions = await gw.request("GET", "/v1/sessions", { token: gw.token(romeo) });
      assert.deepEqual(
        sessions.body.items.filter((x: { streams: number }) => x.streams > 0).map((x: { resource: string }) => x.resource),
        ["web"],
      );
    } finally {
      await s.close();
    }
    // Reusable until it expires: EventSource reconnects with the same URL and a Last-Event-ID.
    const again = await stream(`ticket=${encodeURIComponent(minted.body.ticket)}`, { "last-event-id": "0" });
    assert.equal(again.status, 200);
    await again.waitFor((evs) => evs.some((e) => e.event === "message"));
    await again.close();
  });

  it("refuses unknown, malformed and expired tickets, and tickets anywhere but the event stream", async () => {
    const romeo = uniq("romeo");
    await gw.createAccount(romeo);
    for (const bad of ["st_" + "A".repeat(43), "not-a-ticket", ""]) {
      const s = await stream(`ticket=${encodeURIComponent(bad)}`);
      assert.equal(s.status, 401, `ticket ${JSON.stringify(bad)}`);
    }
    const { body } = await mint(gw.token(romeo));
    // Only the event stream takes a ticket: elsewhere it is no credential at all.
    for (const path of ["/v1/roster", "/v1/sessions"]) {
      const r = await gw.request("GET", `${path}?ticket=${encodeURIComponent(body.ticket)}`, { token: null });
      assert.equal(r.status, 401, path);
    }
    const twice = await gw.request("POST", `/v1/events/tickets?ticket=${encodeURIComponent(body.ticket)}`, { token: null, body: {} });
    assert.equal(twice.status, 401, "a ticket cannot mint tickets");
    // Nor the event log's JSON view: a ticket opens streams (Accept: text/event-stream) only.
    const events = `/v1/events?ticket=${encodeURIComponent(body.ticket)}`;
    for (const accept of ["application/json", "*/*", "text/event-stream;q=0.5, application/json"]) {
      const r = await gw.request("GET", events, { token: null, headers: { accept } });
      assert.equal(r.status, 401, `Accept: ${accept}: ${r.text}`);
      assert.equal(r.body.code, "unauthorized", accept);
      assert.equal(r.headers.get("www-authenticate"), `Bearer realm="balcony", error="invalid_token"`, accept);
    }
    const noAccept = await new Promise<number>((resolve, reject) => http.get(`${gw.url}${events}`, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on("error", reject));
    assert.equal(noAccept, 401, "no Accept header: the JSON view");
    const still = await stream(events.slice("/v1/events?".length), { accept: "text/event-stream" });
    await still.close();
    assert.equal(still.status, 200, "the same ticket still opens the stream");

    const short = await mint(gw.token(romeo), { ttlSeconds: 1 });
    assert.equal((await stream(`ticket=${encodeURIComponent(short.body.ticket)}`).then(async (s) => (await s.close(), s.status))), 200);
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await stream(`ticket=${encodeURIComponent(short.body.ticket)}`);
    assert.equal(expired.status, 401);
    // Maintenance forgets it; the unexpired ticket minted above stays (the sentinel).
    const db = new pg.Client({ connectionString: gw.db.url });
    await db.connect();
    try {
      const rows = async () => (await db.query<{ expired: boolean }>("SELECT expires_at < now() AS expired FROM stream_ticket")).rows;
      await waitFor(async () => !(await rows()).some((r) => r.expired), 5000, "expired tickets purged");
      assert.ok((await rows()).some((r) => !r.expired), "live tickets are kept");
    } finally {
      await db.end();
    }
  });

  it("never outlives its token, and refuses a lifetime past the limit", async () => {
    const romeo = uniq("romeo");
    await gw.createAccount(romeo);
    const exp = Math.floor(Date.now() / 1000) + 5;
    const capped = await mint(gw.token(romeo, { exp }), { ttlSeconds: 600 });
    assert.equal(capped.status, 201);
    assert.equal(Date.parse(capped.body.expiresAt), exp * 1000);
    assert.equal((await mint(gw.token(romeo), { ttlSeconds: 601 })).status, 400);
    assert.equal((await mint(gw.token(romeo), { ttlSeconds: 0 })).status, 400);
    assert.equal((await mint("")).status, 401);
  });

  it("a stream ends when its token expires, whether opened with the token or with a ticket that expired sooner", async () => {
    const romeo = uniq("romeo");
    const jid = await gw.createAccount(romeo);
    const exp = Math.floor(Date.now() / 1000) + 8;
    const token = gw.token(romeo, { exp });
    // The ticket expires in 1 s, the token in 7-8 s: the stream lives as long as the token.
    const { body } = await mint(token, { ttlSeconds: 1 }, { "balcony-resource": "web" });
    const byTicket = await stream(`ticket=${encodeURIComponent(body.ticket)}`);
    const byToken = await stream("resource=app", { authorization: `Bearer ${token}` });
    try {
      assert.deepEqual([byTicket.status, byToken.status], [200, 200]);
      while (Date.now() <= Date.parse(body.expiresAt) + 100) await new Promise((r) => setTimeout(r, 50));
      // Past the ticket's expiry, both still deliver: the sentinel reaches each session's stream.
      await juliet.send(xml("message", { to: jid, type: "chat" }, xml("body", {}, "still here")));
      for (const s of [byTicket, byToken]) await s.waitFor((evs) => evs.some((e) => (e.json as { body?: string }).body === "still here"));
      assert.equal(byTicket.closed || byToken.closed, false);
      await waitFor(async () => byTicket.closed && byToken.closed, 15_000, "both streams ended after the token's expiry");
      assert.ok(Date.now() >= exp * 1000, "not before the token expired");
      for (const s of [byTicket, byToken]) assert.equal(s.comments.at(-1)?.trim(), "token expired");
      // Coming back with the expired token is refused, so the client knows to get a new one.
      assert.equal((await stream("resource=app", { authorization: `Bearer ${token}` })).status, 401);
    } finally {
      await byTicket.close();
      await byToken.close();
    }
  });

  it("keeps tickets out of the request logs", async () => {
    const romeo = uniq("romeo");
    await gw.createAccount(romeo);
    const { body } = await mint(gw.token(romeo));
    const s = await stream(`ticket=${encodeURIComponent(body.ticket)}&resource=logged`);
    assert.equal(s.status, 200);
    await s.close();
    const lines = logLines.filter((l) => l.includes("/v1/events?"));
    assert.ok(lines.length > 0, "the stream request was logged");
    for (const l of lines) assert.ok(!l.includes(body.ticket), `ticket in a log line: ${l}`);
    assert.ok(lines.some((l) => l.includes("resource=logged")), "the rest of the URL stays");
  });

  it("serves the demo page with a strict Content-Security-Policy", async () => {
    const redirect = await fetch(`${gw.url}/demo`, { redirect: "manual" });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("location"), "/demo/");
    for (const [file, type] of [["", "text/html"], ["demo.js", "javascript"], ["demo.css", "text/css"]] as const) {
      const res = await fetch(`${gw.url}/demo/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get("content-type") ?? "", new RegExp(type), file);
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'; script-src 'self'/, file);
      assert.ok((await res.text()).length > 100, file);
    }
    assert.equal((await fetch(`${gw.url}/demo/../package.json`)).status, 404);
  });
});

describe("DEMO_PAGE=false", () => {
  it("serves no demo page", async () => {
    const server = await startXmppServer("prosody");
    const gw = await startTestGateway(server, { DEMO_PAGE: "false" });
    try {
      assert.equal((await fetch(`${gw.url}/demo/`)).status, 404);
      // The sentinel: the same gateway does serve its API.
      assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    } finally {
      await gw.stop();
      await server.stop();
    }
  });
});
