// Stream tickets: EventSource (the browser's SSE client) cannot send an Authorization header, so a
// browser trades its bearer token for a short-lived ticket (POST /v1/events/tickets) and opens
// GET /v1/events?ticket=... with it. A ticket opens event streams and nothing else, of the token's
// account and session, until it expires; it never outlives the token it was minted with. It stays
// valid for its whole lifetime, so EventSource's own reconnects (same URL, Last-Event-ID) work;
// after that the page mints another. Its streams end when the token expires, as the token's own do. Kept in Postgres: any instance accepts a ticket.
import { createHash, randomBytes } from "node:crypto";
import type { Database } from "../db/client.js";
import { findTicket, insertTicket, purgeExpiredTickets } from "../db/stream-tickets.js";
import type { Account } from "../domain/account.js";
import { AppError } from "../domain/errors.js";

export const TICKET_TTL = { default: 60, max: 600 } as const;
const PREFIX = "st_";

export interface TicketHolder {
  localpart: string;
  resource: string | null;
  /** ms since the epoch */
  expiresAt: number;
  /** When the minting token expires (ms since the epoch): the ticket's streams end then. Unknown
   * (Infinity) for a ticket minted before the gateway stored it. */
  tokenExpiresAt: number;
}

const hashOf = (ticket: string) => createHash("sha256").update(ticket).digest("hex");

export class StreamTickets {
  constructor(private readonly db: Database) {}

  /** A new ticket for the account's session; `tokenExp` (ms) caps its lifetime. */
  async mint(account: Account, resource: string | null, ttlSeconds: number, tokenExp: number): Promise<{ ticket: string; expiresAt: Date }> {
    const ticket = PREFIX + randomBytes(32).toString("base64url");
    const expiresAt = new Date(Math.min(Date.now() + ttlSeconds * 1000, tokenExp));
    await insertTicket(this.db.prisma, hashOf(ticket), account.id, resource, expiresAt, new Date(tokenExp));
    return { ticket, expiresAt };
  }

  /** Maintenance: forgets expired tickets. */
  purgeExpired(): Promise<void> {
    return purgeExpiredTickets(this.db.prisma);
  }

  /** Who a ticket stands for; 401 when it is unknown or expired. */
  async holder(ticket: string): Promise<TicketHolder> {
    const row = ticket.startsWith(PREFIX) ? await findTicket(this.db.prisma, hashOf(ticket)) : null;
    if (!row) throw new AppError("unauthorized", "stream ticket unknown or expired: mint a new one with POST /v1/events/tickets");
    return { localpart: row.localpart, resource: row.resource, expiresAt: row.expiresAt.getTime(), tokenExpiresAt: row.tokenExpiresAt?.getTime() ?? Infinity };
  }
}
