// GET /v1/events: the account's event log as Server-Sent Events or as JSON pages.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { EventItemSchema } from "../../domain/events.js";
import { parseCursor } from "../../services/events.js";
import { TICKET_TTL } from "../../services/stream-tickets.js";
import { bodyOptional, callerAccount, principal, requestedResource, sessionResource, type Gateway } from "../context.js";
import { EventsQuery, problemResponses, pageLimit, SessionHeader } from "../schemas.js";
import client from "prom-client";
import { SseStreams, streamHeaders } from "../sse.js";
import { eventsView } from "../event-views.js";
import { rateLimitedResponse } from "../documented-answers.js";

export function eventRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    // One SSE writer per gateway: a shared heartbeat timer, which also keeps the sessions alive.
    const { sseRetryMs: retryMs, sseHeartbeatMs: heartbeatMs } = gw.config;
    const streams = new SseStreams({
      retryMs,
      heartbeatMs,
      shutdown: gw.shutdown,
      onOpen: () => gw.metrics.streams.inc(),
      onClose: () => gw.metrics.streams.dec(),
      onHeartbeat: () => void gw.events.heartbeat(),
    });
    // The event-log reads of this instance's streams (a shared per-account reader reads once for all).
    new client.Counter({
      name: "balcony_event_log_reads_total",
      help: "Reads of the event log for event streams on this instance (shared per-account readers and streams catching up)",
      registers: [gw.metrics.registry],
      collect() {
        this.reset();
        this.inc(gw.events.stats.logReads);
      },
    });
    app.get(
      "/v1/events",
      {
        schema: {
          tags: ["events"],
          summary: "The account's event log: SSE with Accept: text/event-stream, JSON pages otherwise",
          // A bearer token, or, for the SSE view only, a stream ticket in the query.
          security: [{ bearer: [] }, { streamTicket: [] }],
          querystring: EventsQuery,
          headers: Type.Object({ "last-event-id": Type.Optional(Type.String()), ...SessionHeader.properties }),
          response: {
            200: {
              description: "The JSON view (Accept: application/json, */* or none), or the SSE view (Accept: text/event-stream)",
              headers: {
                "balcony-resource": { type: "string", description: "SSE view: the stream's session (its resourcepart, percent-encoded)" },
                vary: { type: "string", description: "Accept: the view depends on it (RFC 9110 §12.5.5)" },
              },
              content: {
                "application/json": { schema: Type.Object({ items: Type.Array(Type.Ref(EventItemSchema)), nextSince: Type.Integer({ minimum: 0, description: "The cursor for the next page (?since=); past a page that is not full (fewer than limit events, and not cut at the page's size in bytes), the head the read reached, other sessions' events included" }) }) },
                "text/event-stream": {
                  schema: Type.String({
                    description:
                      "Server-Sent Events (HTML §9.2): a retry: hint and the position the stream starts from as id: (no event: a client that gets none before the stream ends still reconnects with Last-Event-ID; not when the stream starts with a resync, whose own id is that position), then one frame per event (id: its sequence number, event: its type, data: its JSON, as the JSON view's items' data), heartbeat comments at least every 15 s (after events for other sessions it passed, with its position as id: alone); ends with a comment (': shutting down', ': token expired') when the gateway stops or the token expires",
                  }),
                },
              },
            },
            204: Type.Null({
              description:
                "SSE view only: a reconnect (Last-Event-ID) of a session that DELETE /v1/sessions/{resource} ended a short while ago (SESSION_GRACE_SECONDS, at least SSE_RETRY plus 60 s), with a credential issued before the end (a token whose iat is earlier or absent, a stream ticket), and that nothing opened since. No body; an EventSource gives up on a 204 for good (HTML §9.2), so the session stays ended. A stream opened without Last-Event-ID (?since= included) opens it again.",
            }),
            ...problemResponses(400, 401, 404, 406),
            429: {
              ...rateLimitedResponse,
              description:
                "Too many requests from this address or for this account (RATE_LIMIT_*, rate-limited), or, SSE view, the account already has MAX_STREAMS_PER_ACCOUNT event streams open (too-many-streams, Retry-After: 5): Problem details (RFC 9457). A reconnect (Last-Event-ID) at the cap is answered 200 instead, with `retry: 5000`, a comment naming too-many-streams, and the end of the stream: an EventSource gives up on a 429 for good (HTML §9.2.3), and the places are often those of a dead instance or connection, free again soon.",
            },
          },
        },
      },
      async (req, reply) => {
        // RFC 9110 §12.5.5: the representation depends on Accept (the SSE view writes its own).
        void reply.header("vary", "Accept");
        const account = await callerAccount(gw, req);
        const view = eventsView(req.headers.accept);
        const lastEventId = req.headers["last-event-id"] || undefined;
        // The header wins (an EventSource's reconnect keeps its URL's ?since=), but a bad ?since= is
        // refused either way: a client sending it has a bug to hear of.
        const since = parseCursor(req.query.since, "querystring.since");
        const cursor = lastEventId ? parseCursor(lastEventId, "headers.last-event-id") : since;
        if (view === "sse") {
          const resource = sessionResource(req, req.query.resource);
          // A client following the SSE spec reconnects when its stream ends, with Last-Event-ID:
          // after a DELETE that reconnect would open the ended session again at once. 204 makes it
          // give up (HTML §9.2.3). ?since= is no reconnect: the client's own code chose it for a
          // new request (an EventSource's reconnect reuses its URL and adds the header).
          if (lastEventId !== undefined && (await gw.events.resumesEndedSession(account.id, resource, principal(req).iat))) return reply.code(204).send(null);
          // HEAD (exposed for every GET) must not open an endless stream, but answers as GET would
          // (RFC 9110 §9.3.2): a 429 where the stream cap would refuse the GET (not a reconnect's: SseStreams.later).
          if (req.method === "HEAD") {
            if (lastEventId === undefined) await gw.events.canOpen(account);
            return reply.code(200).headers(streamHeaders(resource)).send("" as never);
          }
          // A resume is checked again once its session's row is there: a DELETE committed meanwhile
          // (not heard here at the check above) is refused alike (EventFeed.resume).
          const follower = lastEventId === undefined ? await gw.events.open(account, resource, cursor) : await gw.events.resume(account, resource, cursor!, principal(req).iat).catch(capped);
          if (follower instanceof AppError) return streams.later(reply, resource, Number(follower.extra.retryAfter) * 1000, `${follower.code}: ${follower.detail}`);
          if (!follower) return reply.code(204).send(null);
          // Not awaited: the handler's request and reply are not kept for the stream's lifetime.
          void streams.stream(reply, follower, principal(req).exp);
          return reply;
        }
        if (view === null) throw new AppError("not-acceptable", "this route serves text/event-stream or application/json");
        // A named session sees its own events (and the account-wide ones); none named: the whole log.
        // The poll keeps the caller's session alive meanwhile (API.md Presence), as a stream would.
        const [page] = await Promise.all([
          gw.events.page(account, cursor, pageLimit(req.query.limit, 100, 1000), requestedResource(req, req.query.resource), req.method !== "HEAD"),
          gw.events.keepAlive(account.id, sessionResource(req, req.query.resource)),
        ]);
        // Built from the catalogue's schemas already: sent as JSON without a second serialization pass.
        return reply.type("application/json").send(JSON.stringify(page) as never);
      },
    );
    app.post(
      "/v1/events/tickets",
      {
        preValidation: bodyOptional,
        schema: {
          tags: ["events"],
          summary: "A short-lived ticket for GET /v1/events?ticket= (EventSource cannot send Authorization)",
          description: "The ticket opens event streams of the caller's account and session (the Balcony-Resource header or the token's resource claim) and nothing else: GET /v1/events' JSON view is no stream and takes no ticket (401). It may be used again until it expires (EventSource reconnects with the same URL), and never outlives the token: the streams it opened end when the token expires.",
          headers: SessionHeader,
          body: Type.Object({ ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: TICKET_TTL.max, default: TICKET_TTL.default })) }, { additionalProperties: false }),
          response: {
            201: Type.Object({
              ticket: Type.String(),
              expiresAt: Type.String({ format: "date-time" }),
              jid: Type.String({ description: "The account's bare JID" }),
              resource: Type.Union([Type.String(), Type.Null()], { description: "The session the ticket's streams belong to, unless ?resource= names one" }),
            }),
            ...problemResponses(400, 401, 404),
          },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        // The caller's session, generated for the token if it names none: the ticket's streams join it.
        const resource = sessionResource(req);
        const minted = await gw.tickets.mint(account, resource, req.body.ttlSeconds ?? TICKET_TTL.default, principal(req).exp);
        return reply.code(201).send({ ticket: minted.ticket, expiresAt: minted.expiresAt.toISOString(), jid: gw.accounts.jid(account.localpart), resource });
      },
    );
  };
}

/** The stream cap's refusal of a reconnect, returned to be answered as a come-back-later (SseStreams.later); any other error thrown. */
function capped(err: unknown): AppError {
  if (err instanceof AppError && err.code === "too-many-streams") return err;
  throw err;
}
