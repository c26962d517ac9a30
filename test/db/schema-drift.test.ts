// prisma/schema.prisma must describe the database prisma/migrations build (the service applies the
// migrations, src/db/migrate.ts; the schema only generates the client and the next migration).
// Where they drift, the next `prisma migrate dev` writes a migration nobody asked for: with
// outbox.seq's default said as dbgenerated(...), one that dropped the message sequence. So the
// Prisma CLI diffs the two here, as a developer runs it, its schema engine replaying the migrations
// in an empty database of this test's own (SHADOW_DATABASE_URL, prisma.config.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PRISMA = join(ROOT, "node_modules/prisma/build/index.js");
const OFFLINE_ENGINE = join(ROOT, "../shared/prisma-offline/install.sh");
const LIMIT_MS = 60_000; // a diff takes ~5 s; a hung engine must not hold the suite

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, env, timeout: LIMIT_MS, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout, stderr: err && code === null ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

/**
 * The schema engine the CLI runs, as scripts/prisma-generate.sh picks it: PRISMA_SCHEMA_ENGINE_BINARY,
 * else the testbed's offline stand-in where there is one, else Prisma's own download.
 */
async function engineEnv(): Promise<NodeJS.ProcessEnv> {
  if (process.env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(OFFLINE_ENGINE)) return {};
  const r = await run("bash", [OFFLINE_ENGINE], process.env);
  assert.equal(r.code, 0, `${OFFLINE_ENGINE} failed:\n${r.stderr}`);
  return { PRISMA_SCHEMA_ENGINE_BINARY: r.stdout.trim() };
}

describe("prisma/schema.prisma and prisma/migrations", () => {
  let datasource: TestDatabase; // stays empty: a diff of two files reads no database
  let env: NodeJS.ProcessEnv;

  before(async () => {
    datasource = await createTestDatabase();
    env = { ...process.env, ...(await engineEnv()), DATABASE_URL: datasource.url, CHECKPOINT_DISABLE: "1" };
  });
  after(async () => {
    await datasource?.drop();
  });

  /** One diff, the migrations replayed in an empty shadow database of its own, dropped after. */
  async function diff(...more: string[]): Promise<Run> {
    const shadow = await createTestDatabase();
    try {
      const args = ["migrate", "diff", "--from-migrations", "prisma/migrations", "--to-schema", "prisma/schema.prisma", ...more];
      return await run(process.execPath, [PRISMA, ...args], { ...env, SHADOW_DATABASE_URL: shadow.url });
    } finally {
      await shadow.drop();
    }
  }

  it("describe the same database: `prisma migrate diff` finds no difference", { timeout: 2 * LIMIT_MS + 10_000 }, async () => {
    const r = await diff("--exit-code");
    // 0 alone is not enough: the CLI also exits 0, saying nothing, when its engine dies.
    if (r.code === 0 && r.stdout.includes("No difference detected.")) return;
    const sql = r.code === 2 ? (await diff("--script")).stdout : "";
    assert.fail(
      `prisma migrate diff (exit ${r.code}): the schema no longer describes what the migrations build.\n` +
        `Fix whichever side is wrong: schema.prisma where it misdescribes the database (a map: name, ` +
        `autoincrement() for a sequence's nextval), a new migration where the database must change.\n` +
        `--- diff ---\n${r.stdout}\n--- stderr ---\n${r.stderr}` +
        (sql ? `\n--- the migration \`prisma migrate dev\` would write ---\n${sql}` : ""),
    );
  });
});
