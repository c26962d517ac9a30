// EVENT_RETENTION, end to end: the gateway's own maintenance purges events older than the
// retention (nobody deletes rows by hand here), and a stream or a poller resuming from a cursor
// inside the purged part gets a `resync` event first, then the events that are still kept. Events
// older than the retention count as gone before the purge has run too (API.md Events: the window,
// not the purge timer, decides).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { streamOpening, type SseClient } from "../helpers/sse.js";

const RETENTION_MS = 2000;

/**
 * A Prosody with Juliet logged in, and a gateway with EVENT_RETENTION and this MAINTENANCE_INTERVAL,
 * started before the describe's tests and stopped after them; `say` is Juliet writing to `to`.
 */
function world(maintenanceInterval: string, env: Record<string, string> = {}): { gw: () => TestGateway; say: (to: string, body: string) => Promise<void> } {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw");
    gw = await startTestGateway(server, { EVENT_RETENTION: `${RETENTION_MS / 1000}s`, MAINTENANCE_INTERVAL: maintenanceInterval, ...env });
    juliet = await connectUser(server, "juliet", "pw", "balcony");
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });
  return { gw: () => gw, say: (to, body) => juliet.send(xml("message", { to, type: "chat", id: body }, xml("body", {}, body))) };
}

describe("event retention", () => {
  const { gw: gateway, say } = world("500ms");
  /** [id, event, body or resync's from] of each event a stream got. */
  const seen = (s: SseClient) => s.events.map((e) => [e.id, e.event, (e.json as { body?: string; from?: number }).body ?? (e.json as { from?: number }).from]);

  it("purges events older than EVENT_RETENTION; resuming from a purged cursor gets resync first, then the newer events", async () => {
    const gw = gateway();
    await gw.createAccount("capulet");
    const tok = gw.token("capulet");
    const to = `capulet@${gw.domain}`;
    const stored = async () =>
      (await gw.running.db.pool.query<{ seq: number }>("SELECT e.seq::int AS seq FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = 'capulet' ORDER BY e.seq")).rows.map((r) => r.seq);

    // Four events, seen live by a stream: ids 1..4 of a fresh account.
    const live = await gw.sse("/v1/events?since=0", tok);
    for (let i = 0; i < 4; i++) await say(to, `old-${i}`);
    await live.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 4, 5000, "the old events");
    await live.close();
    assert.deepEqual(seen(live), [1, 2, 3, 4].map((id, i) => [String(id), "message", `old-${i}`]));

    // The maintenance timer removes them once they are older than the retention.
    const appended = Date.now();
    await waitFor(async () => (await stored()).length === 0, 10_000, "the purge of the old events");
    const purgedAfter = Date.now() - appended;
    assert.ok(purgedAfter >= RETENTION_MS - 1000, `purged after ${purgedAfter} ms, before the retention had passed`);
    console.log(`event-retention: the 4 events were purged ${purgedAfter} ms after they were seen (retention ${RETENTION_MS} ms, maintenance every 500 ms)`);

    // A stream resuming from event 2 while the log is empty: resync from the head (4), then new events live.
    const emptyLog = await gw.sse("/v1/events", tok, { "last-event-id": "2" });
    assert.equal(emptyLog.status, 200);
    await say(to, "new-0");
    await say(to, "new-1");
    await emptyLog.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "the new events after the resync");
    const expected = [
      ["4", "resync", 4],
      ["5", "message", "new-0"],
      ["6", "message", "new-1"],
    ];
    assert.deepEqual(seen(emptyLog), expected);
    await emptyLog.close();

    // The same while the newer events are kept (they are younger than the retention): a stream and a
    // poller from an old cursor get the resync, then exactly the kept events.
    assert.deepEqual(await stored(), [5, 6]);
    const kept = await gw.sse("/v1/events", tok, { "last-event-id": "2" });
    await kept.waitFor((ev) => ev.filter((e) => e.event === "message").length >= 2, 5000, "the kept events after the resync");
    assert.deepEqual(seen(kept), expected);
    await kept.close();
    const page = await gw.request("GET", "/v1/events?since=1", { token: tok });
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(
      page.body.items.map((e: { id: number; event: string; data: { body?: string; from?: number } }) => [String(e.id), e.event, e.data.body ?? e.data.from]),
      expected,
    );
    assert.equal(page.body.nextSince, 6);
    // A poller with no cursor asked for the log as kept: it missed nothing, so no resync.
    const first = await gw.request("GET", "/v1/events", { token: tok });
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(
      first.body.items.map((e: { id: number; event: string }) => [String(e.id), e.event]),
      [
        ["5", "message"],
        ["6", "message"],
      ],
    );
    assert.equal(first.body.nextSince, 6);
  });
});

