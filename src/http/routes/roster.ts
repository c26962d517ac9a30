// Roster (RFC 6121 §2) and presence subscriptions (§3) over HTTP.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import type { AccountRef } from "../../domain/account.js";
import { RosterItemSchema as Item } from "../../domain/events.js";
import { MAX_PENDING_REQUESTS, MAX_ROSTER_ITEMS } from "../../domain/roster-limits.js";
import type { SubscriptionStanza } from "../../domain/subscription.js";
import { XML_TEXT_PATTERN } from "../../domain/text.js";
import { bodyOptional, callerAccount, freshCallerAccount, type Gateway } from "../context.js";
import { codedBody, GZIP_MIN_BYTES } from "../gzip.js";
import { problemResponses, xmlText } from "../schemas.js";

// Only bounds here: what is a JID (a one-letter domain JID is one) is Roster.contact's to judge, as invalid-jid.
const JidParam = Type.Object({ jid: Type.String({ minLength: 1, maxLength: 3071, description: "The contact's bare JID. To add, subscribe to or approve one whose localpart stringprep folds (RFC 6122: `ß` to `ss`, as Prosody and ejabberd do) is 400 invalid-jid naming their spelling in `jid`" }) });
const ItemFields = Type.Object(
  {
    name: Type.Optional(Type.Union([xmlText(1023), Type.Null()])),
    // RFC 6121 §2.3.3: a zero-length group name is refused, as are duplicates.
    groups: Type.Optional(Type.Array(Type.String({ pattern: XML_TEXT_PATTERN, minLength: 1, maxLength: 1023 }), { maxItems: 64, uniqueItems: true })),
  },
  { additionalProperties: false },
);

const LIMIT = `409 too-many-contacts when that would put the roster over ${MAX_ROSTER_ITEMS.toLocaleString("en")} contacts`;
const actions: [path: string, type: SubscriptionStanza, status: number, summary: string][] = [
  ["subscribe", "subscribe", 202, `Ask for the contact's presence (§3.1); ${LIMIT}`],
  ["approve", "subscribed", 200, `Approve the contact's pending request, or pre-approve one (§3.1.5, §3.4); ${LIMIT}`],
  ["deny", "unsubscribed", 200, "Refuse a pending request or cancel the contact's subscription (§3.2)"],
  ["unsubscribe", "unsubscribe", 200, "Cancel the account's subscription to the contact (§3.3)"],
];

