// Sessions of open streams are kept alive by one batched UPDATE per heartbeat interval (not one per
// stream): a session whose stream stays open outlives the expiry window (SESSION_GRACE_SECONDS, and
// 3 heartbeats for streams counted on an instance that died), one whose stream closed goes unavailable.
// A client that names no session gets one per token, shared by its stream and its presence; a
// client that polls the JSON view keeps its session alive as a stream does (API.md Presence).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { SseClient } from "../helpers/sse.js";

describe("batched session liveness", () => {
  let server: XmppServer;
  let gw: TestGateway;

  before(async () => {
    server = await startXmppServer("prosody");
    // Expiry after 3 s without a stream, or 3 s untouched with one (max(grace, 3 heartbeats)); sweeps every second.
    gw = await startTestGateway(server, { SSE_HEARTBEAT: "1s", SESSION_GRACE_SECONDS: "3" });
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("an open stream keeps its session available across the expiry window; a closed one expires", async () => {
    await gw.createAccount("vigil");
    const tok = gw.token("vigil");
    const sessions = async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string; available: boolean; streams: number; lastSeenAt: string }[];
    const streams = await Promise.all(["kept", "dropped", "kept2"].map((r) => gw.sse(`/v1/events?resource=${r}`, tok)));
    for (const r of ["kept", "dropped", "kept2"]) assert.equal((await gw.request("PUT", `/v1/presence?resource=${r}`, { token: tok, body: { type: "available" } })).status, 200);
    await streams[1]!.close();
    await waitFor(async () => (await sessions()).find((s) => s.resource === "dropped")?.available === false, 10_000, "the closed session to expire");
    // Three times the window: without a heartbeat write, the open sessions would have expired by now.
    await new Promise((r) => setTimeout(r, 9000));
    const now = await sessions();
    for (const r of ["kept", "kept2"]) {
      const s = now.find((x) => x.resource === r)!;
      assert.equal(s.available, true, `${r} is still available`);
      assert.equal(s.streams, 1);
      assert.ok(Date.now() - Date.parse(s.lastSeenAt) < 2500, `${r} was seen within the last heartbeats (${s.lastSeenAt})`);
    }
    assert.equal(now.find((x) => x.resource === "dropped")?.streams, 0);
    await Promise.all([streams[0]!.close(), streams[2]!.close()]);
  });

  it("a client whose token names no session has one: its stream, presence, tickets and polls share it, and the stream keeps it alive", async () => {
    await gw.createAccount("nameless");
    const tok = gw.token("nameless");
    const sessions = async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string; available: boolean; streams: number }[];
    const stream = await gw.sse("/v1/events", tok);
    try {
      const resource = decodeURIComponent(stream.headers?.get("balcony-resource") ?? "");
      assert.match(resource, /^balcony-[0-9a-f]+$/);
      const put = await gw.request("PUT", "/v1/presence", { token: tok, body: { status: "here" } });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.resource, resource, "presence goes to the stream's session");
      const ticket = await gw.request("POST", "/v1/events/tickets", { token: tok });
      assert.equal(ticket.status, 201, ticket.text);
      assert.equal(ticket.body.resource, resource, "the ticket's streams join it too");
      const viaTicket = await SseClient.open(`${gw.url}/v1/events?ticket=${encodeURIComponent(ticket.body.ticket)}`, {});
      assert.equal(viaTicket.status, 200);
      assert.equal(decodeURIComponent(viaTicket.headers?.get("balcony-resource") ?? ""), resource);
      await viaTicket.close();
      // Another token of the account names another session; the same token always this one.
      const other = await gw.request("PUT", "/v1/presence", { token: gw.token("nameless", { iat: 1 }) });
      assert.notEqual(other.body.resource, resource);
      assert.equal((await gw.request("PUT", "/v1/presence", { token: tok, body: { status: "still here" } })).body.resource, resource);
      // The other session has no stream: once it has expired, the sweep has passed the grace period;
      // the stream's session stays available past it (three times the window).
      await waitFor(async () => (await sessions()).find((x) => x.resource === other.body.resource)?.available === false, 10_000, "the streamless session to expire");
      await new Promise((r) => setTimeout(r, 9000));
      const mine = (await sessions()).find((x) => x.resource === resource);
      assert.deepEqual(mine && [mine.available, mine.streams], [true, 1], "the stream's session is available");
    } finally {
      await stream.close();
    }
  });

  it("a client that goes while its stream is being opened leaves no stream behind: no session kept alive, no count held", async () => {
    await gw.createAccount("flaky");
    const tok = gw.token("flaky");
    const { port } = new URL(gw.url);
    // Raw requests whose socket is destroyed 0-7 ms after the request is written: some go before
    // the stream is opened (its session row counted), some after, some before it is even read.
    const N = 40;
    for (let i = 0; i < N; i++) {
      const sock = connect(Number(port), "127.0.0.1");
      await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
      sock.write(`GET /v1/events?resource=f${i % 8} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${tok}\r\n\r\n`);
      await new Promise((r) => setTimeout(r, i % 8));
      sock.destroy();
    }
    const sessions = async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string; streams: number }[];
    const open = async () => Number(/^balcony_event_streams (\d+)$/m.exec((await gw.request("GET", "/metrics", { token: null })).text)?.[1]);
    // Every stream that was opened ends: the sessions count none, the instance holds none.
    await waitFor(async () => (await open()) === 0 && (await sessions()).every((s) => s.streams === 0), 10_000, "every stream of the gone clients ended");
    const seen = await sessions();
    assert.ok(seen.length > 0, "some of the requests did open their session's stream");
    // The account's stream cap is not used up by them: a stream opens, and it is counted.
    const live = await gw.sse("/v1/events?resource=after", tok);
    try {
      assert.equal(await open(), 1);
    } finally {
      await live.close();
    }
  });

  it("polling the JSON view keeps the caller's session alive; it creates none", async () => {
    await gw.createAccount("poller");
    const tok = gw.token("poller");
    const sessions = async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string; available: boolean }[];
    for (const r of ["polled", "claimed", "idle"]) assert.equal((await gw.request("PUT", `/v1/presence?resource=${r}`, { token: tok })).status, 200);
    let polling = true;
    const poll = async (token: string, headers: Record<string, string>) => {
      while (polling) {
        const r = await gw.request("GET", "/v1/events", { token, headers: { accept: "application/json", ...headers } });
        assert.equal(r.status, 200, r.text);
        await new Promise((res) => setTimeout(res, 500));
      }
    };
    // One named by the header, one by the token's claim; "idle" is not polled, and "ghost" has no session.
    const pollers = [poll(tok, { "balcony-resource": "polled" }), poll(gw.token("poller", { resource: "claimed" }), {}), poll(tok, { "balcony-resource": "ghost" })];
    try {
      await waitFor(async () => (await sessions()).find((x) => x.resource === "idle")?.available === false, 10_000, "the idle session to expire");
      await new Promise((r) => setTimeout(r, 6000));
      const now = await sessions();
      assert.deepEqual(
        now.map((x) => [x.resource, x.available]),
        [
          ["polled", true],
          ["claimed", true],
          ["idle", false],
        ],
      );
    } finally {
      polling = false;
      await Promise.all(pollers);
    }
  });
});
