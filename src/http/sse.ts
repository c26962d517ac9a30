// Server-Sent Events (HTML Living Standard §9.2) for the open event streams of one gateway:
// frames, heartbeats, a retry hint, and back-pressure. The stream's content comes from the
// Follower it is given. One timer per gateway writes every stream's heartbeat (a slice of them at a time) and then calls
// `onHeartbeat` once (the sessions' batched liveness); a stream holds no timer or closure of its own
// beyond its close handler, and each event's frame is serialised once however many streams write it.
// A stream ends at its heartbeat turn once the credential it was opened with has expired.
import type { FastifyReply } from "fastify";
import type { ServerResponse } from "node:http";
import { sseFrame } from "../domain/sse-frame.js";
import type { Follower } from "../services/events.js";

export interface SseOptions {
  retryMs: number;
  heartbeatMs: number;
  /** Aborted when the gateway shuts down: the streams end with a retry hint. */
  shutdown: AbortSignal;
  onOpen(): void;
  onClose(): void;
  /** Once per heartbeat interval while streams are open (after their heartbeats are written). */
  onHeartbeat(): void;
}

interface OpenStream {
  res: ServerResponse;
  follower: Follower;
  /** Its heartbeat slice (see SLICES). */
  slice: number;
  /** When its credential expires (ms since the epoch). */
  until: number;
  /** The last event id the client was given: an event's, or an id field alone (see tick()). */
  idSent: number;
}

/**
 * The heartbeat interval is cut into this many slices; each stream belongs to one, and each slice's
 * streams get their heartbeats at its turn, one interval apart. Written in one burst, 10,000
 * heartbeats put 10,000 writes in flight at once: they outlived the young generation, and their
 * garbage cost full collections of a heap that holds every stream (bench/streams.ts: the collector
 * was 42% of the idle gateway's CPU). A new stream joins the slices in turn; whichever it joins
 * comes round within one interval, so no stream waits longer than that for a heartbeat.
 */
const SLICES = 16;

/**
 * The shared timer's period: a round of SLICES ticks ends a little before the heartbeat interval,
 * since timers fire late but never early, and a stream must hear from us at least every interval
 * (API.md: "at least every 15 s").
 */
export function tickMs(heartbeatMs: number): number {
  return Math.max(1, Math.floor((heartbeatMs - Math.min(500, heartbeatMs / 10)) / SLICES));
}

export const HEARTBEAT = ": heartbeat\n\n";
/**
 * The last words of a stream whose token has expired. It is ended, not kept: a token is checked
 * when a stream opens, and a stream must not outlive it. The client reconnects with a fresh token
 * (or ticket) and Last-Event-ID, and misses nothing; with the expired one it gets 401.
 */
export const EXPIRED = ": token expired\n\n";
/** The heartbeat as one HTTP/1.1 chunk (RFC 9112 §7.1): what `res.write(HEARTBEAT)` puts on a chunked response. */
export const HEARTBEAT_CHUNK = Buffer.from(`${Buffer.byteLength(HEARTBEAT).toString(16)}\r\n${HEARTBEAT}\r\n`);

/**
 * Writes a heartbeat. Idle, heartbeats are all a gateway does (10,000 streams: 667 writes a second),
 * so on a chunked response with nothing buffered it goes straight to the socket as one prepared
 * chunk: the same bytes without the response's per-write framing, which was 30-40% of a
 * heartbeat's CPU (bench/heartbeats.ts). Anything else (an HTTP/1.0 client, whose stream is not
 * chunked; back-pressure) takes the response's own path, so bytes never overtake one another.
 */
export function heartbeat(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && res.chunkedEncoding && res.writableLength === 0 && !res.writableEnded) socket.write(HEARTBEAT_CHUNK);
  else res.write(HEARTBEAT);
}

/** A stream's response headers (a HEAD of it answers them too, RFC 9110 §9.3.2), for the session `resource`. */
export function streamHeaders(resource: string): Record<string, string> {
  return {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
    vary: "Accept",
    // Percent-encoded: a resourcepart may hold any Unicode, a header value only Latin-1.
    "balcony-resource": encodeURIComponent(resource),
  };
}

