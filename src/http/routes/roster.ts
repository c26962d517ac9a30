// Roster (RFC 6121 §2) and presence subscriptions (§3) over HTTP.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { AppError } from "../../domain/errors.js";
import { jidToString, parseJid } from "../../domain/jid.js";
import type { SubscriptionStanza } from "../../domain/subscription.js";
import { appendEvents } from "../../db/events.js";
import { bumpRosterVersion, getItem, lockAccount, pendingRequests, rosterDocument, rosterVersion, saveItem } from "../../db/roster.js";
import { applySubscription, itemView, rosterEvent, type AccountRef } from "../../services/roster.js";
import { bareJid, callerAccount, type Gateway } from "../context.js";
import { problemResponses, xmlText } from "../schemas.js";

const Item = Type.Object({
  jid: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  groups: Type.Array(Type.String()),
  subscription: Type.Union([Type.Literal("none"), Type.Literal("to"), Type.Literal("from"), Type.Literal("both")]),
  ask: Type.Union([Type.Literal("subscribe"), Type.Null()]),
  approved: Type.Boolean(),
});
const JidParam = Type.Object({ jid: Type.String({ minLength: 3, maxLength: 3071, description: "The contact's bare JID" }) });

export function rosterRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  async function target(req: Parameters<typeof callerAccount>[1], raw: string): Promise<{ account: AccountRef; contact: string }> {
    const a = await callerAccount(gw, req);
    const j = parseJid(raw);
    if (!j || j.resource) throw new AppError("invalid-jid", `"${raw}" is not a bare JID (RFC 7622)`, { field: "params.jid" });
    const contact = jidToString(j);
    const account = { id: a.id, jid: bareJid(gw, a.localpart) };
    if (contact === account.jid) throw new AppError("invalid-jid", "an account cannot be its own contact", { field: "params.jid" });
    return { account, contact };
  }

  /** An action that sends subscription stanzas needs the link: refuse rather than lose them. */
  function needLink(): void {
    if (!gw.link.online) throw new AppError("xmpp-unavailable", "the XMPP link is down; retry shortly");
  }

  async function act(account: AccountRef, contact: string, type: SubscriptionStanza) {
    const r = await gw.db.prisma.$transaction((tx) => applySubscription(tx, account, contact, { kind: "outbound", type }));
    if (r.stanzas.length) gw.link.write(r.stanzas.map((s) => s.toString()));
    return itemView(contact, r.item);
  }

  return async (app) => {
    app.get(
      "/v1/roster",
      {
        schema: {
          tags: ["roster"],
          summary: "The roster, with its version (ETag; If-None-Match gives 304)",
          response: { 200: Type.Object({ ver: Type.String(), items: Type.Array(Item) }), 304: Type.Null(), ...problemResponses(401, 404) },
        },
      },
      async (req, reply) => {
        const a = await callerAccount(gw, req);
        // The version alone decides a 304: no need to read the items.
        const inm = req.headers["if-none-match"];
        const current = `"${await rosterVersion(gw.db.prisma, a.id)}"`;
        if (inm && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === current)) return reply.code(304).header("etag", current).send(null);
        const doc = await rosterDocument(gw.db.prisma, a.id);
        // Already JSON of the response schema's shape: a string payload skips serialization.
        return reply.header("etag", `"${doc.ver}"`).type("application/json").send(doc.json as never);
      },
    );

    app.put(
      "/v1/roster/:jid",
      {
        schema: {
          tags: ["roster"],
          summary: "Add or update a roster item's name and groups (no subscription change)",
          params: JidParam,
          body: Type.Object(
            {
              name: Type.Optional(Type.Union([xmlText(1023), Type.Null()])),
              groups: Type.Optional(Type.Array(xmlText(1023), { maxItems: 64, uniqueItems: true })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Item, 201: Item, ...problemResponses(400, 401, 404) },
        },
      },
      async (req, reply) => {
        const { account, contact } = await target(req, req.params.jid);
        const { item, created } = await gw.db.prisma.$transaction(async (tx) => {
          await lockAccount(tx, account.id);
          const before = await getItem(tx, account.id, contact);
          const state = { subscription: before?.subscription ?? "none", askOut: before?.askOut ?? false, pendingIn: before?.pendingIn ?? false, approved: before?.approved ?? false, inRoster: true } as const;
          const ver = await bumpRosterVersion(tx, account.id);
          const row = await saveItem(tx, account.id, contact, state, { name: req.body.name, groups: req.body.groups, ver });
          await appendEvents(tx, [rosterEvent(account, contact, row, ver)]);
          return { item: row, created: !before?.inRoster };
        });
        return reply.code(created ? 201 : 200).send(itemView(contact, item));
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
        needLink();
        const r = await gw.db.prisma.$transaction((tx) => applySubscription(tx, account, contact, { kind: "remove" }));
        if (r.ignored) throw new AppError("not-found", `${contact} is not in the roster`);
        if (r.stanzas.length) gw.link.write(r.stanzas.map((s) => s.toString()));
        return reply.code(204).send(null);
      },
    );

    const actions: [string, SubscriptionStanza, number, string][] = [
      ["subscribe", "subscribe", 202, "Ask for the contact's presence (§3.1)"],
      ["approve", "subscribed", 200, "Approve the contact's pending request, or pre-approve one (§3.1.5, §3.4)"],
      ["deny", "unsubscribed", 200, "Refuse a pending request or cancel the contact's subscription (§3.2)"],
      ["unsubscribe", "unsubscribe", 200, "Cancel the account's subscription to the contact (§3.3)"],
    ];
    for (const [path, type, status, summary] of actions) {
      app.post(
        `/v1/roster/:jid/${path}`,
        { schema: { tags: ["subscriptions"], summary, params: JidParam, response: { [status]: Item, ...problemResponses(400, 401, 404, 503) } } },
        async (req, reply) => {
          const { account, contact } = await target(req, req.params.jid);
          needLink();
          return reply.code(status).send(await act(account, contact, type));
        },
      );
    }

    app.get(
      "/v1/subscription-requests",
      {
        schema: {
          tags: ["subscriptions"],
          summary: "Inbound subscription requests waiting for an answer (§3.1.3)",
          response: {
            200: Type.Object({ items: Type.Array(Type.Object({ jid: Type.String(), status: Type.Optional(Type.String()), receivedAt: Type.String({ format: "date-time" }) })) }),
            ...problemResponses(401, 404),
          },
        },
      },
      async (req) => {
        const a = await callerAccount(gw, req);
        const rows = await pendingRequests(gw.db.prisma, a.id);
        return { items: rows.map((r) => ({ jid: r.jid, ...(r.pendingStatus ? { status: r.pendingStatus } : {}), receivedAt: (r.pendingInAt ?? new Date(0)).toISOString() })) };
      },
    );
  };
}
