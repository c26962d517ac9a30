// The event log as SSE and JSON: XMPP in -> Postgres -> streams, replay without gap or duplicate.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import type { SseEvent } from "../helpers/sse.js";

const bodyOf = (e: SseEvent) => (e.json as { body?: string }).body;

describe("events", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw-juliet");
    gw = await startTestGateway(server, { SSE_HEARTBEAT: "300ms", SSE_RETRY: "1500ms" });
    juliet = await connectUser(server, "juliet", "pw-juliet", "balcony");
    await juliet.sendPresence();
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  const say = (to: string, text: string, extra: Record<string, string> = {}, receipt = false) =>
    juliet.send(xml("message", { to, type: "chat", id: `j-${text}`, ...extra }, xml("body", {}, text), receipt ? xml("request", { xmlns: "urn:xmpp:receipts" }) : null));

  it("streams an inbound message as an SSE event with id, event and JSON data, plus retry and heartbeats", async () => {
    await gw.createAccount("romeo");
    const s = await gw.sse("/v1/events", gw.token("romeo"));
    assert.equal(s.status, 200);
    assert.match(s.headers?.get("content-type") ?? "", /text\/event-stream/);
    await say(`romeo@${gw.domain}`, "hello romeo");
    await s.waitFor((ev) => ev.some((e) => e.event === "message"), 5000, "message event");
    const e = s.events.find((x) => x.event === "message")!;
    assert.match(e.id ?? "", /^\d+$/);
    const data = e.json as { from: string; to: string; body: string; type: string };
    assert.equal(data.from, "juliet@localhost/balcony");
    assert.equal(data.to, `romeo@${gw.domain}`);
    assert.equal(data.body, "hello romeo");
    assert.equal(data.type, "chat");
    assert.equal(s.retry, 1500);
    await waitFor(() => s.comments.filter((c) => c === "heartbeat").length >= 2, 3000, "two heartbeats");
    await s.close();
  });

  it("resumes with Last-Event-ID while messages keep arriving: every message exactly once, in order", async () => {
    await gw.createAccount("mercutio");
    const tok = gw.token("mercutio", { resource: "phone" });
    const to = `mercutio@${gw.domain}`;
    const total = 60;
    const seen: SseEvent[] = [];
    let s = await gw.sse("/v1/events", tok);
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        await say(to, `m${i}`);
        await new Promise((r) => setTimeout(r, 8));
      }
    })();
    // Drop and resume the stream three times while the sender keeps going.
    for (let round = 0; round < 3; round++) {
      await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 5, 10_000, "some messages");
      await s.close();
      seen.push(...s.events.filter((e) => e.event === "message"));
      await new Promise((r) => setTimeout(r, 40));
      s = await gw.sse("/v1/events", tok, { "last-event-id": s.lastEventId! });
    }
    await sending;
    await s.waitFor(() => seen.length + s.events.filter((e) => e.event === "message").length >= total, 10_000, "all messages");
    await s.close();
    seen.push(...s.events.filter((e) => e.event === "message"));
    assert.deepEqual(seen.map(bodyOf), Array.from({ length: total }, (_, i) => `m${i}`));
    const ids = seen.map((e) => Number(e.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    assert.equal(new Set(ids).size, ids.length);
  });

  it("keeps messages for an account with no session and delivers them on the first stream; answers receipts only then", async () => {
    await gw.createAccount("paris");
    const to = `paris@${gw.domain}`;
    await say(to, "while you were out", {}, true);
    await say(to, "second", {}, false);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(juliet.stanzas.filter((s) => s.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-while you were out").length, 0, "no receipt before a stream has it");
    const s = await gw.sse("/v1/events", gw.token("paris"));
    await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "stored messages");
    assert.deepEqual(s.events.filter((e) => e.event === "message").map(bodyOf), ["while you were out", "second"]);
    const receipt = await juliet.waitFor((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-while you were out");
    assert.equal(receipt.attrs.from, to);
    await s.close();
    // A second stream must not answer the receipt again.
    const again = await gw.sse("/v1/events?since=0", gw.token("paris"));
    await again.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "replay");
    await new Promise((r) => setTimeout(r, 300));
    await again.close();
    assert.equal(juliet.stanzas.filter((st) => st.getChild("received", "urn:xmpp:receipts")?.attrs.id === "j-while you were out").length, 1);
  });

  it("routes a message to a full JID to that session's streams only, and a bare-JID message to all (RFC 6121 §8.5)", async () => {
    await gw.createAccount("nurse");
    const tok = gw.token("nurse");
    const phone = await gw.sse("/v1/events?resource=phone", tok);
    const laptop = await gw.sse("/v1/events", tok, { "balcony-resource": "laptop" });
    assert.equal(laptop.headers?.get("balcony-resource"), "laptop");
    await waitFor(async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items.length === 2, 5000, "two sessions");
    await say(`nurse@${gw.domain}/phone`, "phone only");
    await say(`nurse@${gw.domain}`, "everyone");
    await phone.waitFor((ev) => ev.some((e) => bodyOf(e) === "everyone"), 5000, "phone: everyone");
    await laptop.waitFor((ev) => ev.some((e) => bodyOf(e) === "everyone"), 5000, "laptop: everyone");
    assert.deepEqual(phone.events.filter((e) => e.event === "message").map(bodyOf), ["phone only", "everyone"]);
    assert.deepEqual(laptop.events.filter((e) => e.event === "message").map(bodyOf), ["everyone"]);
    await phone.close();
    await laptop.close();
  });

  it("serves the same log as JSON pages for pollers", async () => {
    await gw.createAccount("friar");
    const tok = gw.token("friar");
    for (let i = 0; i < 5; i++) await say(`friar@${gw.domain}`, `p${i}`);
    await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items.length === 5, 5000, "5 events");
    const p1 = await gw.request("GET", "/v1/events?since=0&limit=3", { token: tok, headers: { accept: "application/json" } });
    assert.equal(p1.status, 200);
    assert.deepEqual(p1.body.items.map((e: { data: { body: string } }) => e.data.body), ["p0", "p1", "p2"]);
    const p2 = await gw.request("GET", `/v1/events?since=${p1.body.nextSince}&limit=3`, { token: tok });
    assert.deepEqual(p2.body.items.map((e: { data: { body: string } }) => e.data.body), ["p3", "p4"]);
    const p3 = await gw.request("GET", `/v1/events?since=${p2.body.nextSince}`, { token: tok });
    assert.equal(p3.body.items.length, 0);
    assert.equal(p3.body.nextSince, p2.body.nextSince);
    const bad = await gw.request("GET", "/v1/events?since=-1", { token: tok });
    assert.equal(bad.status, 400);
    const badHeader = await gw.request("GET", "/v1/events", { token: tok, headers: { "last-event-id": "x1" } });
    assert.equal(badHeader.status, 400);
    assert.equal(badHeader.body.code, "invalid-cursor");
  });

  it("sends a resync event first when the cursor is older than the retained log", async () => {
    await gw.createAccount("capulet");
    const tok = gw.token("capulet");
    for (let i = 0; i < 4; i++) await say(`capulet@${gw.domain}`, `r${i}`);
    await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items.length === 4, 5000, "4 events");
    // Retention expired for the two oldest events.
    const all = (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items as { id: number }[];
    await gw.running.db.pool.query("DELETE FROM event WHERE seq <= $1 AND account_id = (SELECT id FROM account WHERE localpart = 'capulet')", [all[1]!.id]);
    const s = await gw.sse("/v1/events?since=0", tok);
    await s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "kept events");
    assert.equal(s.events[0]!.event, "resync");
    assert.equal(Number(s.events[0]!.id), all[1]!.id);
    assert.deepEqual(s.events.slice(1).map(bodyOf), ["r2", "r3"]);
    await s.close();
    const fresh = await gw.sse(`/v1/events?since=${all[1]!.id}`, tok);
    await fresh.waitFor((ev) => ev.length >= 2, 5000, "no resync needed");
    assert.equal(fresh.events[0]!.event, "message");
    await fresh.close();
  });
});
