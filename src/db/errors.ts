// The one classifier for "the database is down or too busy to answer now" (connection refused or
// lost, Postgres shutting down or out of connection slots, the database closed to connections,
// pool or transaction timeouts), used by both adapters: HTTP answers 503 (retry later), XMPP
// bounces with a wait error. SQLSTATE 08000, 08001, 08003, 08004, 08006 (connection exceptions),
// 53300/53400 (no slot), 57P01-57P03 (shutting down, crashed, starting); Prisma's P1001, P1017,
// P2024, P2028, P2037 (unreachable, closed, pool and transaction timeouts, too many connections).
const CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "53400",
  "P1001",
  "P1017",
  "P2024",
  "P2028",
  "P2037",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);
// 55000 ("object not in prerequisite state") is a refused connection only with this message:
// ALTER DATABASE … ALLOW_CONNECTIONS false, as an operator closes a database for maintenance.
const MESSAGES = /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Can't reach database|is not currently accepting connections/i;

export function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } };
  if (!e || typeof e !== "object") return false;
  if (CODES.has(e.code ?? "")) return true;
  // Prisma's driver adapter (P2010 and the like) keeps PostgreSQL's SQLSTATE here, not in `code`.
  if (CODES.has(e.meta?.driverAdapterError?.cause?.originalCode ?? "")) return true;
  if (MESSAGES.test(e.message ?? "")) return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseDown(e.cause);
}

type PgError = { code?: string; message?: string; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: string; constraint?: unknown } } } };

/**
 * A row written for something a transaction committed meanwhile deleted (SQLSTATE 23503): the
 * statement read it as there, and the foreign key found it gone. `constraint`: only that one's.
 */
export function isForeignKeyViolation(err: unknown, constraint?: RegExp): boolean {
  const e = err as PgError;
  if (!e || typeof e !== "object") return false;
  const fk = e.code === "23503" || e.meta?.driverAdapterError?.cause?.originalCode === "23503" || /violates foreign key constraint/i.test(e.message ?? "");
  if (fk && (!constraint || constraint.test(`${e.message ?? ""} ${JSON.stringify(e.meta?.driverAdapterError?.cause?.constraint ?? "")}`))) return true;
  return e.cause !== undefined && e.cause !== err && isForeignKeyViolation(e.cause, constraint);
}

/** A write for an account deleted while the request ran (a row referencing it by account_id). */
export function isAccountGone(err: unknown): boolean {
  return isForeignKeyViolation(err, /account_id_fkey/);
}
