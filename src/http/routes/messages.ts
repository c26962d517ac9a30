// POST /v1/messages, GET /v1/messages/{id}, GET /v1/messages?with= (RFC 6121 §5 over HTTP).
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { correctionOf } from "../../services/message-actions.js";
import type { SendMessage } from "../../services/messaging.js";
import { callerAccount, freshCallerAccount, requestedResource, type Gateway } from "../context.js";
import { AppError } from "../../domain/errors.js";
import { takeTurn } from "../loop-turns.js";
import { problem } from "../problems.js";
import { Accepted, BatchEnvelope, BatchResults, HistoryQuery, IdempotencyHeaders, MessageView, batchBody, batchItem, problemResponses, sendMessageBody, pageLimit } from "../schemas.js";
import { validationProblem, validators } from "../validation.js";

const cursor = (v: string | undefined) => (v ? Number(v) : null);

const splitKey = ({ idempotencyKey, ...message }: SendMessage & { idempotencyKey?: string }) => ({ message, idempotencyKey: idempotencyKey ?? null });

/** A batch item's answer; an error names the field inside the batch (body.messages.N...). */
function itemResult(r: Awaited<ReturnType<Gateway["messaging"]["sendBatch"]>>[number] | Awaited<ReturnType<Gateway["messageActions"]["correctEach"]>>[number], index: number) {
  if (!(r instanceof AppError)) return { id: r.id, status: r.status, createdAt: r.createdAt.toISOString(), ...(r.replayed ? { replayed: true } : {}) };
  const field = typeof r.extra.field === "string" ? r.extra.field.replace(/^(body|headers)\.(idempotency-key)?/, (_, _p, key) => `body.messages.${index}.${key ? "idempotencyKey" : ""}`) : undefined;
  return problem(r.code, r.detail, { ...r.extra, ...(field ? { field } : {}) });
}

/**
 * The batch's headers: its retry keys are per message. An Idempotency-Key header cannot stand for
 * them, so it is refused (in the route, naming it) unless every message carries its own key, which
 * makes a retry safe whatever the header says (clients whose HTTP layer adds the header to every POST).
 */
const BatchHeaders = Type.Object({
  ...Type.Pick(IdempotencyHeaders, ["balcony-resource"]).properties,
  "idempotency-key": Type.Optional(
    Type.String({ description: "Refused (400 validation-failed) unless every message has its own key in messages[].idempotencyKey; then it is ignored" }),
  ),
});

/** The indexes of a batch's messages without a key of their own. */
const unkeyed = (messages: unknown[]): number[] => messages.flatMap((m, i) => (typeof (m as { idempotencyKey?: unknown } | null)?.idempotencyKey === "string" ? [] : [i]));

/** The 409 of a change to a message that failed (src/services/message-actions.ts assertReached). */
const FAILED = "A message the account sent that failed (status `failed`: bounced, or never sendable) is refused with 409 message-failed: its recipient never got it.";

/** Up to 64 characters (longer is 400 naming params.id): one that is no message id (a UUID) names no message, so it is 404 like any unknown id. */
const IdParams = Type.Object({ id: Type.String({ maxLength: 64, description: "The message's id (a UUID)" }) });

