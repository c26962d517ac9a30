// One row of the message benchmark: a sender's throughput runs (median of --runs) and its run at
// a fixed arrival rate (latency, CPU by process group), each message matched with its arrival at
// the receiving XMPP user.
import { checkAborted, isAborting } from "./lifecycle.js";
import { cpuSnapshot, cpuSplit, type CpuContext, type CpuSplit } from "./cpu.js";
import { matchDeliveries, type Receiver } from "./receiver.js";
import type { SendOutcome, Sender } from "./senders.js";
import { bodyText, fmtInt, fmtMs, log, median, monoUs, stats, type LatencyStats } from "./util.js";

export interface Run {
  messages: number;
  accepted: number;
  /** Messages the sender did not get accepted (non-2xx answers, connection errors). */
  refused: number;
  delivered: number;
  lost: number;
  duplicates: number;
  strays: number;
  /** First start → last arrival. */
  seconds: number;
  /** Delivered / seconds. */
  msgsPerSec: number;
  /** POST start (stanza write for the component) → arrival at the XMPP user. */
  latencyMs: LatencyStats;
  /** Request start → HTTP answer (none for the component). */
  answerMs: LatencyStats;
  outcomes: Record<string, number>;
  sampleError: string | undefined;
}

export interface FixedRateRun extends Run {
  rate: number;
  /** How far behind schedule the load generator started a message, at worst. */
  maxLagMs: number;
  cpu: CpuSplit;
}

export interface RowSettings {
  messages: number;
  runs: number;
  warmup: number;
  concurrency: number;
  /** 0: no fixed-rate run. */
  rate: number;
  rateMessages: number;
  lossTimeoutMs: number;
}

export interface Measured {
  runs: Run[];
  /** Median over runs. */
  msgsPerSec: number;
  fixedRate: FixedRateRun | null;
  /** When the throughput runs (after the warm-up) and the fixed-rate run took place, bench clock µs (for --cpu-prof). */
  windows: { runs: [number, number]; rate: [number, number] | null };
}

let runCounter = 0;

/** Fresh, globally unique message bodies for one run. */
function bodies(tag: string, n: number): string[] {
  const runTag = `${tag}-${++runCounter}`;
  return Array.from({ length: n }, (_, i) => bodyText(runTag, i));
}

async function collect(
  receiver: Receiver,
  lossTimeoutMs: number,
  send: () => Promise<SendOutcome>,
  messages: number,
): Promise<Run & { maxLagMs: number }> {
  await receiver.take(); // anything left over from before belongs to no run
  const o = await send();
  await receiver.waitFor(o.accepted.size, lossTimeoutMs);
  const d = matchDeliveries(o.accepted, await receiver.take(), o.firstStart);
  const seconds = (d.lastArrival - o.firstStart) / 1000;
  return {
    messages,
    accepted: d.accepted,
    refused: messages - d.accepted,
    delivered: d.delivered,
    lost: d.lost,
    duplicates: d.duplicates,
    strays: d.strays,
    seconds,
    msgsPerSec: seconds > 0 ? d.delivered / seconds : NaN,
    latencyMs: stats(d.latencies),
    answerMs: stats(o.answerMs),
    outcomes: o.outcomes,
    sampleError: o.sampleError,
    maxLagMs: o.maxLagMs,
  };
}

/** Warm-up, `runs` throughput runs, then the fixed-rate run with CPU accounting. */
export async function measure(label: string, tag: string, sender: Sender, receiver: Receiver, s: RowSettings, cpuCtx: CpuContext): Promise<Measured> {
  if (s.warmup > 0) {
    log(`${label}: warm-up, ${s.warmup} messages`);
    await collect(receiver, s.lossTimeoutMs, () => sender.throughput(bodies(`${tag}-warm`, s.warmup), s.concurrency), s.warmup);
  }
  const runs: Run[] = [];
  const runsFrom = monoUs();
  for (let r = 1; r <= s.runs; r++) {
    checkAborted();
    const { maxLagMs: _, ...run } = await collect(receiver, s.lossTimeoutMs, () => sender.throughput(bodies(tag, s.messages), s.concurrency), s.messages);
    runs.push(run);
    log(`${label}: run ${r}/${s.runs}: ${fmtInt(run.msgsPerSec)} msg/s (${run.delivered}/${run.messages} delivered${run.lost ? `, ${run.lost} lost` : ""}${run.refused ? `, ${run.refused} refused` : ""})`);
    if (run.accepted === 0) break; // refused everything: more runs say nothing new
  }
  const windows: Measured["windows"] = { runs: [runsFrom, monoUs()], rate: null };
  let fixedRate: FixedRateRun | null = null;
  if (s.rate > 0 && !isAborting()) {
    checkAborted();
    log(`${label}: ${s.rateMessages} messages at ${s.rate} msg/s (open loop)`);
    const before = cpuSnapshot(cpuCtx);
    const rateFrom = monoUs();
    const run = await collect(receiver, s.lossTimeoutMs, () => sender.fixedRate(bodies(`${tag}-rate`, s.rateMessages), s.rate), s.rateMessages);
    windows.rate = [rateFrom, monoUs()];
    fixedRate = { ...run, rate: s.rate, cpu: cpuSplit(before, cpuSnapshot(cpuCtx)) };
    log(`${label}: at ${s.rate}/s p50 ${fmtMs(run.latencyMs.p50)} ms, p99 ${fmtMs(run.latencyMs.p99)} ms`);
  }
  return { runs, msgsPerSec: median(runs.map((r) => r.msgsPerSec)), fixedRate, windows };
}
