// bench/heartbeats.ts still runs and reports what it promises: its --smoke mode with --json, in
// bounded time (it fails by itself unless the client received every heartbeat). Figures are not
// judged against each other here (a shared machine says little about them); their presence,
// sanity and the ratios' arithmetic are.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runBench as run } from "./run-bench.js";

const LIMIT_MS = 60_000;
const WAYS = ["floor", "Balcony", "res.write"];

describe("bench/heartbeats.ts --smoke --json", () => {
  it("prints the CPU of one heartbeat written each way beside the floor", { timeout: LIMIT_MS + 10_000 }, async () => {
    const { code, stdout, stderr } = await run("bench/heartbeats.ts", ["--smoke", "--json"], LIMIT_MS, "fail");
    assert.equal(code, 0, `exit code ${code}\n${stderr}`);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 1, `stdout is one JSON document:\n${stdout}`);
    const r = JSON.parse(lines[0]!) as Record<string, { us: number; ratio: number; core: number; perRound: number[] }>;
    assert.deepEqual(Object.keys(r), WAYS);
    for (const way of WAYS) {
      const f = r[way]!;
      assert.ok(Number.isFinite(f.us) && f.us > 0 && f.us < 100_000, `${way}: ${JSON.stringify(f)}`);
      assert.equal(f.perRound.length, 2, `${way}: two rounds in --smoke`);
      assert.ok(Math.abs(f.ratio - f.us / r.floor!.us) < 1e-9, `${way}: the ratio is to the floor`);
      assert.ok(Math.abs(f.core - (f.us * 10_000) / 15 / 1e6) < 1e-12, `${way}: the share of a core is 10,000 streams at one per 15 s`);
    }
    assert.ok(stderr.includes("Heartbeat CPU per write"), stderr);
  });
});
