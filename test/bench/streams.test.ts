// bench/streams.ts in --smoke mode: starts its own Postgres database, Prosody and gateway process,
// opens a few hundred streams, idles, fans one event out, prints its table and cleans up.
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

it("bench/streams.ts --smoke prints every figure beside its target and completes without loss", { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/streams.ts", "--smoke", "--timeout", "55"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  assert.equal(code, 0, `exit code ${code}\n${out}\n${err}`);
  for (const figure of [
    /open rate, reconnect .* streams\/s +>= 2,000 streams\/s/,
    /gateway RSS per stream, first open \(after a full GC\) +-?[\d.,]+ KiB .* <= 16 KiB/,
    /JS heap \/ external per stream, first open; after reconnect +-?[\d.,]+ \/ -?[\d.,]+ KiB; -?[\d.,]+ \/ -?[\d.,]+ KiB/,
    /gateway CPU, idle .*% of a core +< 2% of a core/,
    /gateway CPU, idle, per 5 s slice: median \/ max +[\d.,]+% \/ [\d.,]+% of a core, 1 slice\(s\)/,
    // Not zero: the heartbeats (1 s in --smoke) alone wake it.
    /gateway wake-ups, idle \(its main thread's sleeps\) +[1-9][\d.,]* a second/,
    /V8 collections in the window: memory reducer \/ other full \/ young \(main-thread ms\) +\d+ \(\d+ ms\) \/ \d+ \(\d+ ms\) \/ \d+ \(\d+ ms\)/,
    /Postgres CPU .*% of a core/,
    /one event to 100 streams of one account: all have it after +[\d.,]+ ms \(100\/100\)/,
    /duplicates \/ events on other accounts' streams +0 \/ 0/,
    // Stored by the one instance there is, which hands it to its streams: no read at all.
    /event-log reads by the gateway for it +0 +<= 1 per instance/,
    /streams still open at the end +200 +200/,
  ])
    assert.match(out, figure);
  assert.match(out, /^result: completed without loss$/m);
});
