// GET /v1/conversations (API.md "Message features (1.1)").
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { freshCallerAccount, type Gateway } from "../context.js";
import { MessageView, pageLimit, problemResponses } from "../schemas.js";

const Conversation = Type.Object({
  with: Type.String({ description: "The peer's bare JID, or the room's" }),
  lastMessage: MessageView,
  unread: Type.Integer({ minimum: 0, description: "Messages received after the read position" }),
  lastReadId: Type.Union([Type.String(), Type.Null()], { description: "The message read up to (POST /v1/messages/{id}/displayed)" }),
  updatedAt: Type.String({ format: "date-time" }),
});

export function conversationRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/conversations",
      {
        schema: {
          tags: ["messages"],
          summary: "The account's conversations, newest activity first, with unread counts",
          description: "A page holds at most `limit` conversations and 4 MiB of their latest messages' data (always its first): fewer than `limit` with a `nextCursor` means more follow.",
          querystring: Type.Object({
            cursor: Type.Optional(Type.String({ pattern: "^[0-9]{1,18}$", description: "nextCursor of the previous page" })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          }),
          response: { 200: Type.Object({ items: Type.Array(Conversation), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400, 401, 404) },
        },
      },
      async (req) => gw.conversations.list((await freshCallerAccount(gw, req)).id, req.query.cursor ?? null, pageLimit(req.query.limit, 50, 200)),
    );
  };
}
