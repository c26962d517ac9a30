// Server-Sent Events (HTML Living Standard §9.2) for one open event stream: frames, heartbeats,
// a retry hint, and back-pressure. The stream's content comes from the Follower it is given.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { EventItem, Follower } from "../services/events.js";

export interface SseOptions {
  retryMs: number;
  heartbeatMs: number;
  /** Aborted when the gateway shuts down: the stream ends with a retry hint. */
  shutdown: AbortSignal;
  onOpen(): void;
  onClose(): void;
}

// JSON.stringify never emits a raw newline, so one data: line carries the whole event.
const frame = (e: EventItem) => `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

export async function streamEvents(req: FastifyRequest, reply: FastifyReply, follower: Follower, opts: SseOptions): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    // Percent-encoded: a resourcepart may hold any Unicode, a header value only Latin-1.
    "balcony-resource": encodeURIComponent(follower.resource),
  });
  res.write(`retry: ${opts.retryMs}\n: session ${follower.resource}\n\n`);
  opts.onOpen();
  if (follower.resync) res.write(frame(follower.resync));
  const heartbeat = setInterval(() => {
    res.write(": heartbeat\n\n");
    follower.alive();
  }, opts.heartbeatMs);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    opts.shutdown.removeEventListener("abort", onShutdown);
    clearInterval(heartbeat);
    follower.close();
    opts.onClose();
  };
  const onShutdown = () => {
    // The gateway is going away: tell the client to come back soon (to this or another instance).
    res.write(`retry: ${opts.retryMs}\n: shutting down\n\n`);
    finish();
    res.end();
  };
  opts.shutdown.addEventListener("abort", onShutdown);
  req.raw.on("close", finish);
  res.on("close", finish);
  res.on("error", finish);
  try {
    for await (const batch of follower) {
      if (!res.write(batch.map(frame).join(""))) await new Promise<void>((r) => res.once("drain", r).once("close", r));
    }
  } catch (err) {
    req.log.warn({ err: String(err) }, "event stream failed; closing it so the client resumes");
  } finally {
    finish();
    res.end();
  }
}