describe("event retention before the purge", () => {
  // Maintenance (the purge) never runs during the test: only the window can hide the old events.
  const { gw: gateway, say } = world("1h");

  it("a cursor whose next event is older than EVENT_RETENTION gets resync, then only the events inside the window", async () => {
    const gw = gateway();
    await gw.createAccount("montague");
    const tok = gw.token("montague");
    const to = `montague@${gw.domain}`;
    const stored = async () =>
      (await gw.running.db.pool.query<{ seq: number }>("SELECT e.seq::int AS seq FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = 'montague' ORDER BY e.seq")).rows.map((r) => r.seq);
    const page = async (since: number | null) => {
      const r = await gw.request("GET", since === null ? "/v1/events" : `/v1/events?since=${since}`, { token: tok, headers: { accept: "application/json" } });
      assert.equal(r.status, 200, r.text);
      return [r.body.items.map((e: { id: number; event: string; data: { body?: string; from?: number } }) => [e.id, e.event, e.data.body ?? e.data.from]), r.body.nextSince];
    };
    for (let i = 0; i < 3; i++) await say(to, `old-${i}`);
    await waitFor(async () => (await stored()).length === 3, 5000, "the 3 old events");
    // Past the window, then a new event: the old ones are still stored, nothing purged them.
    await new Promise((r) => setTimeout(r, RETENTION_MS + 1000));
    await say(to, "new-0");
    await waitFor(async () => (await stored()).length === 4, 5000, "the new event");
    assert.deepEqual(await stored(), [1, 2, 3, 4], "the purge did not run");

    const expected = [
      [3, "resync", 3],
      [4, "message", "new-0"],
    ];
    assert.deepEqual(await page(1), [expected, 4], "a poller from an old cursor");
    assert.deepEqual(await page(3), [[[4, "message", "new-0"]], 4], "a cursor just before the window: no resync, no gap");
    assert.deepEqual(await page(null), [[[4, "message", "new-0"]], 4], "no cursor: the window, without a resync");
    const s = await gw.sse("/v1/events", tok, { "last-event-id": "1" });
    try {
      await s.waitFor((ev) => ev.some((e) => e.event === "message"), 5000, "the event in the window");
      assert.deepEqual(
        s.events.map((e) => [Number(e.id), e.event, (e.json as { body?: string; from?: number }).body ?? (e.json as { from?: number }).from]),
        expected,
      );
    } finally {
      await s.close();
    }
  });

  it("a client that got only the opening of a stream that resyncs still gets the resync on its reconnect: the opening names no position past its cursor", async () => {
    const gw = gateway();
    await gw.createAccount("benvolio");
    const tok = gw.token("benvolio");
    const to = `benvolio@${gw.domain}`;
    const stored = async () =>
      (await gw.running.db.pool.query<{ seq: number }>("SELECT e.seq::int AS seq FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = 'benvolio' ORDER BY e.seq")).rows.map((r) => r.seq);
    for (let i = 0; i < 3; i++) await say(to, `old-${i}`);
    await waitFor(async () => (await stored()).length === 3, 5000, "the 3 old events");
    await new Promise((r) => setTimeout(r, RETENTION_MS + 1000));
    await say(to, "new-0");
    await waitFor(async () => (await stored()).length === 4, 5000, "the new event");

    // The stream from cursor 1 resyncs (2 and 3 are outside the window). Its connection ends right
    // after the opening block, before the resync frame: an EventSource keeps the opening's id, if
    // it names one, as its last event ID (HTML §9.2.6), else the cursor it sent.
    const { status, opening, abort } = await streamOpening(`${gw.url}/v1/events`, { authorization: `Bearer ${tok}`, "last-event-id": "1" });
    assert.equal(status, 200);
    abort();
    const kept = /^id: ?(.*)$/m.exec(opening)?.[1] ?? "1";
    const again = await gw.sse("/v1/events", tok, { "last-event-id": kept });
    try {
      await again.waitFor((ev) => ev.some((e) => e.event === "message"), 5000, "the event in the window");
      assert.deepEqual(
        again.events.map((e) => [Number(e.id), e.event]),
        [
          [3, "resync"],
          [4, "message"],
        ],
        `the reconnect (Last-Event-ID ${kept}, from the opening ${JSON.stringify(opening)}) is told of the events it will never get`,
      );
    } finally {
      await again.close();
    }
  });
});

