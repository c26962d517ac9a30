// Webhook routes (API.md "Webhooks (1.1)"): an account manages its own endpoints (and may name
// itself as `account`); an admin manages any, and may create one for another account or for every
// account ("*").
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { AppError } from "../../domain/errors.js";
import { accountLocalpart } from "../../domain/jid.js";
import type { WebhookScope } from "../../services/webhooks.js";
import { freshCallerAccount, principal, type Gateway } from "../context.js";
import { pageLimit, problemResponses } from "../schemas.js";
import { WebhookViewSchema, type DeliveryStatus } from "../../domain/webhooks.js";
import * as S from "../webhook-schemas.js";

const tags = ["webhooks"];

export function webhookRoutes(gw: Gateway): FastifyPluginAsyncTypebox {
  /**
   * Who may manage what: an admin every endpoint, an account its own. The account as the database
   * has it (src/http/context.ts freshCallerAccount): a list under an id gone stale would be empty.
   */
  const scope = async (req: FastifyRequest): Promise<WebhookScope> => (principal(req).admin ? { admin: true } : { admin: false, accountId: (await freshCallerAccount(gw, req)).id });

  /** An account named in a request, which must exist; "*" (when allowed) is null: every account. */
  const named = async (raw: string, field: string, star: boolean): Promise<number | null> => {
    if (star && raw === "*") return null;
    const account = await gw.accounts.read(gw.accounts.localpart(raw, field));
    if (!account) throw new AppError("account-not-found", `${field}: no account "${raw}"`, { field });
    return account.id;
  };

  /** A caller's own account; naming it in `body.account` is allowed, naming another (or "*") needs the admin scope. */
  const own = async (req: FastifyRequest, raw: string | undefined): Promise<number> => {
    const caller = principal(req).localpart;
    if (raw !== undefined && (raw === "*" || accountLocalpart(raw, gw.accounts.domain) !== caller)) {
      throw new AppError("forbidden", "body.account needs the admin scope to name another account (an account's webhooks are for its own events)", { field: "body.account" });
    }
    return (await freshCallerAccount(gw, req)).id;
  };

  return async (app) => {
    app.post(
      "/v1/webhooks",
      { schema: { tags, summary: "Create a webhook endpoint", body: S.CreateWebhook, response: { 201: { ...S.CreatedWebhook, headers: { location: { type: "string", description: "/v1/webhooks/{id}" } } }, ...problemResponses(400, 401, 403, 404, 409) } } },
      async (req, reply) => {
        // The type provider reads the event-type enum as unknown; Ajv has checked each one.
        const { account, events, ...rest } = req.body;
        const input = { ...rest, ...(events ? { events: events as string[] } : {}) };
        const accountId = account !== undefined && principal(req).admin ? await named(account, "body.account", true) : await own(req, account);
        const created = await gw.webhooks.create(accountId, input);
        // RFC 9110 §15.3.2: a 201 names the resource it created.
        return reply.code(201).header("location", `/v1/webhooks/${created.id}`).send(created);
      },
    );

    app.get(
      "/v1/webhooks",
      { schema: { tags, summary: "List webhook endpoints (an admin sees all)", querystring: S.WebhookListQuery, response: { 200: S.WebhookList, ...problemResponses(400, 401, 403, 404) } } },
      async (req) => {
        const s = await scope(req);
        if (req.query.account !== undefined && !s.admin) throw new AppError("forbidden", "querystring.account needs the admin scope", { field: "querystring.account" });
        const account = req.query.account !== undefined ? await named(req.query.account, "querystring.account", false) : null;
        return gw.webhooks.list(s, account, req.query.cursor ?? null, pageLimit(req.query.limit, 100, 500));
      },
    );

    app.get(
      "/v1/webhooks/:id",
      { schema: { tags, summary: "A webhook endpoint", params: S.WebhookId, response: { 200: WebhookViewSchema, ...problemResponses(400, 401, 404) } } },
      async (req) => gw.webhooks.view(await gw.webhooks.get(await scope(req), req.params.id)),
    );

    app.patch(
      "/v1/webhooks/:id",
      { schema: { tags, summary: "Change a webhook endpoint", params: S.WebhookId, body: S.PatchWebhook, response: { 200: WebhookViewSchema, ...problemResponses(400, 401, 404) } } },
      async (req) => {
        const { status, events, ...change } = req.body;
        const typed = events === undefined ? {} : { events: events as string[] | null };
        return gw.webhooks.update(await scope(req), req.params.id, { ...change, ...typed, ...(status ? { enabled: status === "enabled" } : {}) });
      },
    );

    app.delete(
      "/v1/webhooks/:id",
      { schema: { tags, summary: "Delete a webhook endpoint: no delivery starts after this", params: S.WebhookId, response: { 204: Type.Null(), ...problemResponses(400, 401, 404) } } },
      async (req, reply) => {
        await gw.webhooks.delete(await scope(req), req.params.id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      "/v1/webhooks/:id/rotate-secret",
      { schema: { tags, summary: "Replace the signing secret (the old one signs too for 24 h)", params: S.WebhookId, response: { 200: S.Rotated, ...problemResponses(400, 401, 404) } } },
      async (req) => gw.webhooks.rotate(await scope(req), req.params.id),
    );

    app.get(
      "/v1/webhooks/:id/deliveries",
      { schema: { tags, summary: "Deliveries to the endpoint, newest first", description: S.DELIVERIES_DESCRIPTION, params: S.WebhookId, querystring: S.DeliveriesQuery, response: { 200: S.DeliveryList, ...problemResponses(400, 401, 404) } } },
      async (req) => gw.webhooks.deliveries(await scope(req), req.params.id, (req.query.status as DeliveryStatus | undefined) ?? null, req.query.cursor ? Number(req.query.cursor) : null, pageLimit(req.query.limit, 100, 500)),
    );

    app.post(
      "/v1/webhooks/:id/replay",
      { schema: { tags, summary: "Deliver again every event after `since`", params: S.WebhookId, body: S.ReplayBody, response: { 202: S.Replayed, ...problemResponses(400, 401, 403, 404) } } },
      async (req, reply) => {
        const s = await scope(req);
        // Another account's name is the admin's to give, as on create: to anyone else it is 403
        // whether or not that account exists (a 202 or a 404 would tell them which).
        const given = req.body.account;
        const account = given === undefined ? null : s.admin ? await named(given, "body.account", false) : await own(req, given);
        return reply.code(202).send(await gw.webhooks.replay(s, req.params.id, req.body.since, account));
      },
    );
  };
}
