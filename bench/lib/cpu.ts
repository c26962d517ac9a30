// CPU accounting from /proc: who used the cores during a phase of a benchmark, by
// process group (the gateway process, the XMPP server's processes, PostgreSQL's backends of the
// benchmark's database, the rest of PostgreSQL, this process with its workers, everyone else),
// and how long each group's threads were ready to run but waited for a free core (the
// scheduler's run-queue wait, /proc/<pid>/task/*/schedstat): on two shared cores that wait, not
// the code, is where much of a tail latency goes.
import { execSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { now } from "./util.js";

const CLK_TCK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export const GROUPS = {
  gateway: "gateway",
  dbBackends: "postgres (bench DB backends)",
  dbRest: "postgres (rest of cluster)",
  bench: "bench (load generator + receiver)",
  others: "everything else",
  machine: "whole machine",
} as const;

export interface CpuContext {
  /** The XMPP server's kind: the name of its group. */
  serverKind: string;
  /** Every process whose command line contains it belongs to the XMPP server. */
  serverWorkDir: string;
  gatewayPid?: number | undefined;
  dbName?: string | undefined;
}

export interface CpuSnapshot {
  wall: number;
  /** pid → [group, ticks] */
  procs: Map<number, [string, number]>;
  /** pid → its threads' run-queue wait so far (nanoseconds), the times they were given a core and the times they went to sleep (this process: -1). */
  waits: Map<number, [number, number, number]>;
  bench: NodeJS.CpuUsage;
  systemBusy: number;
  systemTotal: number;
}

export interface CpuSplit {
  seconds: number;
  /** Cores used on average (CPU seconds / wall seconds), by group: 1.0 = one core. */
  cores: Record<string, number>;
  /** Run-queue wait of the group's threads, in milliseconds per second of wall time (summed over its processes and threads). */
  waits: Record<string, number>;
  /** The same wait per time one of them was given a core, in microseconds. */
  waitPerRun: Record<string, number>;
  /**
   * Times the group's threads went to sleep over the window (voluntary context switches, summed
   * over its processes and threads): each is a wake-up later, and on a VM a wake-up costs CPU of
   * its own, whatever the thread then does.
   */
  sleeps: Record<string, number>;
}

/** A thread's voluntary context switches, from its /proc status file. */
const VOLUNTARY = /^voluntary_ctxt_switches:\s+(\d+)$/m;

/**
 * A process's nanoseconds spent runnable but not running, its timeslices and its sleeps (voluntary
 * context switches), summed over its threads (an Erlang VM or a JVM works in threads other than
 * its main one); null if gone.
 */
function runQueueWait(pid: string): [number, number, number] | null {
  try {
    let ns = 0;
    let runs = 0;
    let sleeps = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      // "<on-cpu ns> <run-queue wait ns> <timeslices>" (Documentation/scheduler/sched-stats.rst).
      const f = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ");
      ns += Number(f[1]);
      runs += Number(f[2]);
      sleeps += Number(VOLUNTARY.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? 0);
    }
    return [ns, runs, sleeps];
  } catch {
    return null;
  }
}

function readProc(pid: string): { cmdline: string; comm: string; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // Fields after "(comm)": state is [0]; utime is field 14 of stat, i.e. [11]; stime [12].
    const ticks = Number(fields[11]) + Number(fields[12]);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    return { cmdline, comm, ticks };
  } catch {
    return null;
  }
}

/** CPU seconds a process has used so far (user and system time of all its threads); NaN once it is gone, so it never reads as idle. */
export function cpuSeconds(pid: number): number {
  const p = readProc(String(pid));
  return p ? p.ticks / CLK_TCK : NaN;
}

/**
 * How many times the process's main thread has gone to sleep (blocked waiting for something, its
 * voluntary context switches): what an idle process does is wake up, and each wake-up costs CPU
 * of its own on a VM. NaN once the process is gone.
 */
