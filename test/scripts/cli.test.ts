// The `balcony` operator CLI (src/cli.ts), run as an operator runs it: a child process
// (`node --import tsx src/cli.ts ...`) with a clean environment, against real PostgreSQL
// databases, a real Prosody, and real gateway processes where a command meets a running gateway.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import jwt from "jsonwebtoken";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, JWT_SECRET, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { comeOnline } from "../helpers/xmpp-world.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MIGRATIONS = (await readdir(join(ROOT, "prisma/migrations"), { withFileTypes: true }))
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
const COMMANDS = ["start", "migrate", "token", "accounts", "doctor"];
const ANSI = /\x1b\[/; // eslint-disable-line no-control-regex

type Env = Record<string, string>;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Check {
  name: string;
  status: string;
  detail: string;
  fix?: string;
}

const children = new Set<ChildProcess>();
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

/** Starts the CLI with exactly `env` (plus PATH and HOME): nothing leaks in from the test's own environment. */
function spawnCli(args: string[], env: Env, preload?: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", ...(preload ? ["--import", preload] : []), "src/cli.ts", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function finish(child: ChildProcess, timeoutMs = 90_000): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const cli = (args: string[], env: Env, preload?: string) => finish(spawnCli(args, env, preload));

/** The --json document on stdout (the assertion message shows everything the command printed). */
function json<T>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

const show = (r: Run) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

function checksOf(r: Run): Map<string, Check> {
  const doc = json<{ ok: boolean; checks: Check[] }>(r);
  assert.equal(doc.ok, r.code === 0, `"ok" agrees with the exit code\n${show(r)}`);
  return new Map(doc.checks.map((c) => [c.name, c]));
}

/** The doctor's human table: the row of check `name` and its continuation lines. */
function doctorRow(out: string, name: string): string {
  const lines = out.split("\n");
  const i = lines.findIndex((l) => l.startsWith(`${name} `));
  assert.ok(i >= 0, `a row for ${name} in:\n${out}`);
  let end = i + 1;
  while (end < lines.length && /^\s+\S/.test(lines[end]!)) end++;
  return lines.slice(i, end).join("\n");
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.on("connect", () => s.destroy() && resolve(true));
    s.on("error", () => resolve(false));
  });
}

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("balcony CLI", () => {
  let server: XmppServer;
  const databases: TestDatabase[] = [];
  const gateways: GatewayProcess[] = [];
  const dirs: string[] = [];
  /** An embedded PostgreSQL must never start by accident: DATA_DIR points at nothing. */
  let nowhere: string;

  before(async () => {
    server = await startXmppServer("prosody");
    nowhere = join(tmpdir(), `balcony-cli-none-${process.pid}`);
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    for (const d of databases) await d.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await server?.stop();
  });

  async function database(): Promise<TestDatabase> {
    const db = await createTestDatabase();
    databases.push(db);
    return db;
  }

  /** The gateway's environment for a database: what an operator's .env would hold. */
  async function envFor(url: string, extra: Env = {}): Promise<Env> {
    return {
      DATABASE_URL: url,
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: server.componentDomain,
      XMPP_SECRET: server.componentSecret,
      JWT_SECRET,
      PORT: String(await freePort()), // where no gateway runs, unless a test starts one there
      DATA_DIR: nowhere,
      LOG_LEVEL: "warn",
      ...extra,
    };
  }

  async function migrated(): Promise<{ db: TestDatabase; env: Env }> {
    const db = await database();
    const env = await envFor(db.url);
    const r = await cli(["migrate"], env);
    assert.equal(r.code, 0, show(r));
    return { db, env };
  }

  it("--help lists every command; every command and subcommand has --help and --json", async () => {
    const top = await cli(["--help"], {});
    assert.equal(top.code, 0, show(top));
    for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`^\\s+${c}\\b.*\\S`, "m"), `${c} in:\n${top.stdout}`);
    const paths = [...COMMANDS.map((c) => [c]), ["accounts", "list"], ["accounts", "add"], ["accounts", "remove"]];
    const runs = await Promise.all(paths.map((p) => cli([...p, "--help"], {})));
    paths.forEach((p, i) => {
      const r = runs[i]!;
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`^Usage: balcony ${p.join(" ")}\\b`, "m"), show(r));
      assert.match(r.stdout, /--json/, show(r));
    });
    const accounts = runs[COMMANDS.indexOf("accounts")]!.stdout;
    for (const sub of ["list", "add <localpart>", "remove <localpart>"]) assert.match(accounts, new RegExp(`^\\s+${sub}\\s+\\S`, "m"), accounts);
    assert.match(runs[paths.findIndex((p) => p.join(" ") === "accounts remove")]!.stdout, /unavailable/, "remove --help says what the contacts get");
    assert.match(runs[COMMANDS.indexOf("doctor")]!.stdout, /readyz/, "doctor --help says how it treats a running gateway");
    const unknown = await cli(["frobnicate"], {});
    assert.equal(unknown.code, 2, show(unknown));
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  it("migrate on an empty database applies every migration, prints them, and then has nothing to apply", async () => {
    const db = await database();
    const env = await envFor(db.url);
    const first = await cli(["migrate"], env);
    assert.equal(first.code, 0, show(first));
    assert.deepEqual(
      first.stdout.split("\n").filter((l) => /^\d{14}_/.test(l)),
      MIGRATIONS,
      "every migration, in order, one a line",
    );
    assert.match(first.stdout, new RegExp(`${MIGRATIONS.length} migrations applied`));
    assert.doesNotMatch(first.stdout, ANSI, "no colour when stdout is not a terminal");
    const rows = await query<{ migration_name: string }>(db.url, `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY migration_name`);
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      MIGRATIONS,
    );
    const again = await cli(["migrate"], env);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /up to date/);

    const other = await database();
    const otherEnv = await envFor(other.url);
    const asJson = await cli(["migrate", "--json"], otherEnv);
    assert.equal(asJson.code, 0, show(asJson));
    assert.deepEqual(json<{ applied: string[] }>(asJson).applied, MIGRATIONS);
    assert.deepEqual(json<{ applied: string[] }>(await cli(["migrate", "--json"], otherEnv)).applied, []);
  });

  it("accounts add, list and remove: aligned tables, --json, errors with codes and exit codes", async () => {
    const { db, env } = await migrated();
    const domain = server.componentDomain;

    const added = await cli(["accounts", "add", "romeo"], env);
    assert.equal(added.code, 0, show(added));
    assert.match(added.stdout, new RegExp(`added romeo@${domain.replace(".", "\\.")}`));
    const juliet = await cli(["accounts", "add", `Juliet@${domain}`, "--json"], env);
    assert.equal(juliet.code, 0, show(juliet));
    assert.deepEqual(json(juliet), { jid: `juliet@${domain}` }, "a bare JID is accepted and prepared (lower case)");

    const dup = await cli(["accounts", "add", "romeo", "--json"], env);
    assert.equal(dup.code, 1, show(dup));
    assert.equal(json<{ error: { code: string } }>(dup).error.code, "account-exists");
    const dupText = await cli(["accounts", "add", "romeo"], env);
    assert.equal(dupText.code, 1);
    assert.match(dupText.stderr, /already exists/);
    assert.equal(dupText.stdout, "", "errors go to stderr");
    const bad = await cli(["accounts", "add", "no@such@jid", "--json"], env);
    assert.equal(bad.code, 2, show(bad));
    assert.equal(json<{ error: { code: string } }>(bad).error.code, "invalid-jid");
    // Prosody would deliver what is sent to it to strasse@ (src/domain/stringprep-fold.ts).
    const folded = await cli(["accounts", "add", "straße"], env);
    assert.equal(folded.code, 2, show(folded));
    assert.match(folded.stderr, /localpart: .*use "strasse"/);

    const rows = await query<{ localpart: string; created_at: Date }>(db.url, "SELECT localpart, created_at FROM account ORDER BY id");
    assert.deepEqual(
      rows.map((r) => r.localpart),
      ["romeo", "juliet"],
    );
    const listed = await cli(["accounts", "list", "--json"], env);
    assert.equal(listed.code, 0, show(listed));
    assert.deepEqual(
      json(listed),
      { accounts: rows.map((r) => ({ jid: `${r.localpart}@${domain}`, createdAt: r.created_at.toISOString() })) },
      "every account with its creation time, oldest first",
    );

    const table = await cli(["accounts", "list"], env);
    assert.equal(table.code, 0, show(table));
    assert.doesNotMatch(table.stdout, ANSI);
    const lines = table.stdout.split("\n").filter(Boolean);
    assert.match(lines[0]!, /^JID\s+CREATED$/);
    assert.match(lines[1]!, new RegExp(`^romeo@\\S+\\s+${rows[0]!.created_at.toISOString()}$`));
    assert.match(lines[2]!, new RegExp(`^juliet@\\S+\\s+${rows[1]!.created_at.toISOString()}$`));
    const column = lines.slice(0, 3).map((l) => l.search(/(CREATED|\d{4}-\d\d-\d\dT)/));
    assert.ok(column.every((c) => c === column[0] && c > `juliet@${domain}`.length), `the CREATED column is aligned:\n${table.stdout}`);
    assert.match(lines[3]!, /^2 accounts$/);

    const removed = await cli(["accounts", "remove", "romeo"], env);
    assert.equal(removed.code, 0, show(removed));
    assert.match(removed.stdout, /removed romeo@/);
    assert.deepEqual(await query(db.url, "SELECT 1 FROM account WHERE localpart = 'romeo'"), []);
    assert.deepEqual(json<{ accounts: { jid: string }[] }>(await cli(["accounts", "list", "--json"], env)).accounts.map((a) => a.jid), [`juliet@${domain}`]);
    const gone = await cli(["accounts", "remove", "romeo", "--json"], env);
    assert.equal(gone.code, 1, show(gone));
    assert.equal(json<{ error: { code: string } }>(gone).error.code, "account-not-found");
  });

  it("accounts refuses a database without the schema, and --env supplies the environment (a file it cannot read: exit 2, --json honoured)", async () => {
    const db = await database();
    const env = await envFor(db.url);
    const r = await cli(["accounts", "list", "--json"], env);
    assert.equal(r.code, 1, show(r));
    const err = json<{ error: { code: string; message: string; fix: string } }>(r).error;
    assert.equal(err.code, "migrations-pending");
    assert.match(err.fix, /balcony migrate/);
    const dir = await mkdtemp(join(tmpdir(), "balcony-cli-env-"));
    dirs.push(dir);
    const file = join(dir, "env");
    await writeFile(file, Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
    const viaFile = await cli(["--env", file, "migrate", "--json"], {});
    assert.equal(viaFile.code, 0, show(viaFile));
    assert.deepEqual(json<{ applied: string[] }>(viaFile).applied, MIGRATIONS);
    // Its former name still reads an existing file (the migrations are applied now: none left).
    const viaOldName = await cli(["--env-file", file, "migrate", "--json"], {});
    assert.equal(viaOldName.code, 0, show(viaOldName));
    assert.deepEqual(json<{ applied: string[] }>(viaOldName).applied, []);
    // The CLI's own usage error, not Node's (which, for --env-file, exits 9 before the CLI runs).
    const missing = await cli(["--json", "--env", join(dir, "no-such-file"), "migrate"], {});
    assert.equal(missing.code, 2, show(missing));
    const err2 = json<{ error: { code: string; message: string } }>(missing).error;
    assert.equal(err2.code, "env-file");
    assert.match(err2.message, /^cannot read --env .*no-such-file/);
    const text = await cli(["--env", join(dir, "no-such-file"), "accounts", "list"], {});
    assert.equal(text.code, 2, show(text));
    assert.match(text.stderr, /cannot read --env .*no-such-file/);
  });

  it("accounts remove does what DELETE /v1/accounts does: through the running gateway, the contacts get unavailable and unsubscribed", async () => {
    const db = await database();
    const env = await envFor(db.url);
    const gw = await startGatewayProcess(server, db.url, Number(env.PORT));
    gateways.push(gw);
    await server.registerUser("juliet", "pw");
    const juliet: XmppUser = await connectUser(server, "juliet", "pw", "balcony");
    try {
      await comeOnline(juliet);
      assert.equal((await cli(["accounts", "add", "romeo"], env)).code, 0);
      const jid = `romeo@${server.componentDomain}`;
      const token = (await cli(["token", "romeo", "--resource", "phone"], env)).stdout.trim();
      const call = (method: string, path: string, body?: unknown) =>
        fetch(gw.url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
      // Juliet subscribes to Romeo's presence and he approves; then he comes online.
      await juliet.send(xml("presence", { to: jid, type: "subscribe" }));
      await until(async () => ((await (await call("GET", "/v1/subscription-requests")).json()) as { items: unknown[] }).items.length === 1, "Juliet's request");
      assert.equal((await call("POST", "/v1/roster/juliet@localhost/approve")).status, 200);
      assert.equal((await call("PUT", "/v1/presence", {})).status, 200);
      const from = (s: XmlElement, type: string) => s.is("presence") && !!s.attrs.from?.startsWith(jid) && (s.attrs.type ?? "available") === type;
      await juliet.waitFor((s) => from(s, "available"));
      const mark = juliet.stanzas.length;

      const removed = await cli(["accounts", "remove", "romeo", "--json"], env);
      assert.equal(removed.code, 0, show(removed));
      assert.deepEqual(json(removed), { removed: jid });
      await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && from(s, "unsubscribed"), 10_000);
      const types = juliet.stanzas.slice(mark).filter((s) => s.is("presence") && s.attrs.from?.startsWith(jid)).map((s) => s.attrs.type ?? "available");
      assert.ok(types.includes("unavailable") && types.indexOf("unavailable") < types.indexOf("unsubscribed"), `unavailable, then unsubscribed: ${types.join()}`);
      // The running gateway forgot the account at once (its cache was told through PostgreSQL).
      const after = await call("GET", "/v1/roster");
      assert.equal(after.status, 404, await after.text());
    } finally {
      await juliet.stop();
      await gw.stop();
    }
  });

  it("token: signed with JWT_SECRET, with the claims asked for; npm run token still works", async () => {
    const env = { JWT_SECRET, XMPP_DOMAIN: server.componentDomain };
    const now = Math.floor(Date.now() / 1000);
    const verify = (t: string) => jwt.verify(t, JWT_SECRET, { algorithms: ["HS256"] }) as jwt.JwtPayload;

    const plain = await cli(["token", "romeo", "--resource", "phone", "--ttl", "1h"], env);
    assert.equal(plain.code, 0, show(plain));
    assert.match(plain.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, "the token alone, for $(...)");
    const claims = verify(plain.stdout.trim());
    assert.equal(claims.sub, "romeo");
    assert.equal(claims.resource, "phone");
    assert.equal(claims.scope, undefined);
    assert.ok(Math.abs(claims.exp! - (now + 3600)) <= 30, `exp ${claims.exp} ≈ now + 1 h`);
    assert.throws(() => jwt.verify(plain.stdout.trim(), `${JWT_SECRET}-other`, { algorithms: ["HS256"] }), "signed with JWT_SECRET, nothing else");

    const admin = await cli(["token", "--admin", "--json"], { ...env, JWT_ISSUER: "ops", JWT_AUDIENCE: "balcony" });
    assert.equal(admin.code, 0, show(admin));
    const doc = json<{ token: string; account: string; jid: string; admin: boolean; resource: string | null; expiresAt: string }>(admin);
    const a = jwt.verify(doc.token, JWT_SECRET, { algorithms: ["HS256"], issuer: "ops", audience: "balcony" }) as jwt.JwtPayload;
    assert.deepEqual([a.sub, a.scope], ["admin", "admin"]);
    assert.ok(Math.abs(a.exp! - (now + 86_400)) <= 30, "24 h by default");
    assert.deepEqual({ ...doc, token: "" }, { token: "", account: "admin", jid: `admin@${server.componentDomain}`, admin: true, resource: null, expiresAt: new Date(a.exp! * 1000).toISOString() });

    const bare = await cli(["token", `Romeo@${server.componentDomain}`], env);
    assert.equal(verify(bare.stdout.trim()).sub, "romeo", "a bare JID becomes its prepared localpart");

    const noAccount = await cli(["token"], env);
    assert.equal(noAccount.code, 2, show(noAccount));
    const badTtl = await cli(["token", "romeo", "--ttl", "soon"], env);
    assert.equal(badTtl.code, 2, show(badTtl));
    assert.match(badTtl.stderr, /--ttl/);
    const noSecret = await cli(["token", "--admin", "--json"], { XMPP_DOMAIN: server.componentDomain });
    assert.equal(noSecret.code, 2, show(noSecret));
    assert.match(json<{ error: { message: string } }>(noSecret).error.message, /JWT_SECRET/);

    const npm = await finish(
      spawn("npm", ["run", "-s", "token", "--", "--account", "romeo", "--resource", "tablet", "--ttl", "120"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env }, stdio: ["ignore", "pipe", "pipe"] }),
    );
    assert.equal(npm.code, 0, show(npm));
    const n = verify(npm.stdout.trim());
    assert.deepEqual([n.sub, n.resource, n.scope], ["romeo", "tablet", undefined]);
    assert.ok(Math.abs(n.exp! - (Math.floor(Date.now() / 1000) + 120)) <= 30);

    // Without JWT_SECRET in the environment, the script takes it from the working directory's
    // .env, as the quick start leaves it (README "API tour"); the environment's still wins.
    const dir = await mkdtemp(join(tmpdir(), "balcony-token-"));
    try {
      await writeFile(join(dir, ".env"), `JWT_SECRET=${JWT_SECRET}-from-file\n`);
      const script = (extra: Env) =>
        finish(
          spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(ROOT, "scripts/token.ts"), "--admin"], {
            cwd: dir,
            env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", XMPP_DOMAIN: server.componentDomain, ...extra },
            stdio: ["ignore", "pipe", "pipe"],
          }),
        );
      const fromFile = await script({});
      assert.equal(fromFile.code, 0, show(fromFile));
      assert.equal((jwt.verify(fromFile.stdout.trim(), `${JWT_SECRET}-from-file`, { algorithms: ["HS256"] }) as jwt.JwtPayload).scope, "admin");
      const fromEnv = await script({ JWT_SECRET });
      assert.equal(verify(fromEnv.stdout.trim()).sub, "admin", "the environment's JWT_SECRET wins over the file's");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("token refuses, with exit 2 and a short message, a --ttl beyond what POST /v1/tokens allows and the resource the gateway refuses", async () => {
    const env = { JWT_SECRET, XMPP_DOMAIN: server.componentDomain };
    for (const ttl of ["999999999d", "366d", "31536001", `${"9".repeat(400)}d`]) {
      const r = await cli(["token", "romeo", "--ttl", ttl], env);
      assert.equal(r.code, 2, show(r));
      assert.equal(r.stdout, "", "no token");
      assert.match(r.stderr, /--ttl must be between 1 second and 365 days/, ttl);
      assert.doesNotMatch(r.stderr, /RangeError|\n\s+at /, "no stack");
    }
    const year = await cli(["token", "romeo", "--ttl", "365d", "--json"], env);
    assert.equal(year.code, 0, show(year));
    const exp = (jwt.verify(json<{ token: string }>(year).token, JWT_SECRET, { algorithms: ["HS256"] }) as jwt.JwtPayload).exp!;
    assert.ok(Math.abs(exp - (Math.floor(Date.now() / 1000) + 31_536_000)) <= 30, "the longest POST /v1/tokens mints");

    // "rooms" is the resource of the account's room occupancy: POST /v1/tokens answers 400 invalid-jid, and a token naming it would get 401.
    const rooms = await cli(["token", "romeo", "--resource", "rooms", "--json"], env);
    assert.equal(rooms.code, 2, show(rooms));
    const err = json<{ error: { code: string; message: string } }>(rooms).error;
    assert.equal(err.code, "invalid-resource");
    assert.match(err.message, /^--resource: "rooms" is the resource the account's room occupancy uses/);
    const invalid = await cli(["token", "romeo", "--resource", "a\u0007b"], env);
    assert.equal(invalid.code, 2, show(invalid));
    assert.match(invalid.stderr, /--resource is not a valid resourcepart/);
  });

  it("doctor passes against a healthy setup with no gateway: a real component round trip", async () => {
    const { env } = await migrated();
    const r = await cli(["doctor", "--json"], env);
    assert.equal(r.code, 0, show(r));
    const checks = checksOf(r);
    assert.deepEqual([...checks.keys()], ["configuration", "database", "migrations", "clock", "xmpp"]);
    for (const c of checks.values()) assert.equal(c.status, "ok", JSON.stringify(c));
    assert.match(checks.get("xmpp")!.detail, /no gateway running: connected .* ping round trip/);
    assert.match(checks.get("migrations")!.detail, new RegExp(`all ${MIGRATIONS.length} applied`));

    assert.doesNotMatch(r.stderr, /checking/, "--json in a pipe: no progress lines, stdout is the document alone");

    const text = await cli(["doctor"], env);
    assert.equal(text.code, 0, show(text));
    assert.doesNotMatch(text.stdout, ANSI);
    assert.match(text.stdout, /^CHECK\s+STATUS\s+DETAIL$/m);
    for (const name of checks.keys()) assert.match(doctorRow(text.stdout, name), new RegExp(`^${name}\\s+OK\\s+\\S`));
    assert.match(text.stdout, /all checks passed/);
    // For a person: each check as it runs, on stderr (stdout stays the report), with its time.
    assert.deepEqual(
      text.stderr.split("\n").filter(Boolean).map((l) => l.replace(/\d+ ms/, "N ms")),
      [...checks.keys()].map((name) => `checking ${name}… ok (N ms)`),
      show(text),
    );
    assert.doesNotMatch(text.stdout, /checking/, show(text));

    // --json with a person watching stderr (a terminal): progress there, stdout still one JSON document.
    const dir = await mkdtemp(join(tmpdir(), "balcony-cli-doctor-"));
    dirs.push(dir);
    const file = join(dir, "doctor.json");
    const command = `node --import tsx src/cli.ts doctor --json > ${file}`;
    const watched = await finish(spawn("script", ["-qec", command, "/dev/null"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", TERM: "dumb", ...env }, stdio: ["ignore", "pipe", "pipe"] }));
    assert.equal(watched.code, 0, show(watched));
    for (const name of checks.keys()) assert.match(watched.stdout, new RegExp(`checking ${name}… ok \\(\\d+ ms\\)`), show(watched));
    assert.deepEqual([...checksOf({ ...watched, stdout: await readFile(file, "utf8") }).keys()], [...checks.keys()]);
  });

  it("doctor with a gateway running asks it (/readyz, or the link lease) instead of taking the component's only connection", async () => {
    const { db, env } = await migrated();
    const gw = await startGatewayProcess(server, db.url, Number(env.PORT));
    gateways.push(gw);
    try {
      const viaReadyz = await cli(["doctor", "--json"], env);
      assert.equal(viaReadyz.code, 0, show(viaReadyz));
      assert.match(checksOf(viaReadyz).get("xmpp")!.detail, new RegExp(`gateway at ${gw.url.replace(/\./g, "\\.")} holds the component link \\(readyz: xmpp up\\)`));
      // No gateway at HOST:PORT, but one holds the lease in this database: its word, still no connection.
      const viaLease = await cli(["doctor", "--json"], { ...env, PORT: String(await freePort()) });
      assert.equal(viaLease.code, 0, show(viaLease));
      const xmpp = checksOf(viaLease).get("xmpp")!;
      assert.equal(xmpp.status, "ok", JSON.stringify(xmpp));
      assert.match(xmpp.detail, /holds the component link lease and reports the link up/);
      const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as { xmpp: string };
      assert.equal(ready.xmpp, "up", "the gateway kept its link");
    } finally {
      await gw.stop();
    }
  });

  it("doctor fails on a wrong DATABASE_URL, naming the check and the fix", async () => {
    const closed = await cli(["doctor"], await envFor(`postgresql://postgres@127.0.0.1:${await freePort()}/balcony`));
    assert.equal(closed.code, 1, show(closed));
    assert.match(doctorRow(closed.stdout, "database"), /^database\s+FAIL\s+cannot use .*ECONNREFUSED[\s\S]*fix: start PostgreSQL, or correct the host and port in DATABASE_URL/);
    assert.match(doctorRow(closed.stdout, "migrations"), /SKIP\s+needs the database/);
    assert.match(doctorRow(closed.stdout, "clock"), /SKIP/);
    assert.match(doctorRow(closed.stdout, "xmpp"), /SKIP\s+needs the database/, "no component connection without knowing whether a gateway holds it");
    assert.match(closed.stdout, /1 check failed: database/);
    assert.match(closed.stderr, /^checking database… fail \(\d+ ms\)\nchecking migrations… skip\n/m, "progress: a failed check, and a skipped one (no time)");

    const missing = await cli(["doctor", "--json"], await envFor(`postgresql://postgres@127.0.0.1:5432/balcony_no_such_db_${process.pid}`));
    assert.equal(missing.code, 1, show(missing));
    const db = checksOf(missing).get("database")!;
    assert.equal(db.status, "fail");
    assert.match(db.detail, /does not exist/);
    assert.match(db.fix ?? "", /create the database/);
  });

  it("doctor fails with pending migrations and lists them", async () => {
    const db = await database();
    const env = await envFor(db.url);
    const fresh = await cli(["doctor"], env);
    assert.equal(fresh.code, 1, show(fresh));
    const row = doctorRow(fresh.stdout, "migrations");
    assert.match(row, new RegExp(`^migrations\\s+FAIL\\s+${MIGRATIONS.length} of ${MIGRATIONS.length} pending`));
    for (const m of MIGRATIONS) assert.ok(row.includes(m), `${m} listed in:\n${row}`);
    assert.match(row, /fix: run `balcony migrate`/);
    assert.match(fresh.stdout, /1 check failed: migrations/);

    assert.equal((await cli(["migrate"], env)).code, 0);
    const last = MIGRATIONS.at(-1)!;
    await query(db.url, `DELETE FROM "_prisma_migrations" WHERE migration_name = $1`, [last]);
    const one = checksOf(await cli(["doctor", "--json"], env)).get("migrations")!;
    assert.equal(one.status, "fail");
    assert.equal(one.detail, `1 of ${MIGRATIONS.length} pending:\n${last}`);
  });

  it("doctor fails on a wrong component secret (and an unreachable XMPP server), naming the fix", async () => {
    const { env } = await migrated();
    const wrong = await cli(["doctor", "--json"], { ...env, XMPP_SECRET: "not-the-secret" });
    assert.equal(wrong.code, 1, show(wrong));
    const checks = checksOf(wrong);
    for (const name of ["configuration", "database", "migrations", "clock"]) assert.equal(checks.get(name)!.status, "ok", name);
    const xmpp = checks.get("xmpp")!;
    assert.equal(xmpp.status, "fail");
    assert.match(xmpp.detail, /refused the handshake .*XMPP_SECRET is not its secret/);
    assert.match(xmpp.fix ?? "", /set XMPP_SECRET .*component_secret/);

    const text = await cli(["doctor"], { ...env, XMPP_SECRET: "not-the-secret" });
    assert.match(doctorRow(text.stdout, "xmpp"), /^xmpp\s+FAIL\s+the XMPP server refused the handshake[\s\S]*fix: set XMPP_SECRET/);
    assert.match(text.stdout, /1 check failed: xmpp/);

    const nobody = checksOf(await cli(["doctor", "--json"], { ...env, XMPP_SERVICE: `xmpp://127.0.0.1:${await freePort()}` })).get("xmpp")!;
    assert.equal(nobody.status, "fail");
    assert.match(nobody.detail, /nothing accepts connections/);
    assert.match(nobody.fix ?? "", /XMPP_SERVICE/);
  });

  it("doctor fails on an invalid configuration with exit 2 (a configuration error, as for every command), naming the variable; the other checks are skipped", async () => {
    const env = await envFor("postgresql://postgres@127.0.0.1:5432/postgres", { JWT_SECRET: "too-short" });
    const r = await cli(["doctor", "--json"], env);
    assert.equal(r.code, 2, show(r));
    const doc = json<{ ok: boolean; checks: Check[] }>(r);
    assert.equal(doc.ok, false);
    const checks = new Map(doc.checks.map((c) => [c.name, c]));
    const config = checks.get("configuration")!;
    assert.equal(config.status, "fail");
    assert.match(config.detail, /JWT_SECRET: must be at least 32 bytes/);
    assert.match(config.fix ?? "", /set JWT_SECRET/);
    for (const name of ["database", "migrations", "clock", "xmpp"]) assert.equal(checks.get(name)!.status, "skip", name);

    const text = await cli(["doctor"], env);
    assert.equal(text.code, 2, show(text));
    assert.match(doctorRow(text.stdout, "configuration"), /^configuration\s+FAIL\s+JWT_SECRET: must be at least 32 bytes[\s\S]*fix: set JWT_SECRET/);
    assert.match(text.stdout, /1 check failed: configuration/);

    const help = await cli(["doctor", "--help"], {});
    assert.match(help.stdout.replace(/\s+/g, " "), /Exits 2 if the configuration check fails .*, 1 if another check fails/, show(help));
  });

  it("doctor fails when this host's clock is off from the database's", async () => {
    const { env } = await migrated();
    const dir = await mkdtemp(join(tmpdir(), "balcony-cli-clock-"));
    dirs.push(dir);
    const shift = join(dir, "clock-ahead.mjs");
    await writeFile(shift, "const real = Date.now; Date.now = () => real() + 10 * 60_000;\n");
    const off = await cli(["doctor", "--json"], env, pathToFileURL(shift).href);
    assert.equal(off.code, 1, show(off));
    const clock = checksOf(off).get("clock")!;
    assert.equal(clock.status, "fail");
    assert.match(clock.detail, /the database.s clock is (599|600)\d{3} ms behind this host.s/);
    assert.match(clock.fix ?? "", /NTP/);
    const tolerant = checksOf(await cli(["doctor", "--json", "--max-clock-skew", "20m"], env, pathToFileURL(shift).href)).get("clock")!;
    assert.equal(tolerant.status, "ok", JSON.stringify(tolerant));
  });

  it("start runs the gateway as src/server.ts does and stops cleanly on SIGTERM; a bad configuration exits 2", async () => {
    const db = await database();
    const env = await envFor(db.url);
    const child = spawnCli(["start"], env);
    const done = finish(child, 120_000);
    await until(async () => (await fetch(`http://127.0.0.1:${env.PORT}/readyz`).catch(() => null))?.status === 200, "the gateway ready", 60_000);
    assert.equal((await query(db.url, `SELECT 1 FROM "_prisma_migrations"`)).length, MIGRATIONS.length, "it migrated at start-up");
    child.kill("SIGTERM");
    const r = await done;
    assert.equal(r.code, 0, show(r));
    assert.equal(await portOpen(Number(env.PORT)), false);

    const bad = await cli(["start"], { ...env, XMPP_SECRET: "" });
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /configuration error: XMPP_SECRET: is required/);
  });

  it("without DATABASE_URL: the gateway's embedded PostgreSQL, running or not, and never a new one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "balcony-cli-embedded-"));
    dirs.push(dir);
    await chmod(dir, 0o755); // the embedded PostgreSQL runs as the postgres user
    const env = await envFor("", { DATA_DIR: join(dir, "data"), EMBEDDED_PG_PORT: String(await freePort()) });
    delete env.DATABASE_URL;

    const none = await cli(["accounts", "list", "--json"], env);
    assert.equal(none.code, 1, show(none));
    assert.equal(json<{ error: { code: string } }>(none).error.code, "no-database");
    await assert.rejects(stat(join(dir, "data")), "nothing was created");

    const gateway = spawnCli(["start"], env);
    const stopped = finish(gateway, 120_000);
    await until(async () => (await fetch(`http://127.0.0.1:${env.PORT}/readyz`).catch(() => null))?.status === 200, "the gateway ready", 90_000);
    const added = await cli(["accounts", "add", "romeo"], env); // the gateway's running PostgreSQL
    assert.equal(added.code, 0, show(added));
    gateway.kill("SIGTERM");
    const stop = await stopped;
    assert.equal(stop.code, 0, show(stop));
    assert.equal(await portOpen(Number(env.EMBEDDED_PG_PORT)), false, "the embedded PostgreSQL stopped with the gateway");

    const listed = await cli(["accounts", "list", "--json"], env); // started for the command, stopped after
    assert.equal(listed.code, 0, show(listed));
    assert.deepEqual(json<{ accounts: { jid: string }[] }>(listed).accounts.map((a) => a.jid), [`romeo@${server.componentDomain}`]);
    assert.match(listed.stderr, /starting the embedded PostgreSQL/);
    assert.equal(await portOpen(Number(env.EMBEDDED_PG_PORT)), false, "and stopped again after the command");
  });

  it("colour only on a terminal (and not with NO_COLOR)", async () => {
    const { env } = await migrated();
    const command = ["node", "--import", "tsx", "src/cli.ts", "migrate"].join(" ");
    const onTty = (extra: Env) =>
      finish(spawn("script", ["-qec", command, "/dev/null"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", TERM: "xterm-256color", ...env, ...extra }, stdio: ["ignore", "pipe", "pipe"] }));
    const tty = await onTty({});
    assert.equal(tty.code, 0, show(tty));
    assert.match(tty.stdout, /up to date/);
    assert.match(tty.stdout, ANSI, "coloured on a terminal");
    const noColor = await onTty({ NO_COLOR: "1" });
    assert.match(noColor.stdout, /up to date/);
    assert.doesNotMatch(noColor.stdout, ANSI, "NO_COLOR is honoured");
    const piped = await cli(["migrate"], env);
    assert.doesNotMatch(piped.stdout, ANSI, "never in a pipe");
  });
});
