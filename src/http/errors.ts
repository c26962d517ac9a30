// The one HTTP error handler: every failure becomes an RFC 9457 problem document with a stable
// code. Validation errors name the offending field.
import type { Duplex } from "node:stream";
import type { ErrorObject } from "ajv";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode } from "../domain/errors.js";
import { isAccountGone, isDatabaseDown } from "../services/errors.js";
import { problem } from "./problems.js";
import { validationProblem } from "./validation.js";

/**
 * RFC 9110 §11.6.1: a 401 carries the challenge. RFC 6750 §3: `invalid_token` only when a
 * credential was sent (a Bearer token or a stream ticket); a request without one gets no error code.
 */
function challenge(req: FastifyRequest): string {
  const sent = /^bearer /i.test(req.headers.authorization ?? "") || Boolean((req.query as { ticket?: unknown } | undefined)?.ticket);
  return sent ? `Bearer realm="balcony", error="invalid_token"` : `Bearer realm="balcony"`;
}

export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  const p = problem(code, detail, extra);
  if (typeof extra.retryAfter === "number") reply.header("retry-after", String(extra.retryAfter));
  // RFC 9110 §15.5.6: a 405 lists the methods the target supports.
  if (Array.isArray(extra.allow)) reply.header("allow", extra.allow.join(", "));
  if (p.status === 401) reply.header("www-authenticate", challenge(reply.request));
  // RFC 6750 §3.1: a token without the scope a request needs (`forbidden` is only ever that: the admin scope).
  if (code === "forbidden") reply.header("www-authenticate", `Bearer realm="balcony", error="insufficient_scope", scope="admin"`);
  return reply.code(p.status).type("application/problem+json").send(p);
}

/** Errors Fastify raises before routing (malformed URL, over-long path parameter). */
export function frameworkErrors(err: FastifyError, _req: unknown, reply: FastifyReply): void {
  if (err.code === "FST_ERR_MAX_PARAM_LENGTH") void sendProblem(reply, "uri-too-long", "a path parameter is too long");
  else void sendProblem(reply, "validation-failed", err.code === "FST_ERR_BAD_URL" ? "malformed URL (bad percent-encoding)" : err.message, { field: "url" });
}

/** Node's parser errors answered otherwise than as a malformed request (400 "malformed HTTP request"). */
const CLIENT_ERRORS: Record<string, [ErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: ["headers-too-large", "request headers too large"],
  ERR_HTTP_REQUEST_TIMEOUT: ["request-timeout", "request timed out"],
  // A method Node's parser does not know (FOO) is the client's error, a 400 naming it, not RFC 9110
  // §9.1's 501: a 5xx reads as the server's fault to monitors.
  HPE_INVALID_METHOD: ["validation-failed", "the request method is not one HTTP defines or this server knows"],
};

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (oversized headers, broken
 * chunked encoding, garbage): answered with a problem document too, then the socket is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [code, detail] = CLIENT_ERRORS[err.code ?? ""] ?? ["validation-failed", "malformed HTTP request"];
  const p = problem(code, detail);
  const body = JSON.stringify(p);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${p.status} ${p.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

export function registerErrorHandling(app: FastifyInstance, log: { error(o: object, m: string): void }): void {
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof AppError) return sendProblem(reply, err.code, err.detail, err.extra);
    if (err.validation) {
      const { code, detail, field } = validationProblem(err.validation as ErrorObject[], err.validationContext ?? "body");
      return sendProblem(reply, code, detail, { field });
    }
    if (isDatabaseDown(err)) return sendProblem(reply, "database-unavailable", "the database is unreachable or busy; retry later", { retryAfter: 1 });
    // API.md: an unknown account is 404, also when it was deleted while this request ran.
    if (isAccountGone(err)) return sendProblem(reply, "account-not-found", "the account was deleted while the request ran");
    const status = err.statusCode ?? 500;
    if (status === 413 || err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return sendProblem(reply, "payload-too-large", "request body too large");
    // RFC 9110 §15.5.16: a body in a media type the route does not take.
    if (status === 415) return sendProblem(reply, "unsupported-media-type", err.message, { field: "headers.content-type" });
    // A body that does not parse (malformed JSON, a __proto__ key, a length that does not match
    // Content-Length) is a validation failure of the body: API.md names the offending field.
    if (status >= 400 && status < 500) return sendProblem(reply, "validation-failed", err.message, err.code?.startsWith("FST_ERR_CTP_") ? { field: "body" } : {});
    log.error({ err }, "unhandled error");
    return sendProblem(reply, "internal", "internal error");
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, "not-found", `no route ${req.method} ${req.url.split("?")[0]}`));
}
