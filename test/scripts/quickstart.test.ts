// The README's first command, run as a newcomer would (demo mode): local Prosody, embedded
// PostgreSQL, migrations, the gateway, and a real XMPP user exchanging messages with it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { freePort } from "../../scripts/harness/ports.js";

interface Run {
  child: ChildProcess;
  out: () => string;
  exit: Promise<number | null>;
}

function runQuickstart(env: Record<string, string | undefined>, args: string[]): Run {
  // detached: its own process group, like a terminal's foreground job.
  const child = spawn("bash", ["scripts/quickstart.sh", ...args], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => {
    const t = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 120_000);
    // "close": every process of the job has closed its output (the gateway logs after npm exits).
    child.on("close", (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  return { child, out: () => out, exit };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("quick start", () => {
  it("brings up Prosody, embedded PostgreSQL and the gateway, and shows a message round trip", async () => {
    const dir = await mkdtemp(join(tmpdir(), "balcony-qs-"));
    await chmod(dir, 0o755); // the embedded PostgreSQL runs as the postgres user
    try {
      const env: Record<string, string | undefined> = { ...process.env, BALCONY_ENV_FILE: join(dir, "env"), DATA_DIR: join(dir, "data"), EMBEDDED_PG_PORT: String(await freePort()), PORT: String(await freePort()), LOG_LEVEL: "warn" };
      for (const k of ["DATABASE_URL", "XMPP_SERVICE", "XMPP_DOMAIN", "XMPP_SECRET", "JWT_SECRET"]) delete env[k];
      const child = spawn("bash", ["scripts/quickstart.sh", "--demo-only"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => child.kill("SIGKILL"), 120_000);
        child.on("exit", (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      assert.equal(code, 0, out);
      assert.match(out, /POST \/v1\/accounts \{"localpart":"romeo"\} -> 201/);
      assert.match(out, /Juliet received over XMPP: <message [^>]*from="romeo@gw\.localhost\/quickstart"/);
      assert.match(out, /event: message\n\s+data: \{.*"body":"Romeo, Romeo! Wherefore art thou Romeo\?"/);
      assert.match(out, /status "delivered"/);
      assert.match(out, /It works/);
      assert.match(out, /In a browser, as Romeo \(the demo page\): http:\/\/127\.0\.0\.1:\d+\/demo#token=eyJ[\w-]+\.[\w-]+\.[\w-]+$/m);
      // Each step is announced before it runs, with the time since the start; the gateway's start-up phases show under their step.
      const steps = [...out.matchAll(/^==> \[\s*(\d+\.\d)s\] (.*)$/gm)].map((m) => ({ at: Number(m[1]), text: m[2]! }));
      const order = [/^Loading Balcony/, /^Writing .* with fresh secrets/, /^Starting a local Prosody/, /^Starting Balcony with an embedded PostgreSQL/, /^Creating the account romeo@/, /^Demo 1\/4/, /^Demo 2\/4: Romeo sends Juliet a message/, /^Demo 3\/4/, /^Demo 4\/4/, /^Try it yourself/, /^Stopping Balcony/];
      assert.deepEqual(
        order.map((re) => steps.findIndex((s) => re.test(s.text))),
        order.map((_, i) => i),
        `every step, in order:\n${steps.map((s) => s.text).join("\n")}`,
      );
      assert.ok(
        steps.every((s, i) => i === 0 || s.at >= steps[i - 1]!.at),
        "elapsed times only grow",
      );
      const startup = out.slice(out.indexOf("Starting Balcony with an embedded PostgreSQL"), out.indexOf("Creating the account"));
      for (const line of [/^ {4}starting the embedded PostgreSQL/m, /^ {4}embedded PostgreSQL started \(.*\d+ ms\)$/m, /^ {4}applying database migrations$/m, /^ {4}database migrations applied \(applied: \d+, \d+ ms\)$/m, /^ {4}connecting to XMPP server \(service: xmpp:/m, /^ {4}component connected \(\d+ ms\)$/m]) {
        assert.match(startup, line, "the start-up phases, under their step");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Found by the docs audit of stop 64: a terminal's Ctrl-C reached the embedded PostgreSQL and
// Prosody with the gateway (one process group), and the harness's handler ended the process before
// the gateway closed; a second run's demo showed an older event of the account (message-update) as
// Juliet's answer.
describe("quick start, run again after trying the API tour", () => {
  let dir: string;
  let env: Record<string, string | undefined>;
  let firstOut = "";
  let firstCode: number | null = null;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "balcony-qs-audit-"));
    await chmod(dir, 0o755);
    env = { ...process.env, BALCONY_ENV_FILE: join(dir, "env"), DATA_DIR: join(dir, "data"), EMBEDDED_PG_PORT: String(await freePort()), PORT: String(await freePort()), LOG_LEVEL: "warn" };
    for (const k of ["DATABASE_URL", "XMPP_SERVICE", "XMPP_DOMAIN", "XMPP_SECRET", "JWT_SECRET"]) delete env[k];
    const first = runQuickstart(env, []);
    await until(() => first.out().includes("Balcony keeps running"), 110_000, "the first run to be up");
    const out = first.out();
    const B = /export B=(\S+)/.exec(out)![1]!;
    const ROMEO = /export ROMEO=(\S+)/.exec(out)![1]!;
    // API tour, "Message features": react to Juliet's message.
    const hist = (await (await fetch(`${B}/v1/messages?with=juliet@localhost`, { headers: { authorization: `Bearer ${ROMEO}` } })).json()) as { items: { id: string; direction: string }[] };
    const msg = hist.items.find((m) => m.direction === "in")!.id;
    const r = await fetch(`${B}/v1/messages/${msg}/reactions`, { method: "POST", headers: { authorization: `Bearer ${ROMEO}`, "content-type": "application/json" }, body: JSON.stringify({ emojis: ["👍"] }) });
    assert.equal(r.status, 200);
    // Ctrl-C in the terminal: SIGINT to the foreground process group.
    process.kill(-first.child.pid!, "SIGINT");
    firstCode = await first.exit;
    firstOut = first.out();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("Ctrl-C stops it cleanly: Balcony closes before its PostgreSQL and Prosody go, with no warnings", () => {
    assert.equal(firstCode, 0, firstOut);
    const stopping = firstOut.slice(firstOut.indexOf("Balcony keeps running"));
    assert.doesNotMatch(stopping, /warn:/, `warnings while stopping:\n${stopping}`);
  });

  it("the second run's demo shows Juliet's answer on Romeo's stream, not an older event of the account", async () => {
    const second = runQuickstart(env, ["--demo-only"]);
    const code = await second.exit;
    const out = second.out();
    assert.equal(code, 0, out);
    const shown = out.slice(out.indexOf("Romeo's SSE stream"), out.indexOf("Demo 4/4"));
    assert.match(shown, /event: message\n\s+data: \{.*"body":"Romeo, Romeo! Wherefore art thou Romeo\?"/, `the demo printed as Juliet's answer:\n${shown}`);
  });
});

// Found by the docs audit of stop 64: with PORT in use, the quick start printed the clear one-line
// reason and then a stack trace under it.
describe("quick start, its port in use", () => {
  it("says so in one line, with no stack, and exits 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "balcony-qs-port-"));
    await chmod(dir, 0o755);
    const busy = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => busy.listen(port, "127.0.0.1", resolve));
    try {
      const env: Record<string, string | undefined> = { ...process.env, BALCONY_ENV_FILE: join(dir, "env"), DATA_DIR: join(dir, "data"), EMBEDDED_PG_PORT: String(await freePort()), PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" };
      for (const k of ["DATABASE_URL", "XMPP_SERVICE", "XMPP_DOMAIN", "XMPP_SECRET", "JWT_SECRET"]) delete env[k];
      const run = runQuickstart(env, ["--demo-only"]);
      const code = await run.exit;
      const out = run.out();
      assert.equal(code, 1, out);
      assert.match(out, new RegExp(`quickstart failed: PORT ${port} on HOST 127\\.0\\.0\\.1 is in use \\(EADDRINUSE\\)`), out);
      assert.doesNotMatch(out, /^\s+at /m, `a stack trace:\n${out}`);
    } finally {
      busy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
