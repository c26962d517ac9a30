// One pg pool per process, shared by Prisma (through its pg adapter) and by the few hot-path
// statements that need SQL Prisma cannot express (multi-row upserts with RETURNING, LISTEN).
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient, type Prisma } from "./generated/client.js";

export type Db = PrismaClient;
/** A transaction (or, where a function accepts either, the client itself). */
export type Tx = Prisma.TransactionClient;

export interface Database {
  pool: pg.Pool;
  prisma: PrismaClient;
  /** Runs `fn` in one transaction: everything it writes commits together or not at all. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
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
    transaction: (fn) => prisma.$transaction(fn, { maxWait: 10_000, timeout: 30_000 }),
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
