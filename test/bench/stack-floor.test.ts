// bench/stack-floor.ts still runs and reports what it promises: its --smoke mode with --json, in
// bounded time (it fails by itself unless every request was answered 202 and the stanza row wrote
// to its sink). Figures are not judged against each other here (a shared machine says little
// about them); their presence and sanity are.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runBench as run } from "./run-bench.js";

const LIMIT_MS = 60_000;
const MODES = ["bare", "insert", "insert+stanza"];

describe("bench/stack-floor.ts --smoke --json", () => {
  it("prints the CPU per request and the answer latency of each row", { timeout: LIMIT_MS + 10_000 }, async () => {
    const { code, stdout, stderr } = await run("bench/stack-floor.ts", ["--smoke", "--json"], LIMIT_MS, "fail");
    assert.equal(code, 0, `exit code ${code}\n${stderr}`);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 1, `stdout is one JSON document:\n${stdout}`);
    const r = JSON.parse(lines[0]!) as Record<string, { cpuMs: number; p50: number; p99: number }>;
    assert.deepEqual(Object.keys(r), MODES);
    for (const mode of MODES) {
      const f = r[mode]!;
      assert.ok(Number.isFinite(f.cpuMs) && f.cpuMs > 0 && f.cpuMs < 1000, `${mode}: ${JSON.stringify(f)}`);
      assert.ok(f.p50 > 0 && f.p50 <= f.p99, `${mode}: ${JSON.stringify(f)}`);
    }
    assert.ok(stderr.includes("Stack floor"), stderr);
  });
});
