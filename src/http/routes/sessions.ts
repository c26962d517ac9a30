// GET /v1/sessions, DELETE /v1/sessions/{resource}.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { prepareResourcepart } from "../../domain/jid.js";
import { callerAccount, freshCallerAccount, type Gateway } from "../context.js";
import { problemResponses } from "../schemas.js";
import { LangTextSchema } from "../../domain/events.js";
import type { LangText } from "../../domain/message.js";

const SessionView = Type.Object({
  resource: Type.String(),
  createdAt: Type.String({ format: "date-time" }),
  streams: Type.Integer({ description: "Event streams open on this session" }),
  lastSeenAt: Type.String({ format: "date-time" }),
  available: Type.Boolean(),
  show: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([LangTextSchema, Type.Null()]),
  priority: Type.Integer(),
});

export function sessionRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/sessions",
      { schema: { tags: ["sessions"], summary: "The account's sessions", response: { 200: Type.Object({ items: Type.Array(SessionView) }), ...problemResponses(401, 404) } } },
      async (req) => {
        const rows = await gw.events.listSessions((await freshCallerAccount(gw, req)).id);
        return { items: rows.map((s) => ({ resource: s.resource, createdAt: s.createdAt.toISOString(), streams: s.streams, lastSeenAt: s.lastSeenAt.toISOString(), available: s.available, show: s.show, status: s.status as LangText | null, priority: s.priority })) };
      },
    );
    app.delete(
      "/v1/sessions/:resource",
      {
        schema: {
          tags: ["sessions"],
          summary: "End a session",
          params: Type.Object({ resource: Type.String({ minLength: 1, maxLength: 1023 }) }),
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404) },
        },
      },
      async (req, reply) => {
        const account = await callerAccount(gw, req);
        // Sessions are stored under prepared resourceparts (RFC 7622 §3.4): anything else is refused
        // as it is where a session is named (?resource=, the header, a token's claim).
        const resource = prepareResourcepart(req.params.resource);
        if (resource === null) throw new AppError("invalid-jid", `params.resource: "${req.params.resource}" is not a valid resourcepart`, { field: "params.resource" });
        if (!(await gw.presence.endSession(gw.accounts.ref(account), resource))) throw new AppError("session-not-found", `no session "${req.params.resource}"`);
        return reply.code(204).send(null);
      },
    );
  };
}
