// GET /v1/events: the account's event log as Server-Sent Events (HTML Living Standard §9.2) or
// as JSON pages. A stream replays from Last-Event-ID / ?since= (or, without a cursor, from
// where its session left off), then follows the log live: woken by NOTIFY from any instance,
// it reads Postgres from its cursor, so it can neither skip nor repeat an event.
import { randomBytes } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../../domain/errors.js";
import { logBounds, readEvents, type StoredEvent } from "../../db/events.js";
import type { AccountRow } from "../../db/accounts.js";
import { callerAccount, requestedResource, type Gateway } from "../context.js";
import { EventsQuery, EventView, problemResponses, pageLimit } from "../schemas.js";

const PAGE = 500;

function sseFrame(id: number, event: string, data: unknown): string {
  // JSON.stringify never emits a raw newline, so one data: line carries the whole event.
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function parseCursor(raw: string | undefined, field: string): number | null {
  if (raw === undefined || raw === "") return null;
  if (!/^[0-9]{1,18}$/.test(raw)) throw new AppError("invalid-cursor", `${field} must be an event id`, { field });
  return Number(raw);
}

/** A cursor older than the retained log gets a `resync` first; returns where to read from. */
async function resyncPoint(gw: Gateway, accountId: number, after: number): Promise<{ resync: boolean; after: number }> {
  const { oldest, head } = await logBounds(gw.db.prisma, accountId);
  const firstKept = oldest ?? head + 1;
  if (after < firstKept - 1 && after < head) return { resync: true, after: firstKept - 1 };
  return { resync: false, after };
}

function resourceOf(req: FastifyRequest, fromQuery: string | undefined): string {
  return requestedResource(req, fromQuery) ?? `balcony-${randomBytes(6).toString("hex")}`;
}

async function stream(gw: Gateway, req: FastifyRequest, reply: FastifyReply, account: AccountRow, resource: string, cursor: number | null): Promise<void> {
  const { sessions, notifier, config, metrics } = gw;
  const release = gw.streamSlots.acquire(account.id);
  let session;
  try {
    session = await sessions.streamOpened(account.id, resource);
  } catch (err) {
    release();
    throw err;
  }
  let after = cursor ?? (session.existed ? session.deliveredSeq : await sessions.accountDeliveredSeq(account.id));
  const start = await resyncPoint(gw, account.id, after);
  const res = reply.raw;
  let closed = false;
  let dirty = true;
  let wake: (() => void) | null = null;
  const nudge = () => {
    dirty = true;
    wake?.();
  };
  const unsubscribe = notifier.subscribe(account.id, nudge);
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    // Percent-encoded: a resourcepart may hold any Unicode, a header value only Latin-1.
    "balcony-resource": encodeURIComponent(resource),
  });
  res.write(`retry: ${config.sseRetryMs}\n: session ${resource}\n\n`);
  metrics.streams.inc();
  if (start.resync) {
    res.write(sseFrame(start.after, "resync", { reason: "cursor older than the retained event log", from: start.after }));
    after = start.after;
  }
  const heartbeat = setInterval(() => {
    res.write(": heartbeat\n\n");
    void sessions.touch(account.id, resource, after).catch(() => undefined);
  }, config.sseHeartbeatMs);
  const onShutdown = () => {
    // The gateway is going away: tell the client to come back soon (to this or another instance).
    res.write(`retry: ${config.sseRetryMs}\n: shutting down\n\n`);
    finish();
    res.end();
  };
  const finish = () => {
    if (closed) return;
    closed = true;
    release();
    gw.shutdown.removeEventListener("abort", onShutdown);
    clearInterval(heartbeat);
    unsubscribe();
    metrics.streams.dec();
    wake?.();
    void sessions.streamClosed(account.id, resource).catch(() => undefined);
  };
  gw.shutdown.addEventListener("abort", onShutdown);
  req.raw.on("close", finish);
  res.on("close", finish);
  res.on("error", finish);

  try {
    while (!closed) {
      if (!dirty) {
        await new Promise<void>((r) => (wake = r));
        wake = null;
        continue;
      }
      dirty = false;
      let batch: StoredEvent[];
      do {
        batch = await readEvents(gw.db.prisma, account.id, after, PAGE, resource);
        if (closed || batch.length === 0) break;
        const ok = res.write(batch.map((e) => sseFrame(e.seq, e.type, e.data)).join(""));
        after = batch[batch.length - 1]!.seq;
        const receipts = batch.filter((e) => e.receiptTo && !e.receiptSent).map((e) => e.seq);
        if (receipts.length) await gw.answerReceipts(account.id, account.localpart, receipts);
        void sessions.touch(account.id, resource, after).catch(() => undefined);
        if (!ok) await new Promise<void>((r) => res.once("drain", r).once("close", r));
      } while (batch.length === PAGE);
    }
  } catch (err) {
    req.log.warn({ err: String(err) }, "event stream failed; closing it so the client resumes");
  } finally {
    finish();
    res.end();
  }
}

export function eventRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/events",
      {
        schema: {
          tags: ["events"],
          summary: "The account's event log: SSE with Accept: text/event-stream, JSON pages otherwise",
          querystring: EventsQuery,
          headers: Type.Object({ "last-event-id": Type.Optional(Type.String()) }),
          response: {
            200: Type.Object({ items: Type.Array(EventView), nextSince: Type.String() }, { description: "JSON view; the SSE view streams the same events as text/event-stream" }),
            ...problemResponses(400, 401, 404, 406),
          },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        const accept = req.headers.accept ?? "";
        const lastEventId = req.headers["last-event-id"];
        const cursor = parseCursor(typeof lastEventId === "string" && lastEventId ? lastEventId : req.query.since, lastEventId ? "headers.last-event-id" : "querystring.since");
        if (accept.includes("text/event-stream")) {
          // HEAD (exposed for every GET) must not open an endless stream.
          if (req.method === "HEAD") return reply.code(200).type("text/event-stream").send("" as never);
          return stream(gw, req, reply, account, resourceOf(req, req.query.resource), cursor);
        }
        if (accept && !/application\/json|\*\/\*|application\/\*/.test(accept)) throw new AppError("not-acceptable", "this route serves text/event-stream or application/json");
        const start = await resyncPoint(gw, account.id, cursor ?? 0);
        const limit = pageLimit(req.query.limit, 100, 1000);
        const items = start.resync ? [{ id: start.after, event: "resync", data: { reason: "cursor older than the retained event log", from: start.after }, createdAt: new Date().toISOString() }] : [];
        const rows = await readEvents(gw.db.prisma, account.id, start.after, limit - items.length, req.query.resource ?? null);
        for (const e of rows) items.push({ id: e.seq, event: e.type, data: e.data as never, createdAt: e.createdAt.toISOString() });
        return { items, nextSince: String(items.length ? items[items.length - 1]!.id : start.after) };
      },
    );
  };
}
