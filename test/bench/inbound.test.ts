// bench/inbound.ts in smoke mode (a few hundred messages through a real Prosody, a real gateway
// process and PostgreSQL, then an SSE client): the figures it reports are all there, and nothing
// was lost, duplicated, reordered or skipped, on the gateway's side or on the ceiling's. The
// targets (p99, throughput ratio) are not asserted: on a shared 2-core machine they are noise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AllocSummary } from "../../bench/lib/alloc.js";
import type { StallSummary } from "../../bench/lib/loop-stalls.js";
import { runBench as run } from "./run-bench.js";

const TIMEOUT_MS = 150_000;

interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

interface Run {
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  reordered: number;
  strays: number;
  seqBreaks: number | null;
  seconds: number;
  msgsPerSec: number;
  latencyMs: Latency;
  cpu: { seconds: number; cores: Record<string, number>; sleeps: Record<string, number> };
}

interface Side {
  throughput: Run;
  fixedRate: Run;
}

interface Report {
  params: { messages: number; rate: number; rateMessages: number; smoke: boolean };
  ceiling: Side | null;
  balcony: Side;
  ratio: number | null;
  targets: { name: string; value: number; target: number; pass: boolean }[];
  stalls: StallSummary | null;
  alloc: AllocSummary | null;
}

const runBench = (args: string[]) => run("bench/inbound.ts", args, TIMEOUT_MS);

const finite = (x: unknown) => typeof x === "number" && Number.isFinite(x);

/** Every figure of a run is a number, and every stanza sent arrived exactly once, in order. */
function checkRun(where: string, r: Run | undefined, sse: boolean): void {
  assert.ok(r, `${where}: missing`);
  for (const k of ["sent", "delivered", "lost", "duplicates", "reordered", "strays", "seconds", "msgsPerSec"] as const) {
    assert.ok(finite(r[k]), `${where}.${k} is not a number: ${String(r[k])}`);
  }
  for (const k of ["p50", "p90", "p99", "max", "mean"] as const) assert.ok(finite(r.latencyMs?.[k]) && r.latencyMs[k] >= 0, `${where}.latencyMs.${k}: ${String(r.latencyMs?.[k])}`);
  assert.ok(r.sent > 0, `${where}: nothing sent`);
  assert.ok(r.msgsPerSec > 0, `${where}: throughput ${r.msgsPerSec}`);
  assert.equal(r.lost, 0, `${where}: ${r.lost} of ${r.sent} lost`);
  assert.equal(r.delivered, r.sent, `${where}: ${r.delivered} of ${r.sent} arrived`);
  assert.equal(r.duplicates, 0, `${where}: ${r.duplicates} duplicates`);
  assert.equal(r.reordered, 0, `${where}: ${r.reordered} out of order`);
  assert.equal(r.strays, 0, `${where}: ${r.strays} strays`);
  if (sse) assert.equal(r.seqBreaks, 0, `${where}: ${String(r.seqBreaks)} gaps or repeats in the SSE ids`);
  assert.ok(r.cpu && finite(r.cpu.cores["whole machine"]), `${where}: no CPU figures`);
}