export function messageRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Send a message (persisted before the 202)",
          description: `With \`replace\`, a correction (XEP-0308) of the account's message. ${FAILED} A correction sent again under its Idempotency-Key answers as it did.`,
          body: sendMessageBody(gw.config.maxTextChars),
          headers: IdempotencyHeaders,
          response: { 202: { ...Accepted, headers: { "idempotent-replayed": { type: "string", enum: ["true"], description: "The first answer to this Idempotency-Key, replayed: nothing was sent again" } } }, ...problemResponses(400, 401, 403, 404, 409, 413, 422, 503) },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        const body = req.body as SendMessage;
        if (body.replace !== undefined) {
          const c = await gw.messageActions.correct(account, requestedResource(req), body.replace, correctionOf(body, req.headers["idempotency-key"] ?? null));
          if (c.replayed) reply.header("idempotent-replayed", "true");
          return reply.code(202).send({ id: c.id, status: c.status, createdAt: c.createdAt.toISOString() });
        }
        const r = await gw.messaging.send(account, requestedResource(req), body, req.headers["idempotency-key"] ?? null);
        if (r.replayed) reply.header("idempotent-replayed", "true");
        return reply.code(202).send({ id: r.id, status: r.status, createdAt: r.createdAt.toISOString() });
      },
    );

    // Each message of a batch is checked on its own (one bad message refuses only itself): Fastify
    // checks the envelope, the route each message with the same rules as POST /v1/messages.
    const envelope = validators.body.compile(BatchEnvelope);
    const item = validators.body.compile(batchItem(gw.config.maxTextChars));
    app.post(
      "/v1/messages/batch",
      {
        bodyLimit: gw.config.batchBodyLimitBytes,
        validatorCompiler: ({ httpPart, schema }) => (httpPart === "body" ? envelope : validators.parts.compile(schema)),
        schema: {
          tags: ["messages"],
          summary: "Send up to 1,000 messages (each persisted before the 200; one result per message)",
          description:
            "Retries are safe per message: each carries its own `idempotencyKey`. An `Idempotency-Key` header is refused " +
            "(400 validation-failed, field `headers.idempotency-key`) when a message has no key of its own: one key cannot stand for many messages, " +
            "and ignoring it would send them all again on a retry. With every message keyed, the header is ignored.",
          body: batchBody(gw.config.maxTextChars),
          headers: BatchHeaders,
          response: { 200: BatchResults, ...problemResponses(400, 401, 403, 404, 413, 503) },
        },
      },
      async (req) => {
        const messages = (req.body as { messages: unknown[] }).messages;
        // API.md defines per-message keys only: a client that sends its usual header and retries
        // must hear that the header does nothing here, not get every message sent twice.
        const bare = req.headers["idempotency-key"] === undefined ? [] : unkeyed(messages);
        if (bare.length > 0) {
          const which = `messages ${bare.slice(0, 5).join(", ")}${bare.length > 5 ? ", …" : ""} have none`;
          throw new AppError("validation-failed", `headers.idempotency-key: a batch takes no Idempotency-Key header; give each message its own key in messages[].idempotencyKey (${which})`, { field: "headers.idempotency-key" });
        }
        // Read from the database: a batch answers 200 with each message's result, so an id gone
        // stale would not fail the request (src/http/context.ts) but refuse each message.
        const account = await freshCallerAccount(gw, req);
        // Checking 1,000 messages is long: a burst of batches takes turns with the I/O (src/http/loop-turns.ts).
        await takeTurn();
        const checked = messages.map((m, i) => (item(m) ? null : validationProblem(item.errors, `body.messages.${i}`)));
        const valid = messages.flatMap((m, i) => (checked[i] ? [] : [{ index: i, ...splitKey(m as SendMessage & { idempotencyKey?: string }) }]));
        // New messages are written together; corrections (`replace`) then go one by one, in order.
        const [plain, fixes] = [valid.filter((v) => v.message.replace === undefined), valid.filter((v) => v.message.replace !== undefined)];
        const accepted = await gw.messaging.sendBatch(account, requestedResource(req), plain);
        const corrected = await gw.messageActions.correctEach(account, requestedResource(req), fixes);
        const results: unknown[] = checked.map((c) => c && problem(c.code, c.detail, { field: c.field }));
        plain.forEach((v, k) => (results[v.index] = itemResult(accepted[k]!, v.index)));
        fixes.forEach((v, k) => (results[v.index] = itemResult(corrected[k]!, v.index)));
        return { results };
      },
    );

    app.get(
      "/v1/messages/:id",
      {
        schema: {
          tags: ["messages"],
          summary: "A message and its delivery status",
          params: IdParams,
          response: { 200: MessageView, ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => gw.messaging.get(await callerAccount(gw, req), req.params.id),
    );

    app.post(
      "/v1/messages/:id/reactions",
      {
        schema: {
          tags: ["messages"],
          summary: "Set the account's reactions to a message (XEP-0444; an empty list removes them)",
          description: FAILED,
          params: IdParams,
          body: Type.Object({ emojis: Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: 20, uniqueItems: true }) }, { additionalProperties: false }),
          response: { 200: MessageView, ...problemResponses(400, 401, 404, 409, 503) },
        },
      },
      async (req) => gw.messageActions.react(await callerAccount(gw, req), req.params.id, req.body.emojis),
    );

    app.delete(
      "/v1/messages/:id",
      {
        schema: {
          tags: ["messages"],
          summary: "Retract one of the account's messages (XEP-0424); a tombstone stays in history",
          description: "A message the account sent that failed (status `failed`) never reached its recipient: it becomes a tombstone here, and nothing is sent.",
          params: IdParams,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 503) },
        },
      },
      async (req, reply) => {
        await gw.messageActions.retract(await callerAccount(gw, req), req.params.id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      "/v1/messages/:id/displayed",
      {
        schema: {
          tags: ["messages"],
          summary: "Mark a received message displayed (XEP-0333 marker to its sender if it asked)",
          params: IdParams,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 503) },
        },
      },
      async (req, reply) => {
        await gw.messageActions.displayed(await callerAccount(gw, req), req.params.id);
        return reply.code(204).send(null);
      },
    );

    app.get(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Conversation history with one JID, both directions, newest first",
          description:
            "Each page lists its messages newest first; chat states sent alone (XEP-0085) are not messages and are not listed. " +
            "Without `after`, a page holds the newest messages (older than `before`, if given) and `nextCursor` is the `before` of the next, older page. " +
            "With `after`, it holds the messages right after that cursor (older than `before`, if given too) and `nextCursor` is the `after` of the next, newer page " +
            "(keep the same `before`), so paging forward repeats nothing and skips nothing (the messages of a conversation are stored in cursor order; README). `nextCursor` is null on the last page. A page holds at most `limit` messages and 4 MiB of their data (always its first): fewer than `limit` with a `nextCursor` means more follow.",
          querystring: HistoryQuery,
          response: { 200: Type.Object({ items: Type.Array(MessageView), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => {
        const { before, after, limit } = req.query;
        return gw.messaging.history(await freshCallerAccount(gw, req), req.query.with, { before: cursor(before), after: cursor(after), limit: pageLimit(limit, 50, 200) });
      },
    );
  };
}
