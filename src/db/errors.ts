// The one classifier for "the database is down or too busy to answer now" (connection refused or
// lost, Postgres shutting down, pool or transaction timeouts), used by both adapters: HTTP
// answers 503 (retry later), XMPP bounces with a wait error.
const CODES = new Set(["ECONNREFUSED", "ECONNRESET", "57P01", "57P03", "P1001", "P1017", "P2024", "P2028", "08006", "08001"]);
const MESSAGES = /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Can't reach database/i;

export function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown };
  if (!e || typeof e !== "object") return false;
  if (CODES.has(e.code ?? "")) return true;
  if (MESSAGES.test(e.message ?? "")) return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseDown(e.cause);
}
