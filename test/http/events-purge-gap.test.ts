// API.md Events: a cursor replays every event after it with no gap; one older than the retention
// window gets a resync first. A stream still catching up (its client reads slowly) while the
// maintenance purge removed the events it had yet to read skipped them in silence: its catch-up
// read took the next page after the gap as the next events. Found by the retention audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomUUID } from "node:crypto";
import { createParser } from "eventsource-parser";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { appendEvents, type NewEvent } from "../../src/db/events.js";

const RETENTION_MS = 3000;
const BIG = "x".repeat(512 * 1024);

describe("a purge while a stream replays", () => {
  let server: XmppServer;
  let gw: TestGateway;
  before(async () => {
    server = await startXmppServer("prosody");
    gw = await startTestGateway(server, { EVENT_RETENTION: `${RETENTION_MS}ms`, MAINTENANCE_INTERVAL: "100ms" });
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("a replay the purge overtakes gets a resync, not a silent gap", async () => {
    await gw.createAccount("slow");
    const { rows } = await gw.running.db.pool.query<{ id: number }>("SELECT id FROM account WHERE localpart = 'slow'");
    const accountId = rows[0]!.id;
    const msg = (body: string): NewEvent =>
      ({
        accountId,
        type: "message",
        data: { id: randomUUID(), from: "juliet@localhost/x", to: `slow@${gw.domain}`, type: "chat", body, subject: null, thread: null, lang: null, state: null, receiptRequested: false, stanzaId: null, createdAt: new Date().toISOString() },
      }) as unknown as NewEvent;
    // 80 events of 512 KiB (40 MiB: more than the socket buffers hold), ids 1..80.
    for (let i = 0; i < 8; i++) await appendEvents(gw.running.db.prisma, Array.from({ length: 10 }, () => msg(BIG)));

    // A stream from 0 (inside the window: no resync due), whose client reads a little and then stalls.
    const ids: string[] = [];
    const types: string[] = [];
    const parser = createParser({
      onEvent: (e) => {
        if (e.id && e.event) {
          ids.push(e.id);
          types.push(e.event);
        }
      },
    });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(`${gw.url}/v1/events?since=0`, { headers: { accept: "text/event-stream", authorization: `Bearer ${gw.token("slow")}` } }, resolve);
      req.on("error", reject);
    });
    assert.equal(res.statusCode, 200);
    res.setEncoding("utf8");
    // A plain http response, not the helpers' SSE client: the test pauses its reading (backpressure).
    res.on("data", (chunk: string) => parser.feed(chunk));
    await waitFor(() => ids.length >= 1, 10_000, "the first event");
    res.pause();
    // Wait until the purge removed events the stream has not yet read.
    await waitFor(
      async () => Number((await gw.running.db.pool.query("SELECT count(*) FROM event WHERE account_id = $1", [accountId])).rows[0].count) === 0,
      20_000,
      "the purge of the replayed events",
    );
    const readBeforeResume = ids.length;
    // A new event, then the client reads on.
    await appendEvents(gw.running.db.prisma, [msg("after the purge")]);
    res.resume();
    await waitFor(() => ids.includes("81"), 20_000, "the event after the purge");
    res.destroy();
    const seen = ids.map(Number);
    const gapAt = seen.findIndex((s, i) => i > 0 && s !== seen[i - 1]! + 1);
    // The purge overtook the stream (it read only some before the stall): a resync, named for the
    // last purged event, right before the jump, then every event kept.
    assert.ok(readBeforeResume < 80 && gapAt > 0, `the stream read ${readBeforeResume} before the stall, then ${seen.slice(readBeforeResume).join(",")}`);
    assert.equal(types[gapAt], "resync", `events ${seen[gapAt - 1]! + 1}..${seen[gapAt]! - 1} were skipped with no resync (ids seen: ${seen[0]}..${seen[gapAt - 1]}, then ${seen[gapAt]})`);
    assert.deepEqual(seen.slice(gapAt), [80, 81], "the resync names the last purged event; the new one follows");
  });
});
