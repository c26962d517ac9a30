// Admin routes: accounts and token minting.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { prepareLocalpart } from "../../domain/jid.js";
import { TOKEN_TTL_MAX_SECONDS } from "../auth.js";
import { adminOnly, sessionResourcepart, type Gateway } from "../context.js";
import { AccountView, Localpart, PageQuery, problemResponses, pageLimit } from "../schemas.js";

/**
 * A localpart as such, prepared per RFC 7622 §3.3: these routes name the account by its localpart
 * (API.md), and §3.3.1 forbids "@" in one, so a bare JID is refused here (token `sub` and
 * POST /v1/tokens `account` take one, through gw.accounts.localpart).
 */
function strictLocalpart(raw: string, field: string): string {
  const lp = prepareLocalpart(raw);
  if (lp === null) throw new AppError("invalid-jid", `${field}: "${raw}" is not a valid localpart (RFC 7622 §3.3)`, { field });
  return lp;
}

export function accountRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/v1/accounts",
      {
        onRequest: adminOnly,
        schema: {
          tags: ["accounts"],
          summary: "Create an account (admin)",
          body: Type.Object(
            { localpart: Type.String({ maxLength: 3071, description: "Account localpart (RFC 7622 §3.3); one stringprep folds otherwise (RFC 6122: `ß` to `ss`, as Prosody does) is 400 invalid-jid naming its spelling in `localpart`" }) },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ jid: Type.String() }, { headers: { location: { type: "string", description: "/v1/accounts/{localpart}" } } }), ...problemResponses(400, 401, 403, 409) },
        },
      },
      async (req, reply) => {
        const localpart = strictLocalpart(req.body.localpart, "body.localpart");
        // RFC 9110 §15.3.2: a 201 names the resource it created (DELETE /v1/accounts/{localpart});
        // set once it is created, so that a 409 names none.
        const jid = await gw.accounts.create(localpart);
        return reply.code(201).header("location", `/v1/accounts/${encodeURIComponent(localpart)}`).send({ jid });
      },
    );

    app.get(
      "/v1/accounts",
      {
        onRequest: adminOnly,
        schema: {
          tags: ["accounts"],
          summary: "List accounts (admin)",
          querystring: PageQuery,
          response: { 200: Type.Object({ items: Type.Array(AccountView), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400, 401, 403) },
        },
      },
      async (req) => {
        // Account ids are 32-bit: a cursor beyond them is past the last page (not an error).
        const cursor = req.query.cursor ? Math.min(Number(req.query.cursor), 2 ** 31 - 1) : 0;
        return gw.accounts.list(cursor, pageLimit(req.query.limit, 100, 500));
      },
    );

    app.delete(
      "/v1/accounts/:localpart",
      {
        onRequest: adminOnly,
        schema: {
          tags: ["accounts"],
          summary: "Delete an account and all its data (admin)",
          params: Type.Object({ localpart: Localpart }),
          response: { 204: Type.Null(), ...problemResponses(400, 401, 403, 404) },
        },
      },
      async (req, reply) => {
        await gw.accounts.delete(strictLocalpart(req.params.localpart, "params.localpart"));
        return reply.code(204).send(null);
      },
    );

    app.post(
      "/v1/tokens",
      {
        onRequest: adminOnly,
        schema: {
          tags: ["accounts"],
          summary: "Mint a token for an account (admin)",
          body: Type.Object(
            {
              account: Type.String({ maxLength: 3071, description: "Localpart or bare JID" }),
              ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: TOKEN_TTL_MAX_SECONDS, default: 3600 })),
              resource: Type.Optional(Type.String({ minLength: 1, maxLength: 1023, pattern: "^[^\\u0000-\\u001F\\u007F]+$" })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ token: Type.String(), expiresAt: Type.String({ format: "date-time" }) }), ...problemResponses(400, 401, 403, 404, 501) },
        },
      },
      async (req, reply) => {
        const lp = gw.accounts.localpart(req.body.account, "body.account");
        // Prepared as the token's use will prepare it: a resource that could never be used is refused now.
        const resource = req.body.resource === undefined ? undefined : sessionResourcepart(req.body.resource, "body.resource");
        await gw.accounts.mayMint(lp);
        const { token, expiresAt } = gw.auth.sign(lp, req.body.ttlSeconds ?? 3600, { resource });
        return reply.code(201).send({ token, expiresAt: expiresAt.toISOString() });
      },
    );
  };
}
