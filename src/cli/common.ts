// What every `balcony` command shares: the global options, the configuration (the gateway's own
// environment, read by src/config.ts), the database (DATABASE_URL, or the embedded PostgreSQL the
// gateway runs without it), and how an error is reported (and with which exit code). What only
// some commands use is imported when they run, so that `balcony --help` starts fast.
import type { Command } from "commander";
import { ConfigError, loadConfig, type Config } from "../config.js";
import type { Database } from "../db/client.js";
import { DatabaseUnreachable, describeUrl, MigrationChanged } from "../db/errors.js";
import { AppError } from "../domain/errors.js";
import { Output } from "./output.js";

export { describeUrl };

export interface GlobalOptions {
  json?: boolean;
  env?: string;
  envFile?: string;
}

/** Exit codes: 0 done, 1 failed (or a doctor check other than configuration failed), 2 bad usage or configuration (doctor's configuration check too). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A failure the CLI explains: a stable code, what went wrong, how to fix it. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fix?: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

/** Placeholders for settings a command never uses, so that it runs with only what it needs. */
export const UNUSED = {
  xmpp: { XMPP_SECRET: "unused-by-this-command" },
  jwt: { JWT_SECRET: "unused-by-this-command-0123456789abcdef" },
};

export function commandConfig(fallback: Record<string, string> = {}): Config {
  return loadConfig(undefined, fallback);
}

const DATABASE_FIX = "check DATABASE_URL and that PostgreSQL runs (`balcony doctor` tells more)";

function explain(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ConfigError) {
    return new CliError("configuration", `configuration error: ${err.message}`, `set ${err.variable} correctly in the environment (see .env.example and README.md, "Configuration")`, EXIT.usage);
  }
  if (err instanceof AppError) return new CliError(err.code, err.detail, undefined, err.code === "invalid-jid" || err.code === "validation-failed" ? EXIT.usage : EXIT.failed);
  if (err instanceof DatabaseUnreachable) return new CliError("database-unavailable", err.message, DATABASE_FIX);
  if (err instanceof MigrationChanged) return new CliError("migration-changed", err.message, "run the build of Balcony that migrated this database, or point DATABASE_URL at another database");
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === "string" && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|28P01|28000|3D000)$/.test(e.code)) {
    return new CliError("database-unavailable", `cannot reach PostgreSQL: ${e.message ?? e.code}`, DATABASE_FIX);
  }
  return new CliError("internal", err instanceof Error ? (err.stack ?? err.message) : String(err));
}

/**
 * Runs a command's body with the output it asked for, and turns what it throws into a message
 * (stderr; with --json, `{"error": {code, message, fix}}` on stdout) and an exit code. Unless the
 * command keeps running (`start`), the process then exits even if a stray handle would keep it.
 */
export async function run(cmd: Command, body: (out: Output) => Promise<number | void>, opts: { keepsRunning?: boolean } = {}): Promise<void> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const out = new Output(globals.json === true);
  try {
    const file = globals.env ?? globals.envFile;
    if (file !== undefined) loadEnvFile(file);
    process.exitCode = (await body(out)) ?? EXIT.ok;
  } catch (err) {
    const e = explain(err);
    if (out.json) out.data({ error: { code: e.code, message: e.message, ...(e.fix ? { fix: e.fix } : {}) } });
    else out.error(e.message, e.fix);
    process.exitCode = e.exitCode;
  }
  if (!opts.keepsRunning || process.exitCode !== EXIT.ok) setTimeout(() => process.exit(), 1000).unref();
}

function loadEnvFile(path: string): void {
  try {
    // Variables already in the environment win over the file (Node's rule for .env files).
    process.loadEnvFile(path);
  } catch (err) {
    throw new CliError("env-file", `cannot read --env ${path}: ${(err as Error).message}`, undefined, EXIT.usage);
  }
}

export interface OpenDatabase {
  db: Database;
  /** Where it is, for people (no password). */
  where: string;
  close(): Promise<void>;
}

/**
 * The gateway's database: DATABASE_URL; without it, the embedded PostgreSQL under DATA_DIR, the
 * running one (the gateway's) if it answers, else started for this command and stopped after.
 * Never a new one: a command run without the gateway's settings must not create an empty database
 * and report success against it.
 */
export async function openCommandDatabase(config: Config, out: Output, opts: { connect?: boolean } = {}): Promise<OpenDatabase> {
  // Loaded here, not above: `--help` and `token` need no database driver (a second of start-up).
  const { openDatabase } = await import("../db/client.js");
  if (config.databaseUrl) {
    const db = openDatabase(config.databaseUrl, 2);
    const where = describeUrl(config.databaseUrl);
    // Connected once here, so that whatever keeps it from connecting is said as such (explain);
    // not for `doctor`, which tells the causes apart itself (databaseCheck).
    if (opts.connect !== false) {
      const first = await db.pool.connect().catch(async (err: unknown) => {
        await db.close();
        throw new DatabaseUnreachable(where, err);
      });
      first.release();
    }
    return { db, where, close: () => db.close() };
  }
  const where = `embedded PostgreSQL (DATA_DIR ${config.dataDir}, port ${config.embeddedPgPort})`;
  const { embeddedPostgresUrl, startEmbeddedPostgres } = await import("../db/embedded.js");
  const existing = await embeddedPostgresUrl(config.dataDir, config.embeddedPgPort, config.dataDirIsDefault);
  if (!existing) {
    throw new CliError(
      "no-database",
      `DATABASE_URL is not set, and there is no embedded PostgreSQL under DATA_DIR ${config.dataDir} (the gateway creates it on its first start)`,
      "set DATABASE_URL (and DATA_DIR, EMBEDDED_PG_PORT) as the gateway has them, e.g. with --env .env",
    );
  }
  const running = openDatabase(existing, 2);
  if (await running.ping()) return { db: running, where, close: () => running.close() };
  await running.close();
  out.note(`DATABASE_URL is not set: starting the ${where} for this command`);
  const embedded = await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, (m) => out.note(m), config.dataDirIsDefault);
  const db = openDatabase(embedded.url, 2);
  return {
    db,
    where,
    async close() {
      await db.close();
      await embedded.stop();
    },
  };
}

export async function withDatabase<T>(config: Config, out: Output, fn: (db: Database, where: string) => Promise<T>): Promise<T> {
  const opened = await openCommandDatabase(config, out);
  try {
    return await fn(opened.db, opened.where);
  } finally {
    await opened.close();
  }
}