export function mainThreadSleeps(pid: number): number {
  try {
    const m = VOLUNTARY.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function groupOf(pid: number, p: { cmdline: string; comm: string }, ctx: CpuContext): string | null {
  if (pid === ctx.gatewayPid) return GROUPS.gateway;
  if (p.cmdline.includes(ctx.serverWorkDir)) return ctx.serverKind;
  if (p.comm === "postgres" || p.cmdline.startsWith("postgres")) {
    return ctx.dbName && p.cmdline.includes(ctx.dbName) ? GROUPS.dbBackends : GROUPS.dbRest;
  }
  return null;
}

export function cpuSnapshot(ctx: CpuContext): CpuSnapshot {
  const procs = new Map<number, [string, number]>();
  const waits = new Map<number, [number, number, number]>([[-1, runQueueWait("self") ?? [0, 0, 0]]]);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const p = readProc(entry);
    if (!p) continue;
    const group = groupOf(pid, p, ctx);
    if (!group) continue;
    procs.set(pid, [group, p.ticks]);
    const wait = runQueueWait(entry);
    if (wait !== null) waits.set(pid, wait);
  }
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { wall: now(), procs, waits, bench: process.cpuUsage(), systemBusy: total - idle, systemTotal: total };
}

export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const seconds = (b.wall - a.wall) / 1000;
  const cores: Record<string, number> = {};
  const waited: Record<string, [number, number]> = {};
  const sleeps: Record<string, number> = {};
  const addWait = (group: string, pid: number) => {
    const [ns, runs, slept] = b.waits.get(pid) ?? [0, 0, 0];
    // A process that began within the window counts from zero.
    const [ns0, runs0, slept0] = a.waits.get(pid) ?? [0, 0, 0];
    const w = (waited[group] ??= [0, 0]);
    w[0] += ns - ns0;
    w[1] += runs - runs0;
    sleeps[group] = (sleeps[group] ?? 0) + slept - slept0;
  };
  for (const [pid, [group, ticks]] of b.procs) {
    const before = a.procs.get(pid)?.[1] ?? 0;
    cores[group] = (cores[group] ?? 0) + (ticks - before) / CLK_TCK / seconds;
    if (b.waits.has(pid)) addWait(group, pid);
  }
  addWait(GROUPS.bench, -1);
  const waits: Record<string, number> = {};
  const waitPerRun: Record<string, number> = {};
  for (const [group, [ns, runs]] of Object.entries(waited)) {
    waits[group] = ns / 1e6 / seconds;
    waitPerRun[group] = runs > 0 ? ns / 1e3 / runs : 0;
  }
  const bench = process.cpuUsage(a.bench);
  cores[GROUPS.bench] = (bench.user + bench.system) / 1e6 / seconds;
  const share = (b.systemBusy - a.systemBusy) / Math.max(1, b.systemTotal - a.systemTotal);
  const ours = Object.values(cores).reduce((x, y) => x + y, 0);
  const machine = share * availableParallelism();
  cores[GROUPS.machine] = machine;
  // Other engineers' tests, editors, …: when this is large the figures are not trustworthy.
  cores[GROUPS.others] = Math.max(0, machine - ours);
  return { seconds, cores, waits, waitPerRun, sleeps };
}

/** Measures the CPU split over `fn`. */
export async function withCpu<T>(ctx: CpuContext, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuSplit }> {
  const before = cpuSnapshot(ctx);
  const result = await fn();
  return { result, cpu: cpuSplit(before, cpuSnapshot(ctx)) };
}

/** The groups in the order the reports list them (the process groups first, then the rest of the machine). */
const groupOrder = (serverKind: string) => [GROUPS.gateway, serverKind, GROUPS.dbBackends, GROUPS.dbRest, GROUPS.bench, GROUPS.others, GROUPS.machine];

export function formatCpu(split: CpuSplit, serverKind: string): string {
  return groupOrder(serverKind)
    .filter((k) => split.cores[k] !== undefined)
    .map((k) => `${k} ${split.cores[k]!.toFixed(2)}`)
    .join(", ");
}

/** Run-queue wait by group, in the order of formatCpu (all threads): ms per second of wall time, and us each time one got a core. */
export function formatWaits(split: CpuSplit, serverKind: string): string {
  // Only process groups have a run-queue wait: "everything else" and the machine have none.
  return groupOrder(serverKind)
    .filter((k) => split.waits[k] !== undefined)
    .map((k) => `${k} ${split.waits[k]!.toFixed(0)} (${(split.waitPerRun[k] ?? 0).toFixed(0)} us a time)`)
    .join(", ");
}

/**
 * Sleeps by group (see CpuSplit.sleeps), in the order of formatCpu, per `per` (the messages of the
 * run): what a message costs in wake-ups, a count that does not move with the machine's speed as
 * its CPU does.
 */
export function formatSleeps(split: CpuSplit, serverKind: string, per: number): string {
  return groupOrder(serverKind)
    .filter((k) => split.sleeps[k] !== undefined)
    .map((k) => `${k} ${(split.sleeps[k]! / per).toFixed(2)}`)
    .join(", ");
}

/** Cores used by the machine now (1 s sample), for --wait-idle and the report's header. */
export async function busyCores(ctx: CpuContext): Promise<number> {
  const a = cpuSnapshot(ctx);
  await new Promise((r) => setTimeout(r, 1000));
  return cpuSplit(a, cpuSnapshot(ctx)).cores[GROUPS.machine] ?? 0;
}
