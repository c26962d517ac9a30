// What every route gets: the use cases, the caller's identity and the HTTP-side parts.
import { createHash } from "node:crypto";
import type { Conversations } from "../services/conversations.js";
import type { MessageActions } from "../services/message-actions.js";
import type { Blocking } from "../services/blocking.js";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import type { Config } from "../config.js";
import type { Account } from "../domain/account.js";
import { AppError, type ErrorCode } from "../domain/errors.js";
import { prepareResourcepart } from "../domain/jid.js";
import { ROOM_RESOURCE } from "../domain/muc.js";
import { assertSpeltAlike, resourceprepFolded } from "../domain/stringprep-fold.js";
import type { Accounts } from "../services/accounts.js";
import { isAccountGone } from "../services/errors.js";
import type { EventFeed } from "../services/events.js";
import type { Messaging } from "../services/messaging.js";
import type { Presence } from "../services/presence.js";
import type { Roster } from "../services/roster.js";
import type { Status } from "../services/status.js";
import type { Webhooks } from "../services/webhooks.js";
import type { Rooms } from "../services/rooms.js";
import type { StreamTickets } from "../services/stream-tickets.js";
import type { Auth, Principal } from "./auth.js";
import { eventsView } from "./event-views.js";
import type { Metrics } from "./metrics.js";

export interface Gateway {
  config: Config;
  accounts: Accounts;
  messaging: Messaging;
  roster: Roster;
  blocking: Blocking;
  messageActions: MessageActions;
  conversations: Conversations;
  presence: Presence;
  events: EventFeed;
  status: Status;
  webhooks: Webhooks;
  rooms: Rooms;
  auth: Auth;
  tickets: StreamTickets;
  metrics: Metrics;
  /** Aborted when the gateway begins to shut down: open streams end, telling clients when to retry. */
  shutdown: AbortSignal;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    /** The account id callerAccount took from this instance's cache; null when none (or read from the database). */
    cachedCaller: number | null;
    /** The handler runs again after its cached account id proved stale: callerAccount reads the database. */
    freshCaller: boolean;
  }
}

/**
 * Whether a request is for the authenticated API. Decided on the matched route, not the raw URL:
 * Fastify decodes the path before matching, so "/%761/sessions" is the /v1/sessions route.
 */
export function isApiRequest(req: FastifyRequest): boolean {
  return (req.routeOptions.url ?? req.url).startsWith("/v1/");
}

/**
 * Who is calling: the bearer token, or, for the event stream only and without a token, a stream
 * ticket (POST /v1/events/tickets). A ticket never carries the admin scope. The stream is
 * GET /v1/events' SSE view: the JSON view of the same route is no stream, and there a ticket is
 * no credential, as on any other route (API.md: a ticket opens event streams and nothing else).
 */
export async function authenticate(gw: Gateway, req: FastifyRequest): Promise<Principal> {
  const ticket = (req.query as { ticket?: unknown } | undefined)?.ticket;
  if (typeof ticket === "string" && req.headers.authorization === undefined && req.routeOptions.url === "/v1/events") {
    if (eventsView(req.headers.accept) !== "sse") throw new AppError("unauthorized", "a stream ticket opens only the event stream (Accept: text/event-stream); the JSON view needs an Authorization: Bearer token");
    const holder = await gw.tickets.holder(ticket);
    // Its streams end when the token it was minted with expires, not when the ticket does.
    return { localpart: holder.localpart, admin: false, resource: holder.resource, exp: holder.tokenExpiresAt, nbf: 0, iat: null };
  }
  return gw.auth.verify(req.headers.authorization);
}

/** Route-level hook for admin routes: the scope is checked before the body is even validated. */
export async function adminOnly(req: FastifyRequest): Promise<void> {
  if (!principal(req).admin) throw new AppError("forbidden", "this route needs the admin scope");
}

export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError("unauthorized", "an Authorization: Bearer token is required");
  return req.principal;
}

/**
 * The caller's own account (created on first use when AUTO_PROVISION is on), from this instance's
 * cache: for a route whose every success needs the account row as the id names it (a foreign key,
 * lockLiveAccount, an EXISTS or a join on the account). Another instance may have deleted the
 * account, or deleted and created it again under a new id, before this one reads its NOTIFY: the
 * request then fails, and runs again once with the account read from the database (retryStaleCaller).
 */
export async function callerAccount(gw: Gateway, req: FastifyRequest): Promise<Account> {
  const { localpart, iat } = principal(req);
  const account = await gw.accounts.caller(localpart, iat, req.freshCaller);
  req.cachedCaller = req.freshCaller ? null : account.id;
  return account;
}

/**
 * The caller's own account as the database has it now: for a route that would answer a stale id
 * with a success (an empty list: the old account's rows went with it) rather than notice it.
 */
export function freshCallerAccount(gw: Gateway, req: FastifyRequest): Promise<Account> {
  const { localpart, iat } = principal(req);
  return gw.accounts.caller(localpart, iat, true);
}