describe("a session's cursor moves past the other sessions' events", () => {
  // No purge; heartbeats every 300 ms (a stream's position goes out with them).
  const { gw: gateway, say } = world("1h", { SSE_HEARTBEAT: "300ms" });

  /** An account with an available `laptop` session, and its JSON poll of one session's events (or all). */
  async function account(gw: TestGateway, localpart: string) {
    await gw.createAccount(localpart);
    const tok = gw.token(localpart);
    assert.equal((await gw.request("PUT", "/v1/presence?resource=laptop", { token: tok })).status, 200);
    const poll = async (since: number, resource?: string) => {
      const r = await gw.request("GET", `/v1/events?since=${since}${resource ? `&resource=${resource}` : ""}`, { token: tok, headers: { accept: "application/json" } });
      assert.equal(r.status, 200, r.text);
      return r.body as { items: { id: number; event: string; data: { body?: string } }[]; nextSince: number };
    };
    const toLaptop = async (bodies: string[]) => {
      for (const body of bodies) await say(`${localpart}@${gw.domain}/laptop`, body);
      await waitFor(async () => (await poll(0, "laptop")).items.filter((e) => e.event === "message").length === bodies.length, 5000, "the laptop's messages");
      return (await poll(0)).nextSince;
    };
    return { tok, poll, toLaptop };
  }

  it("a poller of one session: nextSince passes the laptop's messages it was not shown, and from it, past the retention window, there is no resync", async () => {
    const gw = gateway();
    const { poll, toLaptop } = await account(gw, "rosaline");
    const head = await toLaptop(["l1", "l2", "l3"]);
    const phone = await poll(0, "phone");
    assert.deepEqual([phone.items, phone.nextSince], [[], head], "the phone's page: nothing for it, and the log's head");
    await new Promise((r) => setTimeout(r, RETENTION_MS + 1000));
    await say(`rosaline@${gw.domain}`, "for all");
    await waitFor(async () => (await poll(head)).items.length === 1, 5000, "the bare-JID message");
    assert.deepEqual((await poll(phone.nextSince, "phone")).items.map((e) => [e.event, e.data.body]), [["message", "for all"]]);
  });

  it("a stream of one session: its position past the laptop's messages goes out as an id field alone, and a reconnect from it past the retention window gets no resync", async () => {
    const gw = gateway();
    const { tok, toLaptop } = await account(gw, "gregory");
    // Raw: an id field without data dispatches no event (HTML §9.2.6), so the parser of gw.sse never shows it.
    const { opening, reader, abort } = await streamOpening(`${gw.url}/v1/events?resource=phone`, { authorization: `Bearer ${tok}` });
    let raw = opening;
    const decoder = new TextDecoder();
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        raw += decoder.decode(value, { stream: true });
      }
    })();
    const lastId = () => [...raw.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])).pop();
    const head = await toLaptop(["l1", "l2", "l3"]);
    await waitFor(async () => lastId() === head, 5000, `the stream's position at ${head}`).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(raw)}`);
    });
    abort();
    await reading;
    assert.ok(!/^event:/m.test(raw), `no event was for the phone: ${JSON.stringify(raw)}`);
    await new Promise((r) => setTimeout(r, RETENTION_MS + 1000));
    const again = await gw.sse("/v1/events?resource=phone", tok, { "last-event-id": String(head) });
    try {
      await say(`gregory@${gw.domain}`, "for all");
      await again.waitFor((ev) => ev.some((e) => e.event === "message"), 5000, "the bare-JID message");
      assert.deepEqual(again.events.map((e) => e.event), ["message"]);
    } finally {
      await again.close();
    }
  });
});
