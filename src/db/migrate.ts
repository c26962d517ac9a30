// Applies prisma/migrations at start-up, so the service needs no Prisma CLI (and no native
// schema engine) at run time. It writes `_prisma_migrations` rows in Prisma's own layout
// (checksum = sha256 of migration.sql), so `prisma migrate status|deploy` agree with it.
// An advisory lock lets several gateway instances start against one database at once.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";
import { DatabaseUnreachable, describeUrl, MigrationChanged } from "./errors.js";

export const LOCK_KEY = 0x42a1c0; // arbitrary, fixed: "balcony migrations"

export const MIGRATIONS_DIR = new URL("../../prisma/migrations/", import.meta.url).pathname;

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

/** The migrations shipped in `dir`, in the order they apply. */
async function migrationFiles(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

export interface MigrationStatus {
  /** Shipped and applied. */
  applied: string[];
  /** Shipped, not applied yet: what migrate() would apply. */
  pending: string[];
  /** Applied, but the shipped file differs from what was applied (migrate() refuses to run). */
  changed: string[];
  /** Applied, but not shipped with this version (the database was migrated by a newer one). */
  unknown: string[];
}

/** What migrate() would do, without changing anything (not even creating `_prisma_migrations`). */
export async function migrationStatus(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<MigrationStatus> {
  const files = await migrationFiles(dir);
  const table = await pool.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
  const done = table.rows[0]?.t
    ? (await pool.query<{ migration_name: string; checksum: string }>(`SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`)).rows
    : [];
  const have = new Map(done.map((r) => [r.migration_name, r.checksum]));
  const shipped = new Set(files.map((f) => f.name));
  return {
    applied: files.filter((f) => have.get(f.name) === f.checksum).map((f) => f.name),
    pending: files.filter((f) => !have.has(f.name)).map((f) => f.name),
    changed: files.filter((f) => have.has(f.name) && have.get(f.name) !== f.checksum).map((f) => f.name),
    unknown: [...have.keys()].filter((n) => !shipped.has(n)).sort(),
  };
}

/**
 * Applies the pending migrations, in order, each in its own transaction; returns their names.
 * `onWait` is called when another process holds the migration lock, before waiting for it: a
 * start-up that waits there would otherwise look hung.
 */
export async function migrate(pool: pg.Pool, dir = MIGRATIONS_DIR, onWait?: () => void): Promise<string[]> {
  const files = await migrationFiles(dir);
  const client = await pool.connect().catch((err: unknown) => {
    throw new DatabaseUnreachable(describeUrl(pool.options.connectionString ?? ""), err);
  });
  const applied: string[] = [];
  try {
    const free = await client.query<{ got: boolean }>("SELECT pg_try_advisory_lock($1) AS got", [LOCK_KEY]);
    if (!free.rows[0]?.got) {
      onWait?.();
      await client.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
    }
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    const done = await client.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const have = new Map(done.rows.map((r) => [r.migration_name, r.checksum]));
    for (const { name, sql, checksum } of files) {
      const prior = have.get(name);
      if (prior !== undefined) {
        if (prior !== checksum) throw new MigrationChanged(name);
        continue;
      }
      await client.query("BEGIN");
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 1)`,
          [randomUUID(), checksum, name],
        );
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(name);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]).catch(() => undefined);
    client.release();
  }
  return applied;
}
