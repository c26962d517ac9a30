// The HTTP application: explicit plugin wiring, one error handler, auth on /v1, OpenAPI from
// the same TypeBox schemas that validate requests.
import { parse } from "node:querystring";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Redis } from "ioredis";
import { demoPage } from "./demo.js";
import { authenticate, isApiRequest, retryStaleCaller, type Gateway } from "./context.js";
import { clientErrorHandler, frameworkErrors, registerErrorHandling } from "./errors.js";
import { accountRateLimit, registerRateLimits } from "./limits.js";
import { refuseOtherMethods } from "./methods.js";
import { refuseContentCoding, requireHost } from "./request-checks.js";
import { Problem } from "./schemas.js";
import { EventItemSchema } from "../domain/events.js";
import { AppError } from "../domain/errors.js";
import { documentCommonAnswers, transformDocument } from "./documented-answers.js";
import { accountRoutes } from "./routes/accounts.js";
import { eventRoutes } from "./routes/events.js";
import { messageRoutes } from "./routes/messages.js";
import { opsRoutes } from "./routes/ops.js";
import { presenceRoutes } from "./routes/presence.js";
import { rosterRoutes } from "./routes/roster.js";
import { sessionRoutes } from "./routes/sessions.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { roomRoutes } from "./routes/rooms.js";
import { blocklistRoutes } from "./routes/blocklist.js";
import { conversationRoutes } from "./routes/conversations.js";
import { validators } from "./validation.js";
import { lazyRequestLogger } from "./request-logger.js";

export const API_VERSION = "1.0.0";

/**
 * Query strings as usual, except that an empty parameter is an absent one: clients build
 * `?cursor=&limit=` for a first page (API.md spells the routes so), which means no cursor and
 * the default size, not a cursor of "" (400).
 */
export function parseQuery(query: string): Record<string, unknown> {
  const params: Record<string, unknown> = query.length === 0 ? {} : parse(query);
  for (const key of Object.keys(params)) if (params[key] === "") delete params[key];
  return params;
}

export interface AppOptions {
  logger?: Logger;
  logRequests?: boolean;
  bodyLimit?: number;
  /** Counts rate limits in Redis, across instances (REDIS_URL); in memory without it. */
  redis?: Redis | null;
}

