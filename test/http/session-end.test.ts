// DELETE /v1/sessions/{resource} is not undone by the ended stream's reconnect: a client following
// the SSE spec reconnects when its stream ends, with Last-Event-ID, and that reconnect is answered
// 204 (an EventSource then gives up for good, HTML "Server-sent events", processing model) without
// opening the session again. A stream opened without Last-Event-ID (no cursor, or ?since=) is the
// client coming back on purpose: it opens the session as before, and its own reconnects are served.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { streamOpening, type SseClient } from "../helpers/sse.js";

describe("an ended session's stream reconnects", () => {
  let server: XmppServer;
  let gw: TestGateway;

  before(async () => {
    server = await startXmppServer("prosody");
    gw = await startTestGateway(server, { SSE_HEARTBEAT: "1s", SSE_RETRY: "500ms" });
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  const resources = async (tok: string) => ((await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string }[]).map((s) => s.resource).sort();
  const available = (tok: string, resource: string) => gw.request("PUT", `/v1/presence?resource=${resource}`, { token: tok, body: { type: "available" } });

  /**
   * An open stream on `resource` that has had an event (what a reconnecting EventSource sends as
   * Last-Event-ID): its session and the "desk" session go available, and the desk's presence is
   * an event for it (RFC 6121 §4.2.2, README "Presence").
   */
  async function streamWithEvent(tok: string, resource: string): Promise<SseClient> {
    const s = await gw.sse(`/v1/events?resource=${resource}`, tok);
    assert.equal(s.status, 200);
    assert.equal((await available(tok, resource)).status, 200);
    assert.equal((await available(tok, "desk")).status, 200);
    await s.waitFor((ev) => ev.some((e) => e.event === "presence"), 5000, "the desk's presence");
    return s;
  }

  it("a reconnect with Last-Event-ID after DELETE gets 204 with no body (HEAD too) and the session stays gone, that session's alone; a fresh open comes back", async () => {
    await gw.createAccount("montague");
    const tok = gw.token("montague");
    const phone = await streamWithEvent(tok, "phone");
    const lastId = phone.lastEventId!;
    assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
    await waitFor(() => phone.closed, 5000, "the phone's stream to end");

    // What EventSource does SSE_RETRY later: the same request, with the header.
    const again = await gw.sse("/v1/events?resource=phone", tok, { "last-event-id": lastId });
    assert.equal(again.status, 204, "the reconnect is refused with the status that stops an EventSource");
    assert.equal(again.headers?.get("content-type"), null, "no body, no stream");
    const head = await gw.request("HEAD", "/v1/events?resource=phone", { token: tok, headers: { accept: "text/event-stream", "last-event-id": lastId } });
    assert.equal(head.status, 204, "HEAD answers as GET would (RFC 9110 §9.3.2)");
    // The same session named by the header instead of the query: the same session, refused alike.
    assert.equal((await gw.sse("/v1/events", tok, { "balcony-resource": "phone", "last-event-id": lastId })).status, 204);
    assert.deepEqual(await resources(tok), ["desk"], "the refused reconnects opened no session");
    // JSON polling is no stream reconnect: served, and it makes no session (as before).
    const poll = await gw.request("GET", "/v1/events?resource=phone", { token: tok, headers: { accept: "application/json", "last-event-id": lastId } });
    assert.equal(poll.status, 200, poll.text);
    assert.deepEqual(await resources(tok), ["desk"]);
    // The mark is that session's alone: a Last-Event-ID stream of a session never ended (another
    // resource of the account; the same resource of another account) opens as before.
    await gw.createAccount("mercutio");
    const others = [await gw.sse("/v1/events?resource=tablet", tok, { "last-event-id": lastId }), await gw.sse("/v1/events?resource=phone", gw.token("mercutio"), { "last-event-id": "0" })];
    assert.deepEqual(others.map((s) => s.status), [200, 200], "the tablet's and mercutio's phone's streams");
    await Promise.all(others.map((s) => s.close()));

    // The client comes back on purpose: a stream without Last-Event-ID opens the session again.
    const fresh = await gw.sse("/v1/events?resource=phone", tok);
    assert.equal(fresh.status, 200);
    await waitFor(async () => (await resources(tok)).includes("phone"), 5000, "the phone session back");
    await fresh.close();
    // ...and the reopened session's own reconnects are served, the earlier end notwithstanding.
    const resumed = await gw.sse("/v1/events?resource=phone", tok, { "last-event-id": lastId });
    assert.equal(resumed.status, 200, "a reconnect of the session opened again");
    await resumed.close();
  });

  it("a stream that got no event still gives its client a Last-Event-ID (its start, as id: with no data), so its reconnect after DELETE is refused too", async () => {
    await gw.createAccount("benvolio");
    const tok = gw.token("benvolio");
    // The opening block, up to its blank line: what an EventSource takes its last event ID from.
    const { status, opening, reader, abort } = await streamOpening(`${gw.url}/v1/events?resource=idle`, { authorization: `Bearer ${tok}` });
    assert.equal(status, 200);
    const id = /^id: (\d+)$/m.exec(opening)?.[1];
    assert.ok(id !== undefined, `the opening names the stream's start: ${JSON.stringify(opening)}`);
    assert.doesNotMatch(opening, /^data:/m, "and dispatches no event");
    assert.equal((await gw.request("DELETE", "/v1/sessions/idle", { token: tok })).status, 204);
    // The stream ends: read to its end.
    for (;;) if ((await reader.read()).done) break;
    abort();
    assert.equal((await gw.sse("/v1/events?resource=idle", tok, { "last-event-id": id })).status, 204);
    assert.deepEqual(await resources(tok), [], "the idle session stays ended");
  });

  it("?since= alone is a new request of the client's own, not a reconnect: it opens the ended session again", async () => {
    await gw.createAccount("capulet");
    const tok = gw.token("capulet");
    const phone = await streamWithEvent(tok, "phone");
    const lastId = phone.lastEventId!;
    assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
    await waitFor(() => phone.closed, 5000, "the phone's stream to end");
    // The reconnect of an EventSource opened with ?since= carries the header too: refused.
    assert.equal((await gw.sse(`/v1/events?resource=phone&since=${lastId}`, tok, { "last-event-id": lastId })).status, 204);
    assert.deepEqual(await resources(tok), ["desk"]);
    const reopened = await gw.sse(`/v1/events?resource=phone&since=${lastId}`, tok);
    assert.equal(reopened.status, 200);
    await waitFor(async () => (await resources(tok)).includes("phone"), 5000, "the phone session back");
    await reopened.close();
  });

  it("an instance started after the DELETE refuses the reconnect too (it reads the ends inside the window when it starts)", async () => {
    await gw.createAccount("tybalt");
    const tok = gw.token("tybalt");
    const phone = await streamWithEvent(tok, "phone");
    const lastId = phone.lastEventId!;
    assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
    await waitFor(() => phone.closed, 5000, "the phone's stream to end");
    // A second instance on the same database, started after the end: it never heard its NOTIFY.
    const late = await startTestGateway(server, { SSE_HEARTBEAT: "1s", SSE_RETRY: "500ms" }, gw.db);
    try {
      const again = await late.sse("/v1/events?resource=phone", tok, { "last-event-id": lastId });
      assert.equal(again.status, 204, "the reconnect through the instance started later");
      assert.deepEqual(await resources(tok), ["desk"], "the session stays ended");
      // Sentinel: that instance serves this account's other sessions' reconnects.
      const desk = await late.sse("/v1/events?resource=desk", tok, { "last-event-id": lastId });
      assert.equal(desk.status, 200);
      await desk.close();
    } finally {
      await late.stop();
    }
  });

  it("an end committed while the instance's listener reconnects is read when it is back: the stream it held on the session ends and its reconnect is refused", async () => {
    await gw.createAccount("paris");
    const tok = gw.token("paris");
    const phone = await streamWithEvent(tok, "phone");
    const lastId = phone.lastEventId!;
    const tablet = await gw.sse("/v1/events?resource=tablet", tok);
    assert.equal(tablet.status, 200);
    const pool = gw.running.db.pool;
    const listening = async () =>
      (await pool.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'balcony-listen%' AND datname = current_database()")).rows.length > 0;
    // Cut the listener: it reconnects a second later (src/db/notify.ts).
    await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'balcony-listen%' AND datname = current_database()");
    await waitFor(async () => !(await listening()), 2000, "the listener gone");
    assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
    assert.equal(await listening(), false, "the end committed while the listener was away (its NOTIFY unheard)");
    await waitFor(listening, 10_000, "the listener back");
    // Sentinel: an end after the reconnect is heard, and ends the tablet's stream.
    assert.equal((await gw.request("DELETE", "/v1/sessions/tablet", { token: tok })).status, 204);
    await waitFor(() => tablet.closed, 5000, "the tablet's stream to end");
    await waitFor(() => phone.closed, 5000, "the phone's stream, whose end came while the listener was away, to end");
    assert.equal((await gw.sse("/v1/events?resource=phone", tok, { "last-event-id": lastId })).status, 204, "its reconnect");
    assert.deepEqual(await resources(tok), ["desk"]);
  });

  it("a new login (a token issued after the end) resumes with its saved Last-Event-ID, as API.md lets any client; the old credential's reconnect stays refused", async () => {
    await gw.createAccount("balthasar");
    const tok = gw.token("balthasar");
    const phone = await streamWithEvent(tok, "phone");
    const lastId = phone.lastEventId!;
    assert.equal((await gw.request("DELETE", "/v1/sessions/phone", { token: tok })).status, 204);
    await waitFor(() => phone.closed, 5000, "the phone's stream to end");
    assert.equal((await gw.sse("/v1/events?resource=phone", tok, { "last-event-id": lastId })).status, 204, "the old token's reconnect");
    // iat has whole seconds: one issued two seconds after now is after the end whatever the rounding.
    const later = gw.token("balthasar", { iat: Math.floor(Date.now() / 1000) + 2 });
    const resumed = await gw.sse("/v1/events?resource=phone", later, { "last-event-id": lastId });
    assert.equal(resumed.status, 200, "the new login's resume");
    await waitFor(async () => (await resources(later)).includes("phone"), 5000, "the phone session back");
    await resumed.close();
  });
});
