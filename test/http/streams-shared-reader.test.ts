// One event to an account with hundreds of open streams on one instance: every stream gets it
// exactly once. Written elsewhere (another instance, any transaction), the instance reads the
// event log once for it (the shared per-account reader, counted by balcony_event_log_reads_total
// on GET /metrics); a message that came in over XMPP and was stored here is handed to the reader
// as stored, with no read at all, byte for byte what a replay reads. Full-JID events reach only
// their session; a stream that opens behind replays on its own, then follows live without gap or
// repeat.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import type { SseClient, SseEvent } from "../helpers/sse.js";

const STREAMS = 300;
const bodyOf = (e: SseEvent) => (e.json as { body?: string }).body;
const bodies = (s: SseClient) => s.events.filter((e) => e.event === "message").map(bodyOf);

describe("shared per-account reader", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  const streams: SseClient[] = [];

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw-juliet");
    gw = await startTestGateway(server, { MAX_STREAMS_PER_ACCOUNT: String(STREAMS + 10), RATE_LIMIT_PER_IP: "1000000", RATE_LIMIT_PER_ACCOUNT: "1000000" });
    juliet = await connectUser(server, "juliet", "pw-juliet", "balcony");
    await juliet.sendPresence();
  });
  after(async () => {
    await Promise.all(streams.map((s) => s.close()));
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  const reads = async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const m = /^balcony_event_log_reads_total (\d+)/m.exec(text);
    assert.ok(m, "GET /metrics has balcony_event_log_reads_total");
    return Number(m[1]);
  };
  const say = (to: string, body: string) => juliet.sendMessage(to, body);

  it(`${STREAMS} streams of one account each get a bare-JID message exactly once, with no log read; a roster push from one`, async () => {
    await gw.createAccount("crowd");
    const tok = gw.token("crowd");
    for (let i = 0; i < STREAMS; i += 50) streams.push(...(await Promise.all(Array.from({ length: Math.min(50, STREAMS - i) }, (_, k) => gw.sse(`/v1/events?resource=s${i + k}`, tok)))));
    assert.deepEqual(streams.filter((s) => s.status !== 200).length, 0);
    // Open: each has its retry hint (written once the stream follows the log).
    await waitFor(() => streams.every((s) => s.retry !== null), 10_000, "every stream open");
    const before = await reads();
    await say(`crowd@${gw.domain}`, "to everyone");
    await waitFor(() => streams.every((s) => bodies(s).length >= 1), 15_000, "every stream to have the message");
    assert.equal((await reads()) - before, 0, "stored by this instance: handed to the reader, not read back");

    // Appended by a REST transaction (a roster push, RFC 6121 §2.1.6): one read for all the streams.
    const put = await gw.request("PUT", "/v1/roster/romeo@example.net", { token: tok, body: { name: "Romeo" } });
    assert.equal(put.status, 201);
    await waitFor(() => streams.every((s) => s.events.some((e) => e.event === "roster")), 15_000, "every stream to have the roster push");
    assert.equal((await reads()) - before, 1, "one read of the log for all the account's streams");

    // To one session's full JID: only that stream, again no read; then a bare-JID sentinel.
    const mid = await reads();
    await say(`crowd@${gw.domain}/s7`, "to s7 only");
    await say(`crowd@${gw.domain}`, "sentinel");
    await waitFor(() => streams.every((s) => bodies(s).includes("sentinel")), 15_000, "every stream to have the sentinel");
    assert.equal((await reads()) - mid, 0, "handed over, not read");
    for (const [i, s] of streams.entries()) {
      assert.deepEqual(bodies(s), i === 7 ? ["to everyone", "to s7 only", "sentinel"] : ["to everyone", "sentinel"], `stream s${i}`);
      const ids = s.events.map((e) => Number(e.id));
      assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), `stream s${i}: ids increasing, no repeat`);
    }
  });

  it("a stream that opens behind replays on its own, then follows live with the others: no gap, no repeat", async () => {
    const tok = gw.token("crowd");
    const late = await gw.sse("/v1/events?resource=late", tok, { "last-event-id": "0" });
    streams.push(late);
    // Events keep arriving while it replays.
    for (let i = 0; i < 5; i++) await say(`crowd@${gw.domain}`, `more ${i}`);
    const want = ["to everyone", "sentinel", "more 0", "more 1", "more 2", "more 3", "more 4"];
    await waitFor(() => bodies(late).length >= want.length, 15_000, "the late stream to catch up");
    await waitFor(() => streams.every((s) => bodies(s).includes("more 4")), 15_000, "every stream to have the last message");
    // Once joined, it follows with the others: one more event is handed to them all, no stream reads.
    const before = await reads();
    await say(`crowd@${gw.domain}`, "last");
    await waitFor(() => streams.every((s) => bodies(s).includes("last")), 15_000, "every stream to have the last one");
    assert.equal((await reads()) - before, 0, "the late stream joined the shared reader");
    assert.deepEqual(bodies(late), [...want, "last"]);
    // What the late stream replayed (read from the log) is byte for byte what the others were handed.
    const handed = new Map(streams[0]!.events.map((e) => [e.id, e.data]));
    const replayed = late.events.filter((e) => bodies(late).slice(0, 2).includes(bodyOf(e)));
    assert.equal(replayed.length, 2, "the two messages from before the late stream opened");
    for (const e of replayed) assert.equal(e.data, handed.get(e.id), `event ${e.id}`);
    for (const s of streams.slice(0, 3)) assert.deepEqual(bodies(s).slice(-6), ["more 0", "more 1", "more 2", "more 3", "more 4", "last"]);
  });
});
