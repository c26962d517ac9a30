// Small helpers of the message benchmark (bench/messages.ts): clocks, statistics, formatting.

/** CLOCK_MONOTONIC milliseconds, one clock for every process on the machine (scripts/harness/clock.ts). */
export { mono as now } from "../../scripts/harness/clock.js";
/** CLOCK_MONOTONIC microseconds, the clock of V8's CPU profiles. */
export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** How a report names ejabberd's scheduler setting (XmppServerOptions.erlangBusyWait; the harness turns the busy wait off). */
export const erlangBusyWaitSetting = (on: boolean) => `Erlang schedulers' busy wait ${on ? "on (the VM's default)" : "off (+sbwt none; --erlang-busy-wait turns it on)"}`;

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(values: number[]): LatencyStats {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The body of message i of a run: unique over the whole benchmark (the tag names the row and run),
 * so the receiving user can identify every message by its body whoever chose the stanza id.
 */
export function bodyText(tag: string, i: number): string {
  return `Benchmark ${tag} #${String(i).padStart(6, "0")}: the quick brown fox jumps over the lazy dog.`;
}

export const fmtInt = (x: number | null | undefined) => (x != null && Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
export const fmtMs = (x: number | null | undefined) => (x != null && Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x.toFixed(1)) : "-");
export const fmtRatio = (x: number | null | undefined) => (x != null && Number.isFinite(x) ? x.toFixed(2) : "-");
export const fmtPct = (cores: number | null | undefined) => (cores != null && Number.isFinite(cores) ? `${Math.round(cores * 100)}%` : "-");

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ").trimEnd()).join("\n");
}

/** A Markdown table (the format): `| a | b |` rows, a separator after the header. */
export function markdownTable(rows: string[][]): string {
  const line = (row: string[]) => `| ${row.join(" | ")} |`;
  return [line(rows[0]!), line(rows[0]!.map(() => "---")), ...rows.slice(1).map(line)].join("\n");
}

/** An integer option: its value, the default (or the --smoke one) when absent; exits 2 with the usage when malformed. */
export function intOption(o: { usage: string; smoke: boolean }, name: string, raw: string | undefined, fallback: number, smoke: number, min: number): number {
  if (raw === undefined) return o.smoke ? smoke : fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name}: expected an integer ≥ ${min}, got "${raw}"\n${o.usage}`);
    process.exit(2);
  }
  return n;
}

/** `--env KEY=VALUE` options added to `base` (the gateway's extra environment); exits 2 when malformed. */
export function envOptions(base: Record<string, string>, pairs: string[]): Record<string, string> {
  const env = { ...base };
  for (const kv of pairs) {
    const eq = kv.indexOf("=");
    if (eq <= 0) {
      console.error(`--env: expected KEY=VALUE, got "${kv}"`);
      process.exit(2);
    }
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}
