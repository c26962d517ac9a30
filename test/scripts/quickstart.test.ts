// The README's first command, run as a newcomer would (demo mode): local Prosody, embedded
// PostgreSQL, migrations, the gateway, and a real XMPP user exchanging messages with it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/harness/ports.js";

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
