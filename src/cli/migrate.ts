// `balcony migrate`: applies the database migrations the gateway would apply at start-up
// (src/db/migrate.ts: Prisma's layout, one advisory lock, safe beside running instances).
import type { Command } from "commander";
import { commandConfig, run, UNUSED, withDatabase } from "./common.js";

export function migrateCommand(program: Command): void {
  program
    .command("migrate")
    .summary("apply the database migrations")
    .description(
      "Applies the migrations in prisma/migrations that the database does not have yet, in order, each in its own " +
        "transaction, and prints what it applied. The gateway also does this at start-up; running it first (say, in a " +
        "deployment step) keeps schema changes out of the start. Safe while instances run (an advisory lock serialises " +
        "migrations). Needs only the database settings (DATABASE_URL, or DATA_DIR for the embedded PostgreSQL).",
    )
    .action((_opts: object, cmd: Command) =>
      run(cmd, async (out) => {
        const config = commandConfig({ ...UNUSED.xmpp, ...UNUSED.jwt });
        const { migrate } = await import("../db/migrate.js");
        const { applied, where } = await withDatabase(config, out, async (db, where) => ({ applied: await migrate(db.pool, undefined, () => out.note("another process (a gateway starting?) is applying migrations: waiting for it")), where }));
        if (out.json) return out.data({ applied, database: where });
        if (applied.length === 0) return out.line(`${where}: ${out.paint("ok", "up to date")}, no migration to apply`);
        out.table(["APPLIED MIGRATION"], applied.map((name) => [name]));
        out.line(`${where}: ${out.paint("ok", `${applied.length} migration${applied.length === 1 ? "" : "s"} applied`)}`);
      }),
    );
}