export async function buildApp(gw: Gateway, opts: AppOptions = {}): Promise<FastifyInstance> {
  const base = Fastify({
    loggerInstance: (opts.logger ?? pino({ level: "silent" })) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !opts.logRequests }),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    // Behind a load balancer, the client's address (per-IP rate limit, logs) is X-Forwarded-For's.
    trustProxy: gw.config.trustProxy,
    routerOptions: { maxParamLength: 3072, querystringParser: parseQuery },
    frameworkErrors,
    clientErrorHandler,
    // While closing, requests on open keep-alive connections are still served (with
    // Connection: close, below): Fastify's own 503 for them is not a problem document, and they
    // would be lost work when the database is still open until close() returns.
    return503OnClosing: false,
    // A request without Host is refused by requireHost, as a problem document (Node's has no body).
    http: { requireHostHeader: false },
  });
  // Bodies are JSON only (API.md): without Fastify's text/plain parser, any other media type is
  // 415 unsupported-media-type (RFC 9110 §15.5.16) instead of a string that fails validation.
  base.removeContentTypeParser("text/plain");
  // An empty application/json body (Content-Length: 0, as fetch and many clients send on a POST
  // or DELETE without content) is an absent body, not a parse error: routes that take none, or
  // only optional fields, accept it; routes that need one fail validation naming `body`.
  // Otherwise Fastify's own parser, which refuses __proto__ and constructor.prototype keys. JSON
  // is UTF-8 (RFC 8259 §8.1): bytes that are not are refused, never sent on as U+FFFD (a lenient
  // decoding did, and a lone surrogate's bytes reached the XMPP peer as three of them).
  const json = base.getDefaultJsonParser("error", "error");
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  base.removeContentTypeParser("application/json");
  base.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body: Buffer, done) => {
    if (body.length === 0) return done(null, undefined);
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return done(new AppError("validation-failed", "the body is not UTF-8 (RFC 8259 §8.1)", { field: "body" }), undefined);
    }
    json(req, text, done);
  });
  base.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? validators.body : validators.parts).compile(schema));
  registerErrorHandling(base, base.log);
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(Problem);
  // Shared by reference (components.schemas.Event): the typed client's EventItem is this schema.
  app.addSchema(EventItemSchema);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Balcony",
        version: API_VERSION,
        description: "HTTP gateway to XMPP (RFC 6121): hosted accounts, messages, presence and an event stream. Contract: API.md, version 1.",
      },
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT",
            description:
              "A JWT: sub names the account (its localpart or bare JID), exp is required. With DELETION_REVOKES_TOKENS, a token issued (iat, whole seconds) in a second before its account's deletion is refused (401) for an account created again under that localpart, and creates none with AUTO_PROVISION",
          },
          // GET /v1/events' SSE view only (EventSource sends no Authorization): POST /v1/events/tickets.
          streamTicket: { type: "apiKey", in: "query", name: "ticket", description: "A stream ticket (POST /v1/events/tickets): opens GET /v1/events with Accept: text/event-stream, nothing else" },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: "messages" },
        { name: "events" },
        { name: "sessions" },
        { name: "roster", description: "RFC 6121 §2" },
        { name: "subscriptions", description: "RFC 6121 §3" },
        { name: "presence", description: "RFC 6121 §4" },
        { name: "rooms", description: "Group chat, XEP-0045 (1.1)" },
        { name: "blocking", description: "XEP-0191 (1.1)" },
        { name: "webhooks", description: "Events pushed to HTTP endpoints, signed per Standard Webhooks (1.1)" },
        { name: "accounts", description: "Admin routes (scope admin)" },
        { name: "operations" },
      ],
    },
    transformObject: transformDocument,
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());


  // What every /v1 route may answer (429 from the limits below, 503, 413 and 415 on a body…): the
  // OpenAPI document says so once, here.
  app.addHook("onRoute", documentCommonAnswers);
  app.decorateRequest("principal", null);
  app.decorateRequest("cachedCaller", null);
  app.decorateRequest("freshCaller", false);
  // A request that failed for an account id this instance cached stale runs again with the database's.
  app.addHook("onRoute", retryStaleCaller(gw));
  await registerRateLimits(base, gw.config.rateLimit, opts.redis ?? null);
  // RFC 9110 §15.5.6: a served path with another method is 405 + Allow, before any token is asked for.
  app.addHook("onRequest", requireHost);
  app.addHook("onRequest", refuseOtherMethods);
  app.addHook("onRequest", refuseContentCoding);
  app.addHook("onRequest", async (req) => {
    if (isApiRequest(req)) req.principal = await authenticate(gw, req);
  });
  accountRateLimit(base, gw.config.rateLimit);
  // From the shutdown on, every answer closes its connection (RFC 9112 §9.6), those in flight
  // then too: its client sends the next request on a new connection, to another instance, and the
  // drain (src/http/drain.ts) never has to cut one that a client may be sending on. A callback
  // hook: no promise per request.
  app.addHook("onSend", (_req, reply, payload, done) => {
    if (gw.shutdown.aborted) reply.header("connection", "close");
    done(null, payload);
  });
  // A callback hook too.
  app.addHook("onResponse", (req, reply, done) => {
    gw.metrics.httpDuration.observe({ method: req.method, route: req.routeOptions.url ?? "unknown", status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  await app.register(opsRoutes(gw));
  await app.register(accountRoutes(gw));
  await app.register(messageRoutes(gw));
  await app.register(eventRoutes(gw));
  await app.register(sessionRoutes(gw));
  await app.register(rosterRoutes(gw));
  await app.register(presenceRoutes(gw));
  await app.register(webhookRoutes(gw));
  await app.register(roomRoutes(gw));
  await app.register(blocklistRoutes(gw));
  await app.register(conversationRoutes(gw));
  if (gw.config.demoPage) await app.register(demoPage);
  return base;
}
