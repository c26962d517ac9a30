// SseStreams (src/http/sse.ts) on a real HTTP server and real sockets, with a stand-in for the
// event feed's Follower (what the stream writes is not the point here, when and how it ends is):
// a stream opened while the gateway shuts down gets what open streams get at that moment, a 200
// with a retry hint, so that an EventSource comes back (any other status makes it give up).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import Fastify, { type FastifyInstance } from "fastify";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { SseStreams } from "../../src/http/sse.js";
import type { Follower } from "../../src/services/events.js";

/** A follower with no events that records whether it was closed. */
function follower(): Follower & { closed: boolean } {
  const f = {
    resource: "phone",
    resync: null,
    closed: false,
    close() {
      f.closed = true;
    },
    alive() {},
    async *[Symbol.asyncIterator]() {},
  };
  return f as unknown as Follower & { closed: boolean };
}

describe("SSE streams at shutdown", () => {
  let app: FastifyInstance;
  let url: string;
  const shutdown = new AbortController();
  let opened = 0;
  /** The route waits for this before it hands its follower to the streams (a slow open). */
  let gate: Promise<void> = Promise.resolve();
  let made: ReturnType<typeof follower> | null = null;

  before(async () => {
    const streams = new SseStreams({ retryMs: 700, heartbeatMs: 15_000, shutdown: shutdown.signal, onOpen: () => opened++, onClose() {}, onHeartbeat() {} });
    app = Fastify();
    app.get("/events", async (_req, reply) => {
      made = follower();
      await gate;
      void streams.stream(reply, made);
      return reply;
    });
    url = await app.listen({ port: 0, host: "127.0.0.1" });
  });
  after(async () => {
    await app?.close();
  });

  it("a stream whose open ends after the shutdown began is a 200 with a retry hint and a comment, then ends; its follower is closed", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const res = fetch(`${url}/events`, { headers: { accept: "text/event-stream" } });
    // The request is in the handler, waiting for its follower; then the gateway starts shutting down.
    while (made === null) await new Promise((r) => setTimeout(r, 5));
    shutdown.abort();
    open();
    const r = await res;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const text = await r.text();
    const got: { retry?: number; comments: string[]; events: EventSourceMessage[] } = { comments: [], events: [] };
    const parser = createParser({ onRetry: (ms) => (got.retry = ms), onComment: (c) => got.comments.push(c.trim()), onEvent: (e) => got.events.push(e) });
    parser.feed(text);
    assert.equal(got.retry, 700);
    assert.deepEqual(got.comments, ["shutting down"]);
    assert.deepEqual(got.events, []);
    assert.equal(made!.closed, true, "the follower was closed");
    assert.equal(opened, 0, "not counted as an open stream");
  });
});
