// Stream tickets (services/stream-tickets.ts): rows keyed by the ticket's SHA-256, so what is
// stored cannot open a stream.
import { sql, type AnyTx } from "./client.js";

export interface TicketRow {
  localpart: string;
  resource: string | null;
  expiresAt: Date;
  /** The minting token's expiry; null on tickets minted before it was stored. */
  tokenExpiresAt: Date | null;
}

export async function insertTicket(tx: AnyTx, hash: string, accountId: number, resource: string | null, expiresAt: Date, tokenExpiresAt: Date): Promise<void> {
  await sql(tx, `INSERT INTO stream_ticket (hash, account_id, resource, expires_at, token_expires_at) VALUES ($1, $2, $3, $4, $5)`, [
    hash,
    accountId,
    resource,
    expiresAt,
    tokenExpiresAt,
  ]);
}

/** The ticket's account and session, while it has not expired. */
export async function findTicket(tx: AnyTx, hash: string): Promise<TicketRow | null> {
  const rows = await sql<TicketRow>(
    tx,
    `SELECT a.localpart, t.resource, t.expires_at AS "expiresAt", t.token_expires_at AS "tokenExpiresAt" FROM stream_ticket t JOIN account a ON a.id = t.account_id
      WHERE t.hash = $1 AND t.expires_at > now()`,
    [hash],
  );
  return rows[0] ?? null;
}

/** Drops expired tickets (the gateway's periodic maintenance; an expired one is refused anyway). */
export async function purgeExpiredTickets(tx: AnyTx): Promise<void> {
  await sql(tx, "DELETE FROM stream_ticket WHERE expires_at < now()", []);
}
