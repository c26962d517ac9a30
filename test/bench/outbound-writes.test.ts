// bench/outbound-writes.ts still runs and reports what it promises: its --smoke mode with --json,
// in bounded time. Figures are not judged against each other here (a shared machine says little
// about them); their presence, sanity and the ratios' arithmetic are.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runBench as run } from "./run-bench.js";

const LIMIT_MS = 120_000;
const SCENARIOS = [
  "floor, 1 per statement",
  "Balcony, 1 per statement",
  "floor, 1 per statement, 2 ms apart",
  "Balcony, 1 per statement, 2 ms apart",
  "floor, 1,000 per statement",
  "Balcony, 1,000 per statement",
];
/** --parts: the paced write with parts of its statement cut out, each beside the paced floor. */
const PARTS = [
  "without its conversation upsert",
  "without its queue row",
  "without its checks",
  "without its count ahead",
  "with those and its dequeue cut",
  "without conversation's last_seq index (fillfactor 50: HOT)",
].map((p) => `Balcony ${p}, 1 per statement, 2 ms apart`);

describe("bench/outbound-writes.ts --smoke --parts --json", () => {
  it("prints PostgreSQL's CPU per message for each write beside its floor", { timeout: LIMIT_MS + 10_000 }, async () => {
    const { code, stdout, stderr } = await run("bench/outbound-writes.ts", ["--smoke", "--parts", "--json"], LIMIT_MS, "fail");
    assert.equal(code, 0, `exit code ${code}\n${stderr}`);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 1, `stdout is one JSON document:\n${stdout}`);
    const r = JSON.parse(lines[0]!) as Record<string, { pgUs: number; wallUs: number; perRound: number[]; ratio: number }> & { pacedOverBackToBack: number };
    for (const name of SCENARIOS) {
      const f = r[name];
      assert.ok(f, `${name} reported: ${lines[0]}`);
      assert.ok(Number.isFinite(f.pgUs) && f.pgUs > 0 && f.pgUs < 100_000, `${name}: ${JSON.stringify(f)}`);
      assert.ok(Number.isFinite(f.wallUs) && f.wallUs > 0, `${name}: ${JSON.stringify(f)}`);
      assert.equal(f.perRound.length, 1, `${name}: one round in --smoke`);
      const floor = r[name.replace("Balcony", "floor")]!.pgUs;
      assert.ok(Math.abs(f.ratio - f.pgUs / floor) < 1e-9, `${name}: the ratio is to its own floor`);
    }
    for (const name of PARTS) {
      const f = r[name];
      assert.ok(f, `${name} reported: ${lines[0]}`);
      assert.ok(Number.isFinite(f.pgUs) && f.pgUs > 0 && f.pgUs < 100_000 && f.wallUs >= 2000, `${name}: ${JSON.stringify(f)}`);
      assert.ok(Math.abs(f.ratio - f.pgUs / r["floor, 1 per statement, 2 ms apart"]!.pgUs) < 1e-9, `${name}: the ratio is to the paced floor`);
    }
    // The paced rows pause between statements: their wall time per message is at least the gap.
    for (const name of SCENARIOS.filter((n) => n.endsWith("2 ms apart"))) assert.ok(r[name]!.wallUs >= 2000, `${name}: ${JSON.stringify(r[name])}`);
    assert.ok(Math.abs(r.pacedOverBackToBack - r["floor, 1 per statement, 2 ms apart"]!.pgUs / r["floor, 1 per statement"]!.pgUs) < 1e-9, `the wake-up ratio is the paced floor's over the floor's: ${lines[0]}`);
    assert.ok(stderr.includes("PostgreSQL CPU per accepted message"), stderr);
  });
});
