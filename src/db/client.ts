// One pg pool per process, shared by Prisma (through its pg adapter) and by the few hot-path
// statements that need SQL Prisma cannot express (multi-row upserts with RETURNING, LISTEN).
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient, type Prisma } from "./generated/client.js";
import { inCauses } from "./errors.js";

export type Db = PrismaClient;
/** A transaction (or, where a function accepts either, the client itself). */
export type Tx = Prisma.TransactionClient;

/**
 * A transaction on a pooled pg client, for raw SQL only: the hot paths that need no Prisma model
 * (inbound messages) use it, because a Prisma interactive transaction costs ~1.5 ms of CPU against
 * ~0.6 ms for the same statements here.
 */
export interface SqlTx {
  /** `prepare`: the text is one of a fixed few, worth preparing once per connection (see queryConfig()). */
  query<R>(text: string, values: unknown[], prepare?: boolean): Promise<R[]>;
}

const preparedNames = new Map<string, string>();

/**
 * A pg query, with `prepare` as a named (prepared) statement: Postgres parses and plans it once per
 * connection instead of on every call. For the hot path's large statements that is about a third
 * of their time (storeInbound: 1.5 → 1.0 ms a call). Only for texts from a fixed set: each name
 * stays prepared on every connection of the pool.
 */
function queryConfig(text: string, values: unknown[], prepare: boolean): pg.QueryConfig {
  if (!prepare) return { text, values };
  let name = preparedNames.get(text);
  if (!name) preparedNames.set(text, (name = `balcony-${preparedNames.size + 1}`));
  return { name, text, values };
}

/** Either kind of transaction, for the statements both kinds run. */
export type AnyTx = Tx | SqlTx;

/** Runs one statement in either kind of transaction (`prepare`: see SqlTx; Prisma's raw queries never are). */
export function sql<R>(tx: AnyTx, text: string, values: unknown[], prepare = false): Promise<R[]> {
  return "$queryRawUnsafe" in tx ? tx.$queryRawUnsafe<R[]>(text, ...values) : tx.query<R>(text, values, prepare);
}

/** Runs one statement whose result is not needed (Prisma cannot read some, e.g. pg_notify's void). */
export async function exec(tx: AnyTx, text: string, values: unknown[]): Promise<void> {
  if ("$executeRawUnsafe" in tx) await tx.$executeRawUnsafe(text, ...values);
  else await tx.query(text, values);
}

/** The Prisma transaction a statement needs; a raw one here is a bug of the caller. */
export function prismaTx(tx: AnyTx): Tx {
  if (!("$queryRawUnsafe" in tx)) throw new Error("this statement needs a Prisma transaction");
  return tx;
}

export interface Database {
  pool: pg.Pool;
  prisma: PrismaClient;
  /** Runs `fn` in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** The same on a raw pg client (see SqlTx). */
  sqlTransaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
  /** Whether Postgres answers (readiness). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

// BIGINT columns (sequence numbers) come back as strings from pg by default; they stay far
// below 2^53, so numbers are safe and simpler for callers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
// Timestamps are stored without a time zone, in UTC (the pool's sessions run in UTC, as Prisma
// assumes); read them back as UTC whatever the process's own time zone.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMP, (v) => new Date(v.replace(" ", "T") + "Z"));

export function openDatabase(url: string, max: number): Database {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, options: "-c TimeZone=UTC" });
  // An idle client that loses its server (Postgres restart) emits here; without a listener the
  // process would crash. The pool replaces the client on next use.
  pool.on("error", () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    pool,
    prisma,
    // Prisma's defaults (2 s to start, 5 s to finish) turn a busy moment (a burst queued on one
    // account's row lock) into 500s and rolled-back batches: give transactions room, bounded.
    transaction: (fn) => retryConflicts(() => prisma.$transaction(fn, { maxWait: 10_000, timeout: 30_000 })),
    sqlTransaction: (fn) => retryConflicts(() => sqlTransaction(pool, fn)),
    ping: () =>
      pool.query("SELECT 1").then(
        () => true,
        () => false,
      ),
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => undefined);
    },
  };
}

/**
 * Ends a connection this process is done with. An error it raises later (pg emits one for the
 * server's FATAL, e.g. 57P01 when PostgreSQL shuts down) is of no interest, but with no listener
 * it would crash the process: a no-op listener stays.
 */
export async function discardClient(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on("error", () => undefined);
  await client.end().catch(() => undefined);
}

/**
 * Runs `fn` in a transaction on a pooled pg client: committed when it returns, rolled back when
 * it throws. Hot paths that need raw pg (prepared statements, the outbox drain) use it directly.
 */
export async function pgTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // The server can end the connection mid-transaction (Postgres restarted, or while the drain
  // waits for the XMPP server): an 'error' event on a checked-out client with no listener would
  // crash the process.
  let lost = false;
  const onError = () => void (lost = true);
  client.on("error", onError);
  let open = false;
  try {
    await client.query("BEGIN");
    open = true;
    const result = await fn(client);
    await client.query("COMMIT");
    open = false;
    return result;
  } finally {
    // A connection that cannot even roll back is not given back to the pool.
    const healthy = !lost && (!open || (await client.query("ROLLBACK").then(() => true, () => false)));
    client.off("error", onError);
    client.release(healthy ? undefined : true);
  }
}

/**
 * Statements on the pool, each its own transaction (autocommit), retried when Postgres picks one
 * as a deadlock's victim (nothing of it committed). For a single statement that is everything a
 * transaction would give, without the BEGIN and COMMIT round trips.
 */
export function autocommit(pool: pg.Pool): SqlTx {
  return { query: async <R>(text: string, values: unknown[], prepare = false) => (await retryConflicts(() => pool.query(queryConfig(text, values, prepare)))).rows as R[] };
}

/** A JSON column's parameter for the unnest() bulk statements: SQL NULL for null or undefined. */
export const jsonParam = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

/** A pg client inside a transaction, as the SqlTx the shared statements take. */
export function asSqlTx(client: pg.PoolClient): SqlTx {
  return { query: async <R>(text: string, values: unknown[], prepare = false) => (await client.query(queryConfig(text, values, prepare))).rows as R[] };
}

function sqlTransaction<T>(pool: pg.Pool, fn: (tx: SqlTx) => Promise<T>): Promise<T> {
  return pgTransaction(pool, (client) => fn(asSqlTx(client)));
}

/**
 * Postgres aborted the transaction to break a deadlock (40P01) or a serialization conflict
 * (40001); Prisma reports either as P2034. Concurrent writers of one account (a deletion's
 * cascade, a batch of session updates, an inbound batch) can meet in different row orders.
 */
export function isConflict(err: unknown): boolean {
  return inCauses(err, (e) => e.code === "P2034" || e.code === "40P01" || e.code === "40001" || /deadlock detected|write conflict or a deadlock/i.test(e.message ?? ""));
}

/**
 * Runs `fn` again when Postgres chose it as a deadlock's victim (or `retryable` says so): nothing
 * of it was committed, and the work it lost is done again (the functions given here keep their
 * state inside).
 */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 3, retryable: (err: unknown) => boolean = isConflict): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 10));
    }
  }
}
