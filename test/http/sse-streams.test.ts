// SseStreams (src/http/sse.ts) on a real HTTP server and real sockets, with a stand-in for the
// event feed's Follower (what the stream writes is not the point here, when and how it ends is):
// a stream opened while the gateway shuts down gets what open streams get at that moment, a 200
// with a retry hint, so that an EventSource comes back (any other status makes it give up); a
// stream ends at its heartbeat turn once the token it was opened with has expired.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import Fastify, { type FastifyInstance } from "fastify";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { SseStreams } from "../../src/http/sse.js";
import type { Follower } from "../../src/services/events.js";
import { freePort } from "../../scripts/harness/ports.js";

/** A follower with no events that stays open until it is closed, as a live stream's does, and records that it was. */
function waitingFollower(): Follower & { closed: boolean } {
  let wake = () => {};
  const ended = new Promise<void>((resolve) => (wake = resolve));
  const f = {
    resource: "phone",
    delivered: 0,
    resync: null,
    closed: false,
    close() {
      f.closed = true;
      wake();
    },
    alive() {},
    async *[Symbol.asyncIterator]() {
      await ended;
      yield* [];
    },
  };
  return f as unknown as Follower & { closed: boolean };
}

/** Reads an SSE response as it comes: its comments, in order, and whether it has ended. */
function reader(r: Response): { comments: string[]; ended: Promise<void> } {
  const out = { comments: [] as string[], ended: Promise.resolve() };
  const parser = createParser({ onComment: (c) => out.comments.push(c.trim()), onEvent() {} });
  out.ended = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of r.body!) parser.feed(decoder.decode(chunk, { stream: true }));
  })();
  return out;
}

describe("SSE streams and their token's expiry", () => {
  let app: FastifyInstance;
  let url: string;
  const shutdown = new AbortController();
  const followers: Record<string, Follower & { closed: boolean }> = {};

  before(async () => {
    // Heartbeats every 400 ms: a stream past its expiry ends within that.
    const streams = new SseStreams({ retryMs: 700, heartbeatMs: 400, shutdown: shutdown.signal, onOpen() {}, onClose() {}, onHeartbeat() {} });
    app = Fastify();
    app.get<{ Querystring: { name: string; until: string } }>("/events", async (req, reply) => {
      const made = (followers[req.query.name] = waitingFollower());
      void streams.stream(reply, made, Number(req.query.until));
      return reply;
    });
    url = await app.listen({ port: await freePort(), host: "127.0.0.1" });
  });
  after(async () => {
    shutdown.abort();
    await app?.close();
  });

  it("a stream whose token expires is ended at its next heartbeat turn with a comment saying so; one with a later expiry goes on", async () => {
    const opened = Date.now();
    const abort = new AbortController();
    const open = (name: string, until: number) =>
      fetch(`${url}/events?name=${name}&until=${until}`, { headers: { accept: "text/event-stream" }, signal: abort.signal }).then(reader);
    const expiring = await open("expiring", opened + 300);
    const lasting = await open("lasting", opened + 60_000);
    const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the stream was not ended within 2 s of its expiry")), 2300).unref());
    await Promise.race([expiring.ended, late]);
    const endedAfter = Date.now() - opened;
    assert.ok(endedAfter >= 300 && endedAfter < 300 + 400 + 1100, `ended ${endedAfter} ms after the open, within a heartbeat interval of its expiry`);
    assert.equal(expiring.comments.at(-1), "token expired", "its last words");
    assert.deepEqual(new Set(expiring.comments.slice(1, -1)), new Set(expiring.comments.length > 2 ? ["heartbeat"] : []), "before them, heartbeats only");
    assert.equal(followers.expiring!.closed, true, "its follower was closed");
    // The other stream still gets heartbeats after that one ended: two more intervals' worth.
    const seen = lasting.comments.length;
    while (lasting.comments.length < seen + 2) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(new Set(lasting.comments.slice(1)), new Set(["heartbeat"]));
    assert.equal(followers.lasting!.closed, false);
    abort.abort();
    await lasting.ended.catch(() => {});
  });
});

describe("SSE streams at shutdown", () => {
  let app: FastifyInstance;
  let url: string;
  const shutdown = new AbortController();
  let opened = 0;
  /** The route waits for this before it hands its follower to the streams (a slow open). */
  let gate: Promise<void> = Promise.resolve();
  let made: ReturnType<typeof waitingFollower> | null = null;

  before(async () => {
    const streams = new SseStreams({ retryMs: 700, heartbeatMs: 15_000, shutdown: shutdown.signal, onOpen: () => opened++, onClose() {}, onHeartbeat() {} });
    app = Fastify();
    app.get("/events", async (_req, reply) => {
      made = waitingFollower();
      await gate;
      void streams.stream(reply, made, Infinity);
      return reply;
    });
    url = await app.listen({ port: await freePort(), host: "127.0.0.1" });
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
