// LOG_LEVEL (src/config.ts): validated at start-up like every other setting, so a bad one ends the
// process with exit code 2 and a message naming it, not a pino stack trace later.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../src/config.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const load = (extra: Record<string, string>) => loadConfig({ JWT_SECRET: "x".repeat(32), XMPP_SECRET: "s", ...extra });

describe("LOG_LEVEL", () => {
  it("takes pino's levels, info by default", () => {
    assert.equal(load({}).logLevel, "info");
    for (const level of ["fatal", "error", "warn", "info", "debug", "trace", "silent"]) assert.equal(load({ LOG_LEVEL: level }).logLevel, level);
  });

  it("refuses anything else with a ConfigError naming LOG_LEVEL", () => {
    for (const bad of ["verbose", "INFO", "warning", "10"]) {
      assert.throws(
        () => load({ LOG_LEVEL: bad }),
        (err: unknown) => err instanceof ConfigError && err.variable === "LOG_LEVEL" && err.message.startsWith("LOG_LEVEL: ") && err.message.includes(`"${bad}"`),
        bad,
      );
    }
  });

  it("a bad one stops src/server.ts with exit code 2 and `configuration error: LOG_LEVEL: …`", async () => {
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", JWT_SECRET: "x".repeat(32), XMPP_SECRET: "s", LOG_LEVEL: "verbose",
      // Nowhere: should it get past the configuration, it must not start an embedded PostgreSQL.
      DATABASE_URL: "postgres://127.0.0.1:1/none" };
    const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /configuration error: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/);
  });
});
