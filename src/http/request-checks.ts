// Checks of a request's framing that come before routing and authentication, answered as problem
// documents like every other error (Node's own answers to some of them have no body). Every
// request passes them: synchronous hooks, no promise each.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { AppError } from "../domain/errors.js";

/**
 * RFC 9112 §3.2: an HTTP/1.1 request without Host is 400. Node's own answer to it (requireHostHeader,
 * turned off in src/http/app.ts) has no body; this one is a problem document naming the header.
 */
function hostMissing(req: FastifyRequest): AppError | undefined {
  if (req.raw.httpVersion === "1.1" && req.headers.host === undefined) {
    return new AppError("validation-failed", "an HTTP/1.1 request carries a Host header (RFC 9112 §3.2)", { field: "headers.host" });
  }
}

/** Methods whose body Fastify never reads (its kSupportedHTTPMethods.bodyless). */
const BODYLESS = new Set(["GET", "HEAD", "TRACE"]);

/**
 * RFC 9110 §8.4, §15.5.16: bodies are taken as sent (identity), so a body in a content coding
 * (gzip, br...) is 415 with Accept-Encoding saying which would be taken, rather than parsed as it
 * is (a gzip body would fail as malformed JSON, and plain JSON labelled gzip would pass).
 */
function codedBody(req: FastifyRequest, reply: FastifyReply): AppError | undefined {
  const coding = req.headers["content-encoding"];
  if (coding === undefined || coding.trim().toLowerCase() === "identity" || coding.trim() === "") return;
  // Only a body that is read has a coding that matters: a GET's or HEAD's is never parsed (Fastify's
  // bodyless methods), so it is ignored whatever its label, as a plain one is (and the OpenAPI
  // document lists 415 only where a body is read: src/http/documented-answers.ts).
  if (BODYLESS.has(req.method)) return;
  // A request without a body (an empty POST) is taken as it is.
  const length = req.headers["content-length"];
  if (req.headers["transfer-encoding"] === undefined && (length === undefined || length.trim() === "0")) return;
  void reply.header("accept-encoding", "identity");
  return new AppError("unsupported-media-type", `Content-Encoding ${coding} is not taken: send the body as it is (identity)`, { field: "headers.content-encoding" });
}

/** onRequest, before the method check (405): a request without Host. */
export function requireHost(req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  done(hostMissing(req));
}

/** onRequest, after the method check: a body in a content coding. */
export function refuseContentCoding(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  done(codedBody(req, reply));
}