export class SseStreams {
  private readonly open = new Set<OpenStream>();
  private readonly slices = Array.from({ length: SLICES }, () => new Set<OpenStream>());
  /** The slice whose heartbeats are written next, and the one the next stream joins. */
  private turn = 0;
  private joining = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SseOptions) {
    opts.shutdown.addEventListener("abort", () => {
      // The gateway is going away: tell every client to come back soon (to another instance),
      // and close the connection after the last chunk. Its headers said keep-alive: left open it
      // would be idle, for the drain to wait on (src/http/drain.ts) or to cut under a reconnect.
      for (const s of [...this.open]) {
        const socket = s.res.socket;
        s.res.write(`retry: ${opts.retryMs}\n: shutting down\n\n`);
        this.finish(s);
        s.res.end();
        socket?.end();
      }
    });
  }

  get size(): number {
    return this.open.size;
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.slices[this.turn]!) {
      if (now >= s.until) {
        // Ended within one heartbeat interval of its token's expiry, with no timer of its own.
        this.finish(s);
        s.res.end(EXPIRED);
        continue;
      }
      // Past events for other sessions the client was never sent: their position, as an id field
      // alone (HTML §9.2.6: sets the last event ID, dispatches nothing), so that its Last-Event-ID
      // does not stay behind them until it reads as older than the retained log (a false resync).
      const at = s.follower.delivered;
      if (at > s.idSent) {
        s.idSent = at;
        s.res.write(`id: ${at}\n\n`);
      }
      heartbeat(s.res);
      s.follower.alive();
    }
    this.turn = (this.turn + 1) % SLICES;
    // Once per interval, after a full round of slices.
    if (this.turn === 0) this.opts.onHeartbeat();
  }

  private finish(s: OpenStream): void {
    if (!this.open.delete(s)) return;
    this.slices[s.slice]!.delete(s);
    s.follower.close();
    this.opts.onClose();
    if (this.open.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /**
   * A reconnect the stream cap refuses for now (`why`): told to come back in `retryMs`, with its
   * Last-Event-ID kept (no id field), and ended. A 429 would make an EventSource give up for good
   * (HTML §9.2.3), and the places taken are often a dead instance's or a dead connection's, free soon.
   */
  later(reply: FastifyReply, resource: string, retryMs: number, why: string): FastifyReply {
    return reply.code(200).headers({ ...streamHeaders(resource), connection: "close" }).send(`retry: ${retryMs}\n: ${why}\n\n` as never);
  }

  /**
   * Streams the follower's events on this request until the client goes, the gateway shuts down,
   * or `until` has passed: the expiry (ms since the epoch) of the token it was opened with, or,
   * for a ticket, of the token the ticket was minted with.
   */
  async stream(reply: FastifyReply, follower: Follower, until: number): Promise<void> {
    const res = reply.raw;
    const log = reply.log;
    reply.hijack();
    // The client may have gone while the stream was being opened (a flaky network, a reconnect
    // loop): its "close" came before anyone listened, and nothing would ever end this stream.
    if (!res.socket || res.socket.destroyed) {
      follower.close();
      return;
    }
    res.writeHead(200, {
      ...streamHeaders(follower.resource),
      // Opened during the shutdown, it ends at once (below), and its connection with it.
      connection: this.opts.shutdown.aborted ? "close" : "keep-alive",
    });
    if (this.opts.shutdown.aborted) {
      // Opened while the gateway shuts down: told to come back, as the open streams are. Any
      // status but 200 would make an EventSource give up for good (HTML §9.2.3).
      follower.close();
      res.end(`retry: ${this.opts.retryMs}\n: shutting down\n\n`);
      return;
    }
    // The stream's starting position as its last event id: an id field without data sets an
    // EventSource's last event ID and dispatches nothing (HTML §9.2.6), so a client that got no
    // event before the stream ended still reconnects with Last-Event-ID. It resumes exactly, and
    // the reconnect of a session DELETE ended is told from a fresh open (src/db/session-ends.ts).
    // Not for a stream that starts with a resync: its start is past the client's cursor, and a
    // client that got the opening but not the resync frame would resume from there and never
    // learn of the events it missed. The resync frame carries that id itself (API.md Events).
    const start = follower.resync ? "" : `id: ${follower.delivered}\n`;
    res.write(`retry: ${this.opts.retryMs}\n${start}: session ${follower.resource}\n\n`);
    const s: OpenStream = { res, follower, slice: this.joining, until, idSent: follower.delivered };
    this.joining = (this.joining + 1) % SLICES;
    this.open.add(s);
    this.slices[s.slice]!.add(s);
    this.opts.onOpen();
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), tickMs(this.opts.heartbeatMs));
      this.timer.unref();
    }
    if (follower.resync) res.write(sseFrame(follower.resync));
    const onGone = () => this.finish(s);
    res.on("close", onGone);
    res.on("error", onGone);
    try {
      for await (const batch of follower) {
        s.idSent = batch[batch.length - 1]!.id;
        if (!res.write(batch.length === 1 ? sseFrame(batch[0]!) : batch.map(sseFrame).join(""))) await drained(res);
      }
    } catch (err) {
      log.warn({ err: String(err) }, "event stream failed; closing it so the client resumes");
    } finally {
      this.finish(s);
      res.end();
    }
  }
}

/**
 * Until the client has read what was written (or is gone). Whichever comes first takes the other's
 * listener away: a stream that meets back-pressure again and again would pile them up otherwise.
 */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done).off("close", done);
      resolve();
    };
    res.once("drain", done).once("close", done);
  });
}
