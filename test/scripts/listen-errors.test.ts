// HOST and PORT as the operator gets them wrong, on real processes (`node src/server.ts` through
// tsx, and `balcony start`) against a real PostgreSQL and Prosody: nonsense in HOST stops the start
// at the configuration (exit 2) before the migrations; a listener that cannot start (the port in
// use, an address this machine does not have, a name that does not resolve) is one line naming HOST
// and PORT, exit 1, no stack; and the gateway lets go of what it opened, so that a process that does
// not exit (one embedding startGateway) ends by itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, JWT_SECRET, startGatewayProcess } from "../../scripts/harness/gateway-process.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From the first byte on stdout to the exit. */
  afterOutputMs: number;
}

function runNode(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let firstOutput = 0;
  child.stdout.on("data", (d: Buffer) => ((firstOutput ||= performance.now()), (stdout += d.toString())));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, afterOutputMs: firstOutput ? performance.now() - firstOutput : NaN });
    });
  });
}

const show = (r: Run) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The lines on stderr that are not the gateway's JSON logs (LOG_LEVEL=warn: the link's retries). */
const ownLines = (stderr: string) => stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"));

describe("HOST and PORT errors", () => {
  let server: XmppServer;
  let db: TestDatabase;
  let busy: Server;
  let busyPort: number;
  let env: Record<string, string>;

  before(async () => {
    [server, db] = await Promise.all([startXmppServer("prosody"), createTestDatabase()]);
    busy = createServer();
    // A reserved port (scripts/harness/ports.ts), not port 0: the kernel could hand port 0's pick to
    // another test file's server meanwhile, one whose port is reserved but not yet bound.
    busyPort = await freePort();
    await new Promise<void>((resolve, reject) => busy.once("error", reject).listen(busyPort, "127.0.0.1", resolve));
    env = {
      DATABASE_URL: db.url,
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: server.componentDomain,
      XMPP_SECRET: server.componentSecret,
      JWT_SECRET,
      PORT: String(await freePort()),
      LOG_LEVEL: "warn",
    };
  });
  after(async () => {
    busy?.close();
    await db?.drop();
    await server?.stop();
  });

  it("a port in use: one line naming PORT and HOST, exit 1, no stack (src/server.ts and balcony start)", async () => {
    for (const args of [["src/server.ts"], ["src/cli.ts", "start"]]) {
      const r = await runNode(args, { ...env, PORT: String(busyPort) });
      assert.equal(r.code, 1, show(r));
      assert.deepEqual(ownLines(r.stderr), [`balcony: failed to start: PORT ${busyPort} on HOST 127.0.0.1 is in use (EADDRINUSE): stop what listens there, or set PORT to a free port`], show(r));
      assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /, "no stack");
    }
  });

  it("an address this machine does not have, a name that does not resolve: one line naming HOST, exit 1", async () => {
    const cases: [string, RegExp][] = [
      ["203.0.113.7", /^balcony: failed to start: HOST 203\.0\.113\.7 is not an address of this machine \(EADDRNOTAVAIL\): set HOST to one of its addresses/],
      ["nonexistent.invalid", /^balcony: failed to start: HOST nonexistent\.invalid does not resolve to an address \(ENOTFOUND\)/],
    ];
    for (const [host, line] of cases) {
      const r = await runNode(["src/server.ts"], { ...env, HOST: host });
      assert.equal(r.code, 1, show(r));
      const lines = ownLines(r.stderr);
      assert.equal(lines.length, 1, show(r));
      assert.match(lines[0]!, line, show(r));
    }
  });

  it("nonsense in HOST stops the start at the configuration, exit 2, before the migrations", async () => {
    const fresh = await createTestDatabase();
    try {
      for (const host of ["not..valid", "999.1.1.1", "[::1]", "http://127.0.0.1"]) {
        const r = await runNode(["src/server.ts"], { ...env, DATABASE_URL: fresh.url, HOST: host });
        assert.equal(r.code, 2, show(r));
        assert.match(r.stderr, /^balcony: configuration error: HOST: must be an IP address .* or a host name/, show(r));
        assert.doesNotMatch(r.stderr, /\n\s+at /);
      }
      const c = new pg.Client({ connectionString: fresh.url });
      await c.connect();
      const { rows } = await c.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
      await c.end();
      assert.deepEqual(rows, [{ t: null }], "nothing migrated: the start stopped before the database");
    } finally {
      await fresh.drop();
    }
  });

  it("startGateway lets go of the link, the lease and the database when the listen fails: a process that does not exit ends by itself", async () => {
    // As a program embedding the gateway (the tests, the quick start): it catches the error and returns.
    const script = `
      import { loadConfig } from "./src/config.js";
      import { startGateway } from "./src/gateway.js";
      try {
        await startGateway(loadConfig());
        console.log("started");
      } catch (err) {
        console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message }));
      }`;
    // Silent: stdout is the script's one line, and its first byte the moment of the error.
    const r = await runNode(["--input-type=module", "-e", script], { ...env, PORT: String(busyPort), LOG_LEVEL: "silent" }, 30_000);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(JSON.parse(r.stdout), {
      name: "ListenError",
      code: "EADDRINUSE",
      message: `PORT ${busyPort} on HOST 127.0.0.1 is in use (EADDRINUSE): stop what listens there, or set PORT to a free port`,
    });
    assert.ok(r.afterOutputMs < 1500, `the process ended ${Math.round(r.afterOutputMs)} ms after the error, nothing left open`);

    // And the component's only connection (Prosody) is free: a gateway started next holds the link.
    const next = await startGatewayProcess(server, db.url, await freePort());
    try {
      assert.equal(((await (await fetch(`${next.url}/readyz`)).json()) as { xmpp: string }).xmpp, "up");
    } finally {
      await next.stop();
    }
  });
});
