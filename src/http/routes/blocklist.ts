// Blocking routes (API.md "Blocking (1.1, XEP-0191)"): the calling account's blocklist.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { MAX_BLOCKS } from "../../domain/blocking.js";
import { callerAccount, freshCallerAccount, type Gateway } from "../context.js";
import { problemResponses } from "../schemas.js";

const tags = ["blocking"];
const JidParam = Type.Object({
  jid: Type.String({ minLength: 1, maxLength: 3071, description: "user@domain/resource, user@domain, domain/resource or domain (XEP-0191 §3 matching). To block one whose localpart stringprep folds (RFC 6122: `ß` to `ss`, as Prosody and ejabberd do) is 400 invalid-jid naming their spelling in `jid`" }),
});

export function blocklistRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/v1/blocklist",
      {
        schema: {
          tags,
          summary: `The JIDs the account blocked, sorted (at most ${MAX_BLOCKS})`,
          response: { 200: Type.Object({ items: Type.Array(Type.String()) }), ...problemResponses(401, 404) },
        },
      },
      async (req) => ({ items: await gw.blocking.list((await freshCallerAccount(gw, req)).id) }),
    );

    app.put(
      "/v1/blocklist/:jid",
      {
        schema: {
          tags,
          summary: "Block a JID: nothing from it reaches the account, nothing goes to it, and it gets the account's unavailable presence",
          params: JidParam,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 409, 503) },
        },
      },
      async (req, reply) => {
        await gw.blocking.block(gw.accounts.ref(await callerAccount(gw, req)), req.params.jid);
        return reply.code(204).send(null);
      },
    );

    app.delete(
      "/v1/blocklist/:jid",
      {
        schema: {
          tags,
          summary: "Unblock a JID (idempotent: 204 also if it was not blocked); subscribed contacts it covered get the account's presence again",
          params: JidParam,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 503) },
        },
      },
      async (req, reply) => {
        await gw.blocking.unblock(gw.accounts.ref(await callerAccount(gw, req)), req.params.jid);
        return reply.code(204).send(null);
      },
    );
  };
}
