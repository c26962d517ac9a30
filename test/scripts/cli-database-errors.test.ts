// How `balcony` and the server say that the database cannot be used, and --json on usage errors
// (found by the ops audit of stop 65). A PostgreSQL that resets every connection, one that never
// answers, TLS asked of a server without it, and a migration changed after it was applied were
// reported as "internal" with a stack trace for a message (the CLI), or as a 9-line stack (a
// server's failed start), where README says one line saying why; and `--json` was ignored for
// usage errors. Each run is a child process with a clean environment.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { JWT_SECRET } from "../../scripts/harness/gateway-process.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>, script = "src/cli.ts"): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => (clearTimeout(t), resolve({ code, stdout, stderr })));
  });
}
const show = (r: Run) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const STACK = /\n\s+at /;

describe("a database the CLI or the server cannot use", () => {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const databases: TestDatabase[] = [];
  let resetPort = 0;
  let silentPort = 0;
  const listen = (onConn: (s: Socket) => void) =>
    new Promise<number>((resolve) => {
      const s = createServer((sock) => (sockets.add(sock), onConn(sock)));
      servers.push(s);
      s.listen(0, "127.0.0.1", () => resolve((s.address() as { port: number }).port));
    });
  before(async () => {
    resetPort = await listen((s) => s.resetAndDestroy()); // drops every connection (restarting, a proxy with no backend)
    silentPort = await listen(() => undefined); // accepts, never answers (a firewall, a hung server)
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
    for (const d of databases) await d.drop();
  });

  const env = (url: string) => ({ DATABASE_URL: url, XMPP_SECRET: "s", JWT_SECRET, DATA_DIR: "/nonexistent-balcony", PORT: "0", LOG_LEVEL: "warn" });
  const unusable = [
    ["resets the connection", () => `postgresql://postgres@127.0.0.1:${resetPort}/x`],
    ["never answers (connection timeout)", () => `postgresql://postgres@127.0.0.1:${silentPort}/x`],
    ["does not speak TLS though DATABASE_URL asks for it", () => `postgresql://postgres@127.0.0.1:${new URL(process.env.DATABASE_URL ?? "postgresql://127.0.0.1:5432").port || 5432}/postgres?sslmode=no-verify`],
  ] as const;

  for (const [what, url] of unusable) {
    it(`balcony --json migrate and accounts list, PostgreSQL ${what}: database-unavailable naming where, with a fix; no stack`, async () => {
      for (const args of [["--json", "migrate"], ["--json", "accounts", "list"]]) {
        const r = await run(args, env(url()));
        assert.equal(r.code, 1, show(r));
        const doc = JSON.parse(r.stdout) as { error: { code: string; message: string; fix?: string } };
        assert.equal(doc.error.code, "database-unavailable", show(r));
        assert.doesNotMatch(doc.error.message, STACK, show(r));
        assert.match(doc.error.message, /^cannot reach PostgreSQL at postgres@127\.0\.0\.1:\d+\//, show(r));
        assert.match(doc.error.fix ?? "", /DATABASE_URL/);
      }
    });
  }

  it("the server with PostgreSQL resetting its connections: exit 1 with one line saying why", async () => {
    const r = await run([], env(unusable[0][1]()), "src/server.ts");
    assert.equal(r.code, 1, show(r));
    const lines = r.stderr.split("\n").filter(Boolean);
    assert.deepEqual(lines.length, 1, show(r));
    assert.match(lines[0]!, /^balcony: failed to start: cannot reach PostgreSQL at postgres@127\.0\.0\.1:\d+\/x: /);
  });

  it("a migration changed after it was applied: migrate says so (migration-changed), the server in one line", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    assert.equal((await run(["migrate"], env(db.url))).code, 0);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const changed = (await client.query<{ name: string }>(`UPDATE "_prisma_migrations" SET checksum = 'other' WHERE migration_name = (SELECT min(migration_name) FROM "_prisma_migrations") RETURNING migration_name AS name`)).rows[0]!.name;
    await client.end();
    const r = await run(["--json", "migrate"], env(db.url));
    assert.equal(r.code, 1, show(r));
    const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    assert.deepEqual([doc.error.code, STACK.test(doc.error.message)], ["migration-changed", false], show(r));
    assert.match(doc.error.message, new RegExp(`migration ${changed} was changed after it was applied`));
    const s = await run([], env(db.url), "src/server.ts");
    assert.equal(s.code, 1, show(s));
    assert.deepEqual(s.stderr.split("\n").filter(Boolean), [`balcony: failed to start: migration ${changed} was changed after it was applied: this database was migrated by another build of Balcony`]);
  });

  it("--json is honoured for usage errors: the error document on stdout, exit 2", async () => {
    for (const [args, message] of [
      [["--json", "accounts", "add"], "missing required argument 'localpart'"],
      [["--json", "accounts"], "a subcommand is missing"],
      [["--json", "nosuch"], "unknown command 'nosuch'"],
    ] as const) {
      const r = await run([...args], env("postgresql://postgres@127.0.0.1:1/x"));
      assert.equal(r.code, 2, show(r));
      assert.deepEqual(JSON.parse(r.stdout), { error: { code: "usage", message, fix: "add --help for usage" } }, show(r));
    }
    const text = await run(["accounts", "add"], env("postgresql://postgres@127.0.0.1:1/x"));
    assert.deepEqual([text.code, text.stdout], [2, ""]);
    assert.match(text.stderr, /missing required argument 'localpart'/);
  });
});