/** Refusals about the request itself, whatever the account's state: no reason to look the account up again. */
const REQUEST_FAULTS = new Set<ErrorCode>(["validation-failed", "invalid-jid"]);

/**
 * onRoute: a /v1 handler that failed (a refusal or 404, or a foreign key finding the account gone)
 * with a cached account id that is no longer the account's (src/db/accounts.ts read) runs again
 * once, with the account read from the database: the request is answered as for the account as it
 * is now (404, the one created again, or one AUTO_PROVISION creates). The check costs one read,
 * on failures only, and the run again reads the account once more. A failed first run wrote nothing: under an id that is gone every write fails
 * its foreign key or lockLiveAccount, and the routes that use callerAccount check before other writes.
 */
export function retryStaleCaller(gw: Gateway): (route: RouteOptions) => void {
  const stale = async (req: FastifyRequest, reply: FastifyReply, err: unknown): Promise<boolean> => {
    const id = req.cachedCaller;
    if (id === null || reply.sent || reply.raw.headersSent || !((err instanceof AppError && !REQUEST_FAULTS.has(err.code)) || isAccountGone(err))) return false;
    return (await gw.accounts.replaced(principal(req).localpart, id).catch(() => null)) !== null;
  };
  return (route) => {
    if (!route.url.startsWith("/v1/")) return;
    const handler = route.handler;
    route.handler = async function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      try {
        return await handler.call(this, req, reply);
      } catch (err) {
        if (!(await stale(req, reply, err))) throw err;
        req.freshCaller = true;
        return handler.call(this, req, reply);
      }
    };
  };
}

/**
 * The session a request names: ?resource=, the Balcony-Resource header, or the token's
 * `resource` claim, prepared per RFC 7622 §3.4 (it becomes part of stanza addresses, and the XMPP
 * server drops a component that sends an invalid one). Null when none is named.
 */
export function requestedResource(req: FastifyRequest, fromQuery?: string): string | null {
  const header = req.headers["balcony-resource"];
  const [raw, field] = fromQuery !== undefined ? [fromQuery, "querystring.resource"] : typeof header === "string" && header !== "" ? [headerText(header), "headers.balcony-resource"] : [null, ""];
  if (raw === null) return principal(req).resource;
  return sessionResourcepart(raw, field);
}

/**
 * A Balcony-Resource header's resource: percent-decoded (UTF-8), as a stream's response encodes it
 * (a header carries Latin-1 at most, a resourcepart any Unicode), so the value a stream sends back
 * names its session again. One that is no percent-encoding (a lone %) is taken as it was sent.
 */
function headerText(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The caller's session: the one the request names (requestedResource), else one the gateway
 * generates for the credential (API.md Model: "otherwise the gateway generates one"). Derived from
 * the bearer token, so a client that names none has one session across its stream, its presence,
 * its tickets and its polls: a random one per request would leave its presence in a session that
 * no stream keeps alive. A short hash, not the token: the resource is seen by every contact.
 */
export function sessionResource(req: FastifyRequest, fromQuery?: string): string {
  const named = requestedResource(req, fromQuery);
  if (named !== null) return named;
  // A ticket names its session when minted (from this function); only one minted without any
  // falls back to the ticket itself.
  const ticket = (req.query as { ticket?: unknown } | undefined)?.ticket;
  const credential = req.headers.authorization ?? (typeof ticket === "string" ? ticket : "");
  const token = credential.replace(/^Bearer +/i, "");
  return `balcony-${createHash("sha256").update("balcony-session\u0000").update(token).digest("hex").slice(0, 16)}`;
}

/**
 * preValidation of a route whose body fields are all optional: no body at all (or an empty one,
 * src/http/app.ts) is an empty object. (Fastify validates a missing body as null, which no object
 * schema takes.) A JSON `null` sent as the body is a value, not an object: 400, as on every route.
 */
export async function bodyOptional(req: FastifyRequest): Promise<void> {
  if (req.body === undefined) req.body = {};
}

/** A session's resourcepart from the request (resourcepart, prepared once), not the rooms' own (src/domain/muc.ts prepareSessionResource). */
export function sessionResourcepart(raw: string, field: string): string {
  const resource = resourcepart(raw, field);
  if (resource === ROOM_RESOURCE) throw new AppError("invalid-jid", `${field}: "${resource}" is the resource the account's room occupancy uses; name the session otherwise`, { field });
  assertSpeltAlike(resource, resourceprepFolded(resource), field, "resource", "what is sent to this session would not reach it");
  return resource;
}

/** A resourcepart from the request, prepared per RFC 7622 §3.4; 400 naming `field` when it is not one. */
export function resourcepart(raw: string, field: string): string {
  const resource = prepareResourcepart(raw);
  if (resource === null) throw new AppError("invalid-jid", `${field} is not a valid resourcepart (RFC 7622 §3.4)`, { field });
  return resource;
}