describe("bench/inbound.ts --smoke", () => {
  it("reports throughput, latency and CPU beside the ceiling, with nothing lost", { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const { code, stdout, stderr } = await runBench(["--smoke", "--json"]);
    assert.equal(code, 0, `exit ${code}\n${stderr.slice(-3000)}`);
    const line = stdout.trim().split("\n").pop() ?? "";
    let report: Report;
    try {
      report = JSON.parse(line) as Report;
    } catch {
      assert.fail(`no JSON report on stdout:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
    }
    assert.equal(report.params?.smoke, true);
    assert.ok(report.ceiling, "no ceiling in the report");
    checkRun("ceiling.throughput", report.ceiling.throughput, false);
    checkRun("ceiling.fixedRate", report.ceiling.fixedRate, false);
    checkRun("balcony.throughput", report.balcony?.throughput, true);
    checkRun("balcony.fixedRate", report.balcony?.fixedRate, true);
    assert.equal(report.balcony.throughput.sent, report.params.messages);
    assert.equal(report.balcony.fixedRate.sent, report.params.rateMessages);
    assert.ok(finite(report.balcony.fixedRate.cpu.cores.gateway), "no CPU figure for the gateway");
    // Each stanza wakes an idle gateway at the fixed rate: it slept.
    assert.ok(report.balcony.fixedRate.cpu.sleeps.gateway! > 0, `no wake-ups counted for the gateway: ${JSON.stringify(report.balcony.fixedRate.cpu.sleeps)}`);
    assert.ok(finite(report.ratio) && report.ratio! > 0, `ratio ${String(report.ratio)}`);
    const names = report.targets.map((t) => t.name);
    assert.deepEqual(names, [`p99 at ${report.params.rate}/s`, "throughput / ceiling"]);
    for (const t of report.targets) assert.ok(finite(t.value) && typeof t.pass === "boolean", `target ${t.name}: ${JSON.stringify(t)}`);
    // The table (stderr with --json) prints the targets with their verdict.
    assert.match(stderr, /Target p99 at \d+\/s: .* (PASS|FAIL)/);
    assert.equal(report.stalls, null, "no event-loop figures without --stalls");
    assert.equal(report.alloc, null, "no allocation figures without --alloc");
  });

  it("--stalls and --alloc: the gateway's event-loop gaps and collections against the fixed-rate run's slowest messages; what it allocated a message", { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const { code, stdout, stderr } = await runBench(["--smoke", "--json", "--skip-ceiling", "--stalls", "--alloc"]);
    assert.equal(code, 0, `exit ${code}\n${stderr.slice(-3000)}`);
    const report = JSON.parse(stdout.trim().split("\n").pop() ?? "") as Report;
    checkRun("balcony.fixedRate", report.balcony?.fixedRate, true);
    const st = report.stalls;
    assert.ok(st, `no stalls in the report: ${JSON.stringify(report).slice(0, 500)}`);
    assert.equal(st.loaded, true, "the probe was loaded into the gateway (its start line)");
    // At or over p99: at least 1% of the run, and never more than it sent.
    assert.ok(st.slow >= Math.ceil(report.params.rateMessages / 100) && st.slow <= report.params.rateMessages, `slow ${st.slow} of ${report.params.rateMessages}`);
    for (const k of ["gaps", "gcs", "slowDuringGap", "slowDuringGc"] as const) assert.ok(Number.isInteger(st[k]) && st[k] >= 0, `${k}: ${st[k]}`);
    assert.ok(st.slowDuringGap <= st.slow && st.slowDuringGc <= st.slow, JSON.stringify(st));
    assert.ok(finite(st.gcMs) && st.gcMs >= 0, `gcMs ${st.gcMs}`);
    if (st.gaps > 0) assert.ok(st.gapMsP50 > 5 && st.gapMsMax >= st.gapMsP50 && st.gapOnCpu >= 0, JSON.stringify(st));
    assert.match(stderr, /of the \d+ messages at or over p99, \d+ were in flight during a gap, \d+ during a collection/);

    // Allocations: over the fixed-rate run's messages, some of them by the gateway's own files.
    const alloc = report.alloc;
    assert.ok(alloc, "no allocation figures with --alloc");
    assert.equal(alloc.messages, report.params.rateMessages);
    // A message is parsed, stored and streamed: kilobytes, not bytes (nor megabytes).
    assert.ok(finite(alloc.kbPerMessage) && alloc.kbPerMessage > 1 && alloc.kbPerMessage < 1000, `KB a message: ${alloc.kbPerMessage}`);
    assert.ok(alloc.byFile.length > 0 && alloc.byFile.every((e) => e.kbPerMessage > 0 && e.kbPerMessage <= alloc.kbPerMessage), JSON.stringify(alloc.byFile));
    assert.ok(alloc.byFile.some((e) => e.name.startsWith("src/")), `none of the gateway's files among ${JSON.stringify(alloc.byFile)}`);
    assert.match(stderr, /allocated by the gateway .*: [\d.]+ KB a message over \d+ messages/);
  });
});