export function rosterRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  /** The caller's account and the contact its path names. */
  async function target(req: FastifyRequest, raw: string, adds = false): Promise<{ account: AccountRef; contact: string }> {
    const account = gw.accounts.ref(await callerAccount(gw, req));
    return { account, contact: gw.roster.contact(account, raw, adds) };
  }

  return async (app) => {
    app.get(
      "/v1/roster",
      {
        schema: {
          tags: ["roster"],
          summary: "The roster, with its version (ETag; If-None-Match gives 304)",
          headers: Type.Object({ "if-none-match": Type.Optional(Type.String({ description: 'The ETag of a roster read before ("<ver>"): 304 while it is still the version' })) }),
          response: {
            200: Type.Object(
              { ver: Type.String(), items: Type.Array(Item) },
              {
                headers: {
                  etag: { type: "string", description: 'The roster\'s version, "<ver>" (RFC 6121 §2.6), whatever the content coding' },
                  "content-encoding": { type: "string", enum: ["gzip"], description: `gzip when the roster's JSON is ${GZIP_MIN_BYTES / 1024} KiB or more and Accept-Encoding takes gzip (fetch and browsers send it); absent otherwise` },
                  vary: { type: "string", description: "accept-encoding, authorization" },
                  "cache-control": { type: "string", description: "no-store: one URL for every account's roster, its version counted per account; a client revalidates with the ETag it kept itself (If-None-Match)" },
                },
              },
            ),
            304: Type.Null({ description: "Not modified: If-None-Match names the current version", headers: { etag: { type: "string", description: 'The roster\'s version, "<ver>"' }, vary: { type: "string", description: "accept-encoding, authorization" }, "cache-control": { type: "string", description: "no-store" } } }),
            ...problemResponses(401, 404),
          },
        },
      },
      async (req, reply) => {
        const a = await callerAccount(gw, req);
        const { etag, json } = await gw.roster.read(a.id, req.headers["if-none-match"]);
        // The body depends on Accept-Encoding (large rosters are gzip-coded for clients that take it)
        // and on the account: every account's roster is at this URL, with versions counted per
        // account, so a browser that switched accounts revalidated one account's cached roster with
        // its ETag under the other's token, got 304, and showed it (the roster API audit of stop 65).
        // Chromium revalidates a cached answer whose Vary does not match too: nothing is stored.
        void reply.header("etag", etag).header("vary", "accept-encoding, authorization").header("cache-control", "no-store");
        // No payload at all: a serialised null would go out as "Content-Length: 4" on a bodiless 304.
        if (json === null) return reply.code(304).send(undefined as never);
        // Already JSON of the response schema's shape, serialised once per roster version: a Buffer
        // payload skips serialization and encoding. The ETag names the version, whatever the coding.
        const { body, gzip } = await codedBody(json, req.headers["accept-encoding"]);
        if (gzip) void reply.header("content-encoding", "gzip");
        return reply.type("application/json; charset=utf-8").send(body as never);
      },
    );

    app.put(
      "/v1/roster/:jid",
      {
        // API.md: `{name?, groups?}`, both optional, so no body at all adds the item as it is.
        preValidation: bodyOptional,
        schema: {
          tags: ["roster"],
          summary: `Add or update a roster item's name and groups (no subscription change); ${LIMIT}`,
          params: JidParam,
          body: ItemFields,
          response: { 200: Item, 201: Item, ...problemResponses(400, 401, 404, 409) },
        },
      },
      async (req, reply) => {
        const { account, contact } = await target(req, req.params.jid, true);
        const { item, created } = await gw.roster.put(account, contact, req.body);
        return reply.code(created ? 201 : 200).send(item);
      },
    );

    app.delete(
      "/v1/roster/:jid",
      {
        schema: {
          tags: ["roster"],
          summary: "Remove a roster item; sends unsubscribe/unsubscribed as RFC 6121 §2.5.2 requires",
          params: JidParam,
          response: { 204: Type.Null(), ...problemResponses(400, 401, 404, 503) },
        },
      },
      async (req, reply) => {
        const { account, contact } = await target(req, req.params.jid);
        await gw.roster.remove(account, contact);
        return reply.code(204).send(null);
      },
    );

    for (const [path, type, status, summary] of actions) {
      app.post(
        `/v1/roster/:jid/${path}`,
        { schema: { tags: ["subscriptions"], summary, params: JidParam, response: { [status]: Item, ...problemResponses(400, 401, 404, ...(type === "unsubscribed" ? [] : [409]), 503) } } },
        async (req, reply) => {
          const { account, contact } = await target(req, req.params.jid, type === "subscribe" || type === "subscribed");
          // XEP-0191 §3.3: subscribe and approve to a blocked JID are 400 blocked, decided inside
          // Roster.act under the account lock (a check here would race a concurrent block).
          return reply.code(status).send(await gw.roster.act(account, contact, type));
        },
      );
    }

    app.get(
      "/v1/subscription-requests",
      {
        schema: {
          tags: ["subscriptions"],
          summary: `Inbound subscription requests waiting for an answer (§3.1.3): at most ${MAX_PENDING_REQUESTS.toLocaleString("en")} from JIDs outside the roster; a stranger's request past that is answered with a resource-constraint error (type wait) and not kept`,
          response: {
            200: Type.Object({ items: Type.Array(Type.Object({ jid: Type.String(), status: Type.Optional(Type.String()), receivedAt: Type.String({ format: "date-time" }) })) }),
            ...problemResponses(401, 404),
          },
        },
      },
      async (req) => ({ items: await gw.roster.pending((await freshCallerAccount(gw, req)).id) }),
    );
  };
}
