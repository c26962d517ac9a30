// What many operations may answer, documented once for every route it applies to (onRoute), so
// that the OpenAPI document lists every status and header a client can get, as a contract test
// generated from it expects: 429 and 503 on every /v1 route, the 401 challenge, 413 and 415 on
// every route that takes a body, and which bodies may be left out.
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
  415: { description: "The body is not application/json (unsupported-media-type, field headers.content-type): Problem details (RFC 9457)", content: problem },
};

const UNAVAILABLE = {
  description:
    "Try again later: PostgreSQL is unreachable (database-unavailable), or, where the route says so, the XMPP side cannot take the request now (xmpp-unavailable, room-unavailable): Problem details (RFC 9457)",
  headers: retryAfter("Seconds to wait before trying again (database-unavailable: 1)"),
  content: problem,
};

const CHALLENGE = {
  "www-authenticate": { type: "string", description: 'RFC 6750 §3: Bearer realm="balcony", with error="invalid_token" when a token (or a stream ticket) was sent and refused' },
};

/** Marks the operation whose whole body may be left out (see transformDocument). */
const BODY_OPTIONAL = "x-body-optional";

/** onRoute: adds the common answers to a /v1 route's documented responses. */
export function documentCommonAnswers(route: RouteOptions): void {
  const schema = route.schema as (Record<string, unknown> & { response?: Record<string, Record<string, unknown>> }) | undefined;
  const response = schema?.response;
  if (!route.url.startsWith("/v1/") || !schema || !response) return;
  response[429] ??= rateLimitedResponse;
  // An earlier 503 of the route's own (xmpp-unavailable, room-unavailable) keeps its place; its
  // description and Retry-After become the common ones, which name those too.
  response[503] = UNAVAILABLE;
  if (response[401]) response[401] = { ...response[401], headers: CHALLENGE };
  if (schema.body) {
    for (const [status, answer] of Object.entries(ANSWERS)) response[status] ??= answer;
    const pre = [route.preValidation].flat();
    if (pre.includes(bodyOptional)) schema[BODY_OPTIONAL] = true;
  }
}

/** @fastify/swagger's transformObject: a body the route does not need is not a required one. */
export const transformDocument: SwaggerTransformObject = (doc) => {
  if (!("openapiObject" in doc)) return doc.swaggerObject;
  type Operation = { [BODY_OPTIONAL]?: boolean; requestBody?: { required?: boolean } };
  for (const operations of Object.values(doc.openapiObject.paths ?? {}) as Record<string, Operation>[]) {
    for (const op of Object.values(operations ?? {})) {
      if (!op || typeof op !== "object" || !op[BODY_OPTIONAL]) continue;
      delete op[BODY_OPTIONAL];
      if (op.requestBody) op.requestBody.required = false;
    }
  }
  return doc.openapiObject;
};
