// bench/inbound.ts --stalls: what bench/lib/loop-probe.mjs recorded in the gateway, set against a
// run's slowest messages. Pure, so it is tested without a run (test/bench/loop-stalls.test.ts).
import { stats } from "./util.js";

/** The last run's span (first write → last arrival) and its messages at or over its p99 (write → arrival), for --stalls. */
export interface RunWindows {
  span: [number, number];
  slow: [number, number][];
}

export interface StallSummary {
  /** The probe wrote its first line: it was loaded. */
  loaded: boolean;
  /** Event-loop gaps over 4 ms in the run's span, their median and longest, and the share of their time the process was on a CPU. */
  gaps: number;
  gapMsP50: number;
  gapMsMax: number;
  gapOnCpu: number;
  /** Collections in the span, and their time. */
  gcs: number;
  gcMs: number;
  /** Messages at or over the run's p99, and how many of them were in flight during a gap, during a collection. */
  slow: number;
  slowDuringGap: number;
  slowDuringGc: number;
}

/** Reads bench/lib/loop-probe.mjs's records and sets them against the run's slowest messages. */
export function summarizeStalls(text: string, w: RunWindows): StallSummary {
  const records = text.split("\n").map((l) => l.split(" "));
  const inSpan = (start: number, ms: number) => start <= w.span[1] && start + ms >= w.span[0];
  const gaps = records.filter((r) => r[0] === "gap").map((r) => ({ start: Number(r[1]), ms: Number(r[2]), cpu: Number(r[3]) })).filter((g) => inSpan(g.start, g.ms));
  const gcs = records.filter((r) => r[0] === "gc").map((r) => ({ start: Number(r[1]), ms: Number(r[2]) })).filter((g) => inSpan(g.start, g.ms));
  const during = (spans: { start: number; ms: number }[]) => w.slow.filter(([sent, arrived]) => spans.some((g) => g.start <= arrived && g.start + g.ms >= sent)).length;
  const gapMs = stats(gaps.map((g) => g.ms));
  const total = gaps.reduce((a, g) => a + g.ms, 0);
  return {
    loaded: records.some((r) => r[0] === "start"),
    gaps: gaps.length,
    gapMsP50: gapMs.p50,
    gapMsMax: gapMs.max,
    gapOnCpu: total > 0 ? gaps.reduce((a, g) => a + g.cpu, 0) / total : NaN,
    gcs: gcs.length,
    gcMs: gcs.reduce((a, g) => a + g.ms, 0),
    slow: w.slow.length,
    slowDuringGap: during(gaps),
    slowDuringGc: during(gcs),
  };
}
