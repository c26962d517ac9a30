// bench/webhooks.ts with tiny numbers (3 accounts, 200 messages, 1 s at 50/s through a real
// Prosody, a real gateway process, PostgreSQL and a real receiver process): it exits 0 and prints
// its table with every figure a number beside its ceiling/reference and ratio, and no delivery
// lost or duplicated. The figures themselves are not judged: on a shared 2-core machine they are noise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { figureTable, num, runBench as run } from "./run-bench.js";

const TIMEOUT_MS = 150_000;

const runBench = (args: string[]) => run("bench/webhooks.ts", args, TIMEOUT_MS);

describe("bench/webhooks.ts with tiny numbers", () => {
  it("prints throughput, CPU and latency beside the ceiling and reference, with nothing lost", { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const { code, stdout, stderr } = await runBench(["--accounts", "3", "--messages", "200", "--rate", "50", "--seconds", "1", "--warmup", "30"]);
    assert.equal(code, 0, `exit ${code}\n${stderr.slice(-3000)}`);
    const row = figureTable(stdout);

    // Figures compared with the same run's ceiling/reference: all three cells are positive numbers.
    for (const prefix of ["throughput, deliveries/s (3 accounts, 200 messages)", "stanza → webhook p50, ms (50/s)", "stanza → webhook p99, ms (50/s)", "stanza → webhook max, ms (50/s)"]) {
      const cells = row(prefix);
      for (const [i, cell] of cells.entries()) assert.ok(num(cell) > 0, `${prefix}: cell ${i} is "${cell}"`);
    }
    // The ratio is the value over the ceiling/reference (to the printed precision).
    const [tput, ceiling, ratio] = row("throughput, deliveries/s").map(num);
    assert.ok(Math.abs(tput! / ceiling! - ratio!) < 0.02 + 0.01 * ratio!, `ratio ${ratio} vs ${tput}/${ceiling}`);

    for (const prefix of ["gateway CPU per delivery, ms", "Postgres CPU per delivery, ms"]) {
      const value = num(row(prefix)[0]);
      assert.ok(value >= 0 && Number.isFinite(value), `${prefix}: "${row(prefix)[0]}"`);
    }
    // The gateway does real work for every delivery: its CPU per delivery cannot be zero.
    assert.ok(num(row("gateway CPU per delivery, ms")[0]) > 0);

    assert.deepEqual(row("deliveries lost").slice(0, 2), ["0", "0"], "Balcony lost deliveries, or the ceiling/SSE lost requests");
    assert.equal(row("deliveries duplicated")[0], "0");
    assert.match(stdout, /Throughput: 200\/200 delivered/);
    assert.match(stdout, /Latency run: 50\/50 delivered, SSE 17\/17/);
  });
});
