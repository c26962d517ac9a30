// PUT /v1/presence (the calling session's presence) and GET /v1/presence (contacts' presence),
// RFC 6121 §4.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { LangText } from "../../domain/message.js";
import { MAX_SESSIONS } from "../../domain/session-limits.js";
import { bodyOptional, callerAccount, freshCallerAccount, sessionResource, type Gateway } from "../context.js";
import { langText, problemResponses, SessionHeader } from "../schemas.js";
import { LangTextSchema } from "../../domain/events.js";

const SHOW = Type.Union([Type.Literal("away"), Type.Literal("chat"), Type.Literal("dnd"), Type.Literal("xa")]);
const PresenceBody = Type.Object(
  {
    type: Type.Optional(Type.Union([Type.Literal("available"), Type.Literal("unavailable")], { default: "available" })),
    show: Type.Optional(SHOW),
    status: Type.Optional(langText(1024, "Status text, or texts by language")),
    priority: Type.Optional(Type.Integer({ minimum: -128, maximum: 127 })),
  },
  { additionalProperties: false },
);

export function presenceRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.put(
      "/v1/presence",
      {
        // Every field is optional, so is the body: a PUT with none is available presence.
        preValidation: bodyOptional,
        schema: {
          tags: ["presence"],
          summary: `Set the calling session's presence (session: ?resource=, Balcony-Resource header, token resource claim, or the one generated for the token); 409 too-many-sessions when that would make one more than ${MAX_SESSIONS} available sessions`,
          // Checked as a resourcepart (sessionResource: invalid-jid, as the Balcony-Resource header), not as text.
          querystring: Type.Object({ resource: Type.Optional(Type.String({ maxLength: 1023, description: "The session's resource (RFC 7622 §3.4)" })) }),
          headers: SessionHeader,
          body: PresenceBody,
          response: {
            200: Type.Object(
              { resource: Type.String(), type: Type.String(), show: Type.Union([Type.String(), Type.Null()]), status: Type.Union([LangTextSchema, Type.Null()]), priority: Type.Integer() },
              {
                description:
                  "The session's presence as set and sent. Unavailable presence carries a status only (RFC 6121 §4.5.1): show is null and priority 0 whatever the request said, the status is the request's. Unavailable for a session that does not exist changes nothing and creates no session (the same answer).",
              },
            ),
            ...problemResponses(400, 401, 404, 409),
          },
        },
      },
      async (req) => {
        const a = await callerAccount(gw, req);
        // None named: the session generated for the token, the one its event stream keeps alive.
        const resource = sessionResource(req, req.query.resource);
        const p = {
          type: req.body.type ?? "available",
          show: req.body.show ?? null,
          status: (req.body.status as LangText | undefined) ?? null,
          priority: req.body.priority ?? 0,
        } as const;
        return { resource, ...(await gw.presence.set(gw.accounts.ref(a), resource, p)) };
      },
    );

    app.get(
      "/v1/presence",
      {
        schema: {
          tags: ["presence"],
          summary: "Latest presence of each contact the account is subscribed to",
          response: {
            200: Type.Object({
              items: Type.Array(
                Type.Object({
                  jid: Type.String(),
                  resources: Type.Array(
                    Type.Object({ resource: Type.String({ description: "The contact's resource; \"\" for presence from her bare JID (its presence event says null)" }), show: Type.Union([Type.String(), Type.Null()]), status: Type.Union([LangTextSchema, Type.Null()]), priority: Type.Integer(), updatedAt: Type.String({ format: "date-time" }) }),
                  ),
                }),
              ),
            }),
            ...problemResponses(401, 404),
          },
        },
      },
      async (req) => ({ items: await gw.presence.contacts((await freshCallerAccount(gw, req)).id) }),
    );
  };
}
