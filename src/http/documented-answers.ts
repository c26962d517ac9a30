// What many operations may answer, documented once for every route it applies to (onRoute), so
// that the OpenAPI document lists every status and header a client can get, as a contract test
// generated from it expects: 429 and 503 on every /v1 route, the 401 challenge, 413 and 415 on
// every route that takes a body or whose method may carry one, 414 on every route with a path
// parameter, and which bodies may be left out. And on every documented route, /v1 or not, what
// any request may get before it is routed (src/http/errors.ts clientErrorHandler, requireHost,
// frameworkErrors): 400 for a malformed request, 408 and 431.
import type { RouteOptions } from "fastify";
import type { SwaggerTransformObject } from "@fastify/swagger";
import { Type } from "@sinclair/typebox";
import { bodyOptional } from "./context.js";
import { Problem } from "./schemas.js";

const problem = { "application/problem+json": { schema: Type.Ref(Problem) } };
const retryAfter = (description: string) => ({ "retry-after": { type: "integer", minimum: 1, description } });

/** 429, which any /v1 route may answer (src/http/limits.ts), with the Retry-After it carries. */
export const rateLimitedResponse = {
  description: "Too many requests from this address or for this account (RATE_LIMIT_*): Problem details (RFC 9457)",
  headers: retryAfter("Seconds until a request will be counted again"),
  content: problem,
};

const ANSWERS: Record<number, { description: string; headers?: Record<string, unknown>; content: typeof problem }> = {
  413: { description: "The body is larger than BODY_LIMIT_BYTES (payload-too-large): Problem details (RFC 9457)", content: problem },
  415: {
    description: "The body is not application/json (unsupported-media-type, field headers.content-type), or comes in a content coding (field headers.content-encoding, with Accept-Encoding: identity): Problem details (RFC 9457)",
    content: problem,
  },
};

const CONTENT_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

const TOO_LONG = { description: "A path parameter is longer than the router takes (uri-too-long): Problem details (RFC 9457)", content: problem };

const UNAVAILABLE = {
  description:
    "Try again later: PostgreSQL is unreachable (database-unavailable), or the room a request is about cannot take it now (room-unavailable: a join, or a message or change for a room being entered again). A link to the XMPP server that is down is no reason: what is accepted goes out once it is back: Problem details (RFC 9457)",
  headers: retryAfter("Seconds to wait before trying again (database-unavailable: 1)"),
  content: problem,
};

/**
 * What the server answers before routing, whatever the route (src/http/errors.ts
 * clientErrorHandler: Node's parser; src/http/request-checks.ts requireHost): a route's own 400
 * keeps its place, it says more.
 */
const BEFORE_ROUTING: Record<number, { description: string; content: typeof problem }> = {
  400: {
    description: "A malformed request (validation-failed): HTTP framing Node's parser refuses (e.g. a broken chunked body), an HTTP/1.1 request without Host (field headers.host), or a URL with bad percent-encoding (field url): Problem details (RFC 9457)",
    content: problem,
  },
  408: { description: "The request did not arrive in time (request-timeout): Problem details (RFC 9457)", content: problem },
  431: { description: "The request's header fields are larger than the server takes (headers-too-large, RFC 6585 §5): Problem details (RFC 9457)", content: problem },
};

const CHALLENGE = {
  "www-authenticate": { type: "string", description: 'RFC 6750 §3: Bearer realm="balcony", with error="invalid_token" when a token (or a stream ticket) was sent and refused' },
};

const SCOPE_CHALLENGE = {
  "www-authenticate": { type: "string", description: 'RFC 6750 §3.1, on a forbidden (a token without the admin scope a request needs): Bearer realm="balcony", error="insufficient_scope", scope="admin"' },
};

/** Marks the operation whose whole body may be left out (see transformDocument). */
const BODY_OPTIONAL = "x-body-optional";

/** onRoute: adds the common answers to a documented route's responses (most of them to /v1 routes only). */
export function documentCommonAnswers(route: RouteOptions): void {
  const schema = route.schema as (Record<string, unknown> & { response?: Record<string, Record<string, unknown>> }) | undefined;
  const response = schema?.response;
  if (!schema || !response) return;
  for (const [status, answer] of Object.entries(BEFORE_ROUTING)) response[status] ??= answer;
  if (!route.url.startsWith("/v1/")) return;
  response[429] ??= rateLimitedResponse;
  // A 503 of the route's own (room-unavailable) gets the common description and Retry-After,
  // which name that too.
  response[503] = UNAVAILABLE;
  if (response[401]) response[401] = { ...response[401], headers: CHALLENGE };
  if (response[403]) response[403] = { ...response[403], headers: SCOPE_CHALLENGE };
  // A route without a body still reads one sent with a method that can carry content (RFC 9110
  // §9.3): a body over the limit, or in another media type, is refused there too.
  if (schema.body || [route.method].flat().some((m) => CONTENT_METHODS.has(m))) {
    for (const [status, answer] of Object.entries(ANSWERS)) response[status] ??= answer;
  }
  if (schema.body && [route.preValidation].flat().includes(bodyOptional)) schema[BODY_OPTIONAL] = true;
  // The router's limit on a path parameter's length (frameworkErrors): over it, before any check of the route's own.
  if (route.url.includes(":")) response[414] ??= TOO_LONG;
}

/**
 * An operation's operationId (OpenAPI 3 §4.8.10), which code generators name their methods by:
 * the method and the path, parameters as By<Name>: POST /v1/roster/{jid}/subscribe is
 * postRosterByJidSubscribe. Derived, so it is unique and stays as stable as the path.
 */
export function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/v1\//, "/")
    .split("/")
    .filter(Boolean)
    .flatMap((segment) => (segment.startsWith("{") ? ["by", ...segment.slice(1, -1).split(/[^A-Za-z0-9]+/)] : segment.split(/[^A-Za-z0-9]+/)));
  return method.toLowerCase() + words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
}

/**
 * @fastify/swagger's transformObject: a body the route does not need is not a required one, and
 * every operation gets its operationId.
 */
export const transformDocument: SwaggerTransformObject = (doc) => {
  if (!("openapiObject" in doc)) return doc.swaggerObject;
  type Operation = { [BODY_OPTIONAL]?: boolean; requestBody?: { required?: boolean }; operationId?: string };
  for (const [path, operations] of Object.entries(doc.openapiObject.paths ?? {}) as [string, Record<string, Operation>][]) {
    for (const [method, op] of Object.entries(operations ?? {})) {
      if (!op || typeof op !== "object") continue;
      op.operationId ??= operationId(method, path);
      if (!op[BODY_OPTIONAL]) continue;
      delete op[BODY_OPTIONAL];
      if (op.requestBody) op.requestBody.required = false;
    }
  }
  return doc.openapiObject;
};
