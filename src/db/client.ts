// One pg pool per process, shared by Prisma (through its pg adapter) and by the few hot-path
// statements that need SQL Prisma cannot express (multi-row upserts with RETURNING, LISTEN).
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.js";

export type Db = PrismaClient;

export interface Database {
  pool: pg.Pool;
  prisma: PrismaClient;
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
    async close() {
      await prisma.$disconnect();
      await pool.end().catch(() => undefined);
    },
  };
}
