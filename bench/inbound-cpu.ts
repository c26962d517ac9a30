// CPU accounting for bench/inbound.ts from /proc (the same method as bench/messages.ts, whose
// helpers are not exported): CPU ticks per process group between two snapshots, as cores used.
import { execSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";

const CLK_TCK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface CpuContext {
  /** "prosody" or "ejabberd": the group name of the XMPP server's processes. */
  serverKind: string;
  /** Processes whose command line contains this are the XMPP server's. */
  serverWorkDir: string;
  gatewayPid?: number | undefined;
  dbName?: string | undefined;
}

export interface CpuSnapshot {
  wall: number;
  /** pid → [group, ticks] */
  procs: Map<number, [string, number]>;
  bench: NodeJS.CpuUsage;
  systemBusy: number;
  systemTotal: number;
}

export interface CpuSplit {
  seconds: number;
  /** Cores used on average (CPU seconds / wall seconds), by group. */
  cores: Record<string, number>;
}

export const BENCH_GROUP = "bench (sender + SSE reader)";

function readProc(pid: string): { cmdline: string; comm: string; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // Fields after "(comm)": state is [0]; utime (field 14 of stat) is [11], stime [12].
    const ticks = Number(fields[11]) + Number(fields[12]);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    return { cmdline, comm, ticks };
  } catch {
    return null;
  }
}

function groupOf(pid: number, p: { cmdline: string; comm: string }, ctx: CpuContext): string | null {
  if (pid === ctx.gatewayPid) return "gateway";
  if (p.cmdline.includes(ctx.serverWorkDir)) return ctx.serverKind;
  if (p.comm === "postgres" || p.cmdline.startsWith("postgres")) {
    return ctx.dbName && p.cmdline.includes(ctx.dbName) ? "postgres (bench DB backends)" : "postgres (rest of cluster)";
  }
  return null;
}

export function cpuSnapshot(ctx: CpuContext): CpuSnapshot {
  const procs = new Map<number, [string, number]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const p = readProc(entry);
    if (!p) continue;
    const group = groupOf(pid, p, ctx);
    if (group) procs.set(pid, [group, p.ticks]);
  }
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { wall: performance.timeOrigin + performance.now(), procs, bench: process.cpuUsage(), systemBusy: total - idle, systemTotal: total };
}

export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const seconds = (b.wall - a.wall) / 1000;
  const cores: Record<string, number> = {};
  for (const [pid, [group, ticks]] of b.procs) {
    const before = a.procs.get(pid)?.[1] ?? 0;
    cores[group] = (cores[group] ?? 0) + (ticks - before) / CLK_TCK / seconds;
  }
  // This process, worker threads included (the SSE reader and the raw component run in workers).
  const bench = process.cpuUsage(a.bench);
  cores[BENCH_GROUP] = (bench.user + bench.system) / 1e6 / seconds;
  const share = (b.systemBusy - a.systemBusy) / Math.max(1, b.systemTotal - a.systemTotal);
  const ours = Object.values(cores).reduce((x, y) => x + y, 0);
  cores["whole machine"] = share * availableParallelism();
  // Other engineers' tests, editors, …: when this is large the figures are not trustworthy.
  cores["everything else"] = Math.max(0, cores["whole machine"] - ours);
  return { seconds, cores };
}

export function formatCpu(split: CpuSplit, serverKind: string): string {
  const order = ["gateway", serverKind, "postgres (bench DB backends)", "postgres (rest of cluster)", BENCH_GROUP, "everything else", "whole machine"];
  return order
    .filter((k) => split.cores[k] !== undefined)
    .map((k) => `${k} ${split.cores[k]!.toFixed(2)}`)
    .join(", ");
}
