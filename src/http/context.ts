// What every route gets: the gateway's parts, and the caller's identity and account.
import type { FastifyRequest } from "fastify";
import type { Config } from "../config.js";
import type { Accounts, AccountRow } from "../db/accounts.js";
import type { Database } from "../db/client.js";
import type { EventNotifier } from "../db/events.js";
import type { Messages } from "../db/messages.js";
import type { Sessions } from "../db/sessions.js";
import { AppError } from "../domain/errors.js";
import { prepareResourcepart } from "../domain/jid.js";
import type { Messaging } from "../services/messaging.js";
import type { Presence } from "../services/presence.js";
import type { XmppLink } from "../xmpp/link.js";
import type { Auth, Principal } from "./auth.js";
import type { StreamSlots } from "./limits.js";
import type { Metrics } from "./metrics.js";

export interface Gateway {
  config: Config;
  db: Database;
  accounts: Accounts;
  messages: Messages;
  sessions: Sessions;
  messaging: Messaging;
  presence: Presence;
  notifier: EventNotifier;
  link: XmppLink;
  auth: Auth;
  metrics: Metrics;
  streamSlots: StreamSlots;
  /** Aborted when the gateway begins to shut down: open streams end, telling clients when to retry. */
  shutdown: AbortSignal;
  /** Deletes an account and its data, after telling its contacts (RFC 6121 §2.5.2). */
  deleteAccount(localpart: string): Promise<boolean>;
  /** Ends one session of an account (DELETE /v1/sessions/{resource}). */
  endSession(accountId: number, resource: string): Promise<boolean>;
  /** Sends XEP-0184 receipts for events a stream has written. */
  answerReceipts(accountId: number, localpart: string, seqs: number[]): Promise<void>;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Whether a request is for the authenticated API. Decided on the matched route, not the raw URL:
 * Fastify decodes the path before matching, so "/%761/sessions" is the /v1/sessions route.
 */
export function isApiRequest(req: FastifyRequest): boolean {
  return (req.routeOptions.url ?? req.url).startsWith("/v1/");
}

/** Route-level hook for admin routes: the scope is checked before the body is even validated. */
export async function adminOnly(req: FastifyRequest): Promise<void> {
  requireAdmin(req);
}

export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError("unauthorized", "an Authorization: Bearer token is required");
  return req.principal;
}

export function requireAdmin(req: FastifyRequest): Principal {
  const p = principal(req);
  if (!p.admin) throw new AppError("forbidden", "this route needs the admin scope");
  return p;
}

/** The caller's own account; created on first use when AUTO_PROVISION is on. */
export async function callerAccount(gw: Gateway, req: FastifyRequest): Promise<AccountRow> {
  const p = principal(req);
  const found = await gw.accounts.find(p.localpart);
  if (found) return found;
  if (gw.config.autoProvision) return gw.accounts.ensure(p.localpart);
  throw new AppError("account-not-found", `no account "${p.localpart}" on this gateway`);
}

/**
 * The session a request names: ?resource=, the Balcony-Resource header, or the token's
 * `resource` claim, prepared per RFC 7622 §3.4 (it becomes part of stanza addresses, and the XMPP
 * server drops a component that sends an invalid one). Null when none is named.
 */
export function requestedResource(req: FastifyRequest, fromQuery?: string): string | null {
  const header = req.headers["balcony-resource"];
  const [raw, field] = fromQuery !== undefined ? [fromQuery, "querystring.resource"] : typeof header === "string" && header !== "" ? [header, "headers.balcony-resource"] : [null, ""];
  if (raw === null) return principal(req).resource;
  const resource = prepareResourcepart(raw);
  if (resource === null) throw new AppError("invalid-jid", `${field} is not a valid resourcepart (RFC 7622 §3.4)`, { field });
  return resource;
}

export function bareJid(gw: Gateway, localpart: string): string {
  return `${localpart}@${gw.config.xmpp.domain}`;
}
