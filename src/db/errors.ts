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

/** An error as pg or Prisma raise it; Prisma wraps the driver's error in its own (`cause`). */
type DbError = { code?: string; message?: string; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: string; constraint?: unknown } } } };

/** Whether the error is one our own SQL raised (RAISE EXCEPTION 'name', SQLSTATE P0001: a trigger's). */
export const raised = (err: unknown, name: string): boolean => inCauses(err, (e) => e.code === "P0001" && e.message === name);

/** Whether `test` holds for the error or for any error in its chain of causes. */
export function inCauses(err: unknown, test: (e: DbError) => boolean): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 10; e = (e as DbError).cause, depth++) if (test(e as DbError)) return true;
  return false;
}

/** The error's codes: its own (pg's SQLSTATE, Prisma's P-code), and PostgreSQL's SQLSTATE where Prisma's driver adapter keeps it (P2010 and the like). */
const codes = (e: DbError): (string | undefined)[] => [e.code, e.meta?.driverAdapterError?.cause?.originalCode];

export function isDatabaseDown(err: unknown): boolean {
  return inCauses(err, (e) => codes(e).some((c) => CODES.has(c ?? "")) || MESSAGES.test(e.message ?? ""));
}

/**
 * A row written for something a transaction committed meanwhile deleted (SQLSTATE 23503): the
 * statement read it as there, and the foreign key found it gone. `constraint`: only that one's.
 */
export function isForeignKeyViolation(err: unknown, constraint?: RegExp): boolean {
  return inCauses(err, (e) => {
    const fk = codes(e).includes("23503") || /violates foreign key constraint/i.test(e.message ?? "");
    return fk && (!constraint || constraint.test(`${e.message ?? ""} ${JSON.stringify(e.meta?.driverAdapterError?.cause?.constraint ?? "")}`));
  });
}

/** A write for an account deleted while the request ran: a row referencing it by account_id, or events appended for it (AccountVanished). */
export function isAccountGone(err: unknown): boolean {
  return isForeignKeyViolation(err, /account_id_fkey/) || inCauses(err, (e) => e instanceof AccountVanished);
}

/**
 * Events appended for an account whose row the statement did not find (deleted meanwhile, or an
 * id cached before it was deleted elsewhere): nothing was appended for it. An error of its own so
 * a caller can tell it from a fault (src/services/inbound-stale.ts routes the stanzas again).
 */
export class AccountVanished extends Error {
  /** `accountId`: null when the error that told of it did not name it (Prisma keeps no detail). */
  constructor(
    readonly accountId: number | null,
    options?: ErrorOptions,
  ) {
    super(`account ${accountId ?? "(one of the statement's)"} vanished while appending an event`, options);
  }
}

/** Throws AccountVanished for the first of `ids` that `found` says the statement did not find. */
export function throwIfVanished(ids: readonly number[], found: (id: number) => boolean): void {
  const missing = ids.find((id) => !found(id));
  if (missing !== undefined) throw new AccountVanished(missing);
}

/**
 * `err` as AccountVanished when it is the event log's foreign key refusing events for an account
 * (src/db/events.ts planAppend fails its statement so); else `err` itself. The account is the one
 * pg's detail names, or the only one of `ids`.
 */
export function vanishedOr(err: unknown, ids: readonly number[]): unknown {
  if (!isForeignKeyViolation(err, /event_account_id_fkey/)) return err;
  const named = /Key \(account_id\)=\((\d+)\)/.exec(String((err as { detail?: unknown }).detail ?? ""));
  return new AccountVanished(named ? Number(named[1]) : ids.length === 1 ? ids[0]! : null, { cause: err });
}

/** Where a DATABASE_URL points, without its password: user@host:port/database. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username ? `${decodeURIComponent(u.username)}@` : ""}${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "(unparsable DATABASE_URL)";
  }
}

/**
 * The first connection to PostgreSQL failed, whatever the cause: refused, reset, timed out, TLS
 * the server lacks, authentication. What a start or a command reports in one line (src/serve.ts,
 * src/cli/common.ts), not as a stack (the ops audit of stop 65).
 */
export class DatabaseUnreachable extends Error {
  constructor(where: string, cause: unknown) {
    const e = cause as { message?: unknown; code?: unknown };
    super(`cannot reach PostgreSQL at ${where}: ${typeof e?.message === "string" && e.message ? e.message : String(e?.code ?? cause)}`, { cause });
    this.name = "DatabaseUnreachable";
  }
}

/** A migration this version ships differs from the one the database applied under its name. */
export class MigrationChanged extends Error {
  constructor(readonly migration: string) {
    super(`migration ${migration} was changed after it was applied: this database was migrated by another build of Balcony`);
    this.name = "MigrationChanged";
  }
}

/** Errors a failed start or command says in one line: the rest print their stack. */
export const sayInOneLine = (err: unknown): boolean => err instanceof DatabaseUnreachable || err instanceof MigrationChanged;
