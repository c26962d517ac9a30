// POST /v1/messages, GET /v1/messages/{id}, GET /v1/messages?with= (RFC 6121 §5 over HTTP).
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { SendMessage } from "../../services/messaging.js";
import { callerAccount, requestedResource, type Gateway } from "../context.js";
import { Accepted, HistoryQuery, IdempotencyHeaders, MessageView, problemResponses, sendMessageBody, pageLimit } from "../schemas.js";

const cursor = (v: string | undefined) => (v ? Number(v) : null);

export function messageRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Send a message (persisted before the 202)",
          body: sendMessageBody(gw.config.maxTextChars),
          headers: IdempotencyHeaders,
          response: { 202: Accepted, ...problemResponses(400, 401, 403, 404, 413, 422, 503) },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        const r = await gw.messaging.send(account, requestedResource(req), req.body as SendMessage, req.headers["idempotency-key"] ?? null);
        if (r.replayed) reply.header("idempotent-replayed", "true");
        return reply.code(202).send({ id: r.id, status: r.status, createdAt: r.createdAt.toISOString() });
      },
    );

    app.get(
      "/v1/messages/:id",
      {
        schema: {
          tags: ["messages"],
          summary: "A message and its delivery status",
          params: Type.Object({ id: Type.String({ format: "uuid" }) }),
          response: { 200: MessageView, ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => gw.messaging.get(await callerAccount(gw, req), req.params.id),
    );

    app.get(
      "/v1/messages",
      {
        schema: {
          tags: ["messages"],
          summary: "Conversation history with one JID, both directions, newest first",
          querystring: HistoryQuery,
          response: { 200: Type.Object({ items: Type.Array(MessageView), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => {
        const { before, after, limit } = req.query;
        return gw.messaging.history(await callerAccount(gw, req), req.query.with, { before: cursor(before), after: cursor(after), limit: pageLimit(limit, 50, 200) });
      },
    );
  };
}
