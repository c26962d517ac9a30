// Message throughput benchmark (`npm run bench -- [--messages N] [--concurrency C] …`).
//
// One run measures, on the same XMPP server and with the same receiving client:
//   1. the ceiling: a raw XEP-0114 component writing message stanzas (the shape Balcony sends)
//      as fast as the socket takes them, to a real XMPP user: what the XMPP server and the
//      receiving client can do without Balcony;
//   2. Balcony: the gateway as a separate process (node --import tsx src/server.ts), N messages
//      POSTed with C concurrent keep-alive connections, each timed from POST start to delivery at
//      the XMPP user; then a short low-load run (concurrency 1) for idle latency.
// It prints a table (or a JSON line with --json) and cleans up everything it started, also on
// error, Ctrl-C or its overall timeout (and a detached watchdog, bench/reaper.ts, does it if this
// process is killed outright). Progress goes to stderr.
//
// Everything (gateway, XMPP server, PostgreSQL, this load generator) shares the machine's cores:
// the "cores used" lines say who used what, and "everything else" shows foreign load that makes
// a run untrustworthy; --wait-idle waits for a quiet machine first.
import { execSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pkg from "@xmpp/component";
import jwt from "jsonwebtoken";
import { Pool } from "undici";
import { createTestDatabase } from "../scripts/harness/database.js";
import { startXmppServer, type XmppServer } from "../scripts/harness/xmpp-server.js";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./cpuprofile.js";
import type { SinkOptions } from "./sink.js";
import { SinkWorker } from "./sink-client.js";

const { component } = pkg;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;
const SINK_USER = "sink";
const SINK_RESOURCE = "bench";
const SENDER = "bench";
/** Below this many busy cores the machine counts as idle (--wait-idle). */
const IDLE_CORES = 0.3;
/** Stanzas per socket write in the ceiling run. */
const CEILING_CHUNK = 256;

// ---------------------------------------------------------------------------------------------
// Options

const USAGE = `usage: npm run bench -- [options]
  --messages N        messages in the measured runs (default 20000)
  --concurrency C     concurrent keep-alive HTTP connections (default 64)
  --warmup W          warm-up messages before each measured run (default 2000)
  --low-messages L    messages of the low-load latency run, concurrency 1 (default 500; 0 skips)
  --server KIND       prosody (default) or ejabberd
  --loss-timeout S    a message not received S seconds after the last arrival is lost (default 10)
  --timeout S         overall time limit (default 300), not counting --wait-idle
  --wait-idle S       first wait up to S seconds for the machine to be idle (default 0)
  --env KEY=VALUE     extra environment for the gateway (repeatable), e.g. --env DB_POOL_MAX=20
  --gateway-dir DIR   run the gateway from another checkout (e.g. a git worktree with a candidate
                      change; it needs node_modules); default: this repository
  --cpu-prof          run the gateway with --cpu-prof and summarise where its CPU time went
  --skip-ceiling      only measure Balcony
  --json              print the figures as one JSON line on stdout (the table goes to stderr)`;

const { values: opt } = parseArgs({
  options: {
    messages: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "64" },
    warmup: { type: "string", default: "2000" },
    "low-messages": { type: "string", default: "500" },
    server: { type: "string", default: "prosody" },
    "loss-timeout": { type: "string", default: "10" },
    timeout: { type: "string", default: "300" },
    "wait-idle": { type: "string", default: "0" },
    env: { type: "string", multiple: true, default: [] },
    "cpu-prof": { type: "boolean", default: false },
    "gateway-dir": { type: "string" },
    "skip-ceiling": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

function intOption(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name}: expected an integer ≥ ${min}, got "${raw}"\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const N = intOption("messages", opt.messages, 1);
const C = intOption("concurrency", opt.concurrency, 1);
const WARMUP = intOption("warmup", opt.warmup, 0);
const LOW_N = intOption("low-messages", opt["low-messages"], 0);
const LOSS_TIMEOUT_MS = intOption("loss-timeout", opt["loss-timeout"], 1) * 1000;
const TIMEOUT_MS = intOption("timeout", opt.timeout, 10) * 1000;
const WAIT_IDLE_MS = intOption("wait-idle", opt["wait-idle"], 0) * 1000;
const SERVER_KIND = opt.server;
if (SERVER_KIND !== "prosody" && SERVER_KIND !== "ejabberd") {
  console.error(`--server: expected prosody or ejabberd, got "${SERVER_KIND}"`);
  process.exit(2);
}
const GATEWAY_DIR = resolve(opt["gateway-dir"] ?? ROOT);
// The benchmark sends far more than the default per-account / per-IP request rates allow: raise
// them so they never refuse a request (the limiter still runs, so its cost stays in the figures).
const GATEWAY_ENV: Record<string, string> = { RATE_LIMIT_PER_IP: "100000000", RATE_LIMIT_PER_ACCOUNT: "100000000" };
for (const kv of opt.env) {
  const eq = kv.indexOf("=");
  if (eq <= 0) {
    console.error(`--env: expected KEY=VALUE, got "${kv}"`);
    process.exit(2);
  }
  GATEWAY_ENV[kv.slice(0, eq)] = kv.slice(eq + 1);
}

// ---------------------------------------------------------------------------------------------
// Small utilities

const now = (): number => performance.timeOrigin + performance.now();
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The body of message i: the same text in the ceiling stanzas and in the HTTP requests. */
function bodyText(i: number): string {
  return `Benchmark message #${String(i).padStart(6, "0")}: the quick brown fox jumps over the lazy dog.`;
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything started registers its undo here; run in reverse order, once, bounded.

const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
/** Set on Ctrl-C or the overall timeout: the load and the waits stop early. */
let aborting = false;
/** Synchronous last resort on process exit (the gateway process; the harness kills its servers). */
const exitKills = new Set<ChildProcess>();

function checkAborted(): void {
  if (aborting) throw new Error("aborted");
}

function onCleanup(what: string, fn: () => Promise<void> | void): void {
  cleanups.push({ what, fn });
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, fn } = cleanups.pop()!;
      try {
        await withTimeout(Promise.resolve().then(fn), 15_000, `cleanup: ${what}`);
      } catch (error) {
        log(`cleanup of ${what} failed: ${(error as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** The watchdog (bench/reaper.ts): cleans up after us if we die before cleanup() finished. */
const reaper = (() => {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./reaper.ts", import.meta.url))], {
    cwd: ROOT,
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  child.on("error", (e) => log(`watchdog: ${e.message}`));
  const stdin = child.stdin!;
  stdin.on("error", () => undefined);
  (stdin as unknown as Socket).unref?.();
  return {
    tell(resource: Record<string, unknown>): void {
      stdin.write(`${JSON.stringify(resource)}\n`);
    },
    done(): void {
      stdin.end(`${JSON.stringify({ done: true })}\n`);
    },
  };
})();

process.on("exit", () => {
  for (const child of exitKills) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  // The harness's own handler (registered first) kills the XMPP server and re-raises the signal;
  // this persistent listener keeps the process alive until our cleanup (gateway, DB) is done.
  process.on(signal, () => {
    if (cleaning) return;
    aborting = true;
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
    });
  });
}
let overall: NodeJS.Timeout | undefined;
function armOverallTimeout(): void {
  overall = setTimeout(() => {
    aborting = true;
    log(`overall timeout of ${TIMEOUT_MS / 1000} s reached: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(1);
    });
  }, TIMEOUT_MS);
}

// ---------------------------------------------------------------------------------------------
// The receiving XMPP user, in a worker thread (bench/sink.ts)

/** The receiving user (bench/sink-client.ts), counting distinct arrivals as they come. */
class Sink {
  unique = 0;
  total = 0;

  private constructor(private readonly worker: SinkWorker) {}

  static async start(opts: SinkOptions): Promise<Sink> {
    let sink: Sink | null = null;
    const worker = await SinkWorker.start(opts, (m) => {
      if (m.type === "progress" && sink) {
        sink.unique = m.unique;
        sink.total = m.total;
      }
    });
    sink = new Sink(worker);
    onCleanup("sink user", () => worker.stop());
    return sink;
  }

  get jid(): string {
    return this.worker.jid;
  }

  get errors(): string[] {
    return this.worker.errors;
  }

  /** Everything received since the last take(); resets the counters. */
  async take(): Promise<{ ids: string[]; times: Float64Array }> {
    const r = await this.worker.records();
    this.unique = 0;
    this.total = 0;
    return r;
  }

  /**
   * Waits until `expected` distinct ids arrived; gives up (false) when nothing new arrived for
   * idleMs. Call it once the sender is done, so that idle means lost.
   */
  waitFor(expected: number, idleMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let last = this.unique;
      let lastChange = Date.now();
      const timer = setInterval(() => {
        if (this.unique >= expected) return done(true);
        if (aborting) return done(false);
        if (this.unique !== last) {
          last = this.unique;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > idleMs) {
          done(false);
        }
      }, 5);
      const done = (ok: boolean) => {
        clearInterval(timer);
        resolve(ok);
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc: who used the cores during a phase

const CLK_TCK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface CpuContext {
  gatewayPid?: number | undefined;
  serverWorkDir: string;
  dbName?: string | undefined;
}

interface CpuSnapshot {
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

function groupOf(pid: number, p: { cmdline: string; comm: string }, ctx: CpuContext): string | null {
  if (pid === ctx.gatewayPid) return "gateway";
  if (p.cmdline.includes(ctx.serverWorkDir)) return SERVER_KIND;
  if (p.comm === "postgres" || p.cmdline.startsWith("postgres")) {
    return ctx.dbName && p.cmdline.includes(ctx.dbName) ? "postgres (bench DB backends)" : "postgres (rest of cluster)";
  }
  return null;
}

function cpuSnapshot(ctx: CpuContext): CpuSnapshot {
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
  return { wall: now(), procs, bench: process.cpuUsage(), systemBusy: total - idle, systemTotal: total };
}

function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit {
  const seconds = (b.wall - a.wall) / 1000;
  const cores: Record<string, number> = {};
  for (const [pid, [group, ticks]] of b.procs) {
    const before = a.procs.get(pid)?.[1] ?? 0;
    cores[group] = (cores[group] ?? 0) + (ticks - before) / CLK_TCK / seconds;
  }
  const bench = process.cpuUsage(a.bench);
  cores["bench (load + sink)"] = (bench.user + bench.system) / 1e6 / seconds;
  const share = (b.systemBusy - a.systemBusy) / Math.max(1, b.systemTotal - a.systemTotal);
  const ours = Object.values(cores).reduce((x, y) => x + y, 0);
  cores["whole machine"] = share * availableParallelism();
  // Other engineers' tests, editors, …: when this is large the figures are not trustworthy.
  cores["everything else"] = Math.max(0, cores["whole machine"] - ours);
  return { seconds, cores };
}

// ---------------------------------------------------------------------------------------------
// 1. Ceiling: a raw component writing stanzas as fast as the socket takes them

function stanza(from: string, to: string, id: string, body: string): string {
  return `<message from="${from}" to="${to}" type="chat" id="${id}"><body>${body}</body><origin-id xmlns="urn:xmpp:sid:0" id="${id}"/></message>`;
}

function waitDrain(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("component socket closed while writing"));
    socket.on("drain", onDrain);
    socket.on("close", onClose);
  });
}

export interface CeilingResult {
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  bounced: number;
  /** First write → last stanza received. */
  seconds: number;
  msgsPerSec: number;
  /** First write → last write accepted by the socket. */
  writeSeconds: number;
  cpu: CpuSplit;
}

async function measureCeiling(server: XmppServer, sink: Sink, to: string): Promise<CeilingResult> {
  const from = `${SENDER}@${server.componentDomain}`;
  const xmpp = component({ service: server.componentService, domain: server.componentDomain, password: server.componentSecret });
  xmpp.on("error", () => undefined);
  let bounced = 0;
  xmpp.on("stanza", (el: { attrs: Record<string, string | undefined> }) => {
    if (el.attrs.type === "error") bounced++;
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    xmpp.reconnect.stop();
    await Promise.race([xmpp.stop().catch(() => undefined), sleep(3000)]);
  };
  onCleanup("raw component", stop);
  await withTimeout(xmpp.start(), 10_000, "raw component login");
  const socket = xmpp.socket;
  if (!socket) throw new Error("raw component has no socket");

  const blast = async (count: number, offset: number) => {
    const ids = Array.from({ length: count }, () => randomUUID());
    const chunks: string[] = [];
    for (let i = 0; i < count; i += CEILING_CHUNK) {
      chunks.push(ids.slice(i, i + CEILING_CHUNK).map((id, j) => stanza(from, to, id, bodyText(offset + i + j))).join(""));
    }
    const t0 = now();
    for (const chunk of chunks) if (!socket.write(chunk)) await waitDrain(socket);
    return { ids, t0, written: now() };
  };

  if (WARMUP > 0) {
    log(`ceiling: warm-up, ${WARMUP} stanzas`);
    await blast(WARMUP, 0);
    await sink.waitFor(WARMUP, LOSS_TIMEOUT_MS);
    await sink.take();
  }
  bounced = 0;
  log(`ceiling: ${N} stanzas from a raw component`);
  const before = cpuSnapshot({ serverWorkDir: server.workDir });
  const { ids, t0, written } = await blast(N, WARMUP);
  await sink.waitFor(N, LOSS_TIMEOUT_MS);
  const after = cpuSnapshot({ serverWorkDir: server.workDir });
  const recv = await sink.take();
  await stop();

  const first = new Map<string, number>();
  let duplicates = 0;
  recv.ids.forEach((id, i) => {
    if (first.has(id)) duplicates++;
    else first.set(id, recv.times[i]!);
  });
  let delivered = 0;
  let last = t0;
  for (const id of ids) {
    const t = first.get(id);
    if (t === undefined) continue;
    delivered++;
    if (t > last) last = t;
  }
  const seconds = (last - t0) / 1000;
  return {
    sent: N,
    delivered,
    lost: N - delivered,
    duplicates,
    bounced,
    seconds,
    msgsPerSec: delivered / seconds,
    writeSeconds: (written - t0) / 1000,
    cpu: cpuSplit(before, after),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Balcony as a separate process

interface GatewayProcess {
  url: string;
  pid: number;
  logFile: string;
  profileDir: string | undefined;
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

async function startGatewayProcess(server: XmppServer, databaseUrl: string, workDir: string): Promise<GatewayProcess> {
  const port = await freePort();
  const logFile = join(workDir, "gateway.log");
  const profileDir = opt["cpu-prof"] ? join(workDir, "profile") : undefined;
  const out = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    const args = [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), "--import", "tsx", "src/server.ts"];
    child = spawn(process.execPath, args, {
      cwd: GATEWAY_DIR,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: String(port),
        DATABASE_URL: databaseUrl,
        XMPP_SERVICE: server.componentService,
        XMPP_DOMAIN: server.componentDomain,
        XMPP_SECRET: server.componentSecret,
        XMPP_RECONNECT_MAX: "2s",
        JWT_SECRET,
        LOG_LEVEL: "warn",
        ...GATEWAY_ENV,
      },
      stdio: ["ignore", out, out],
    });
  } finally {
    closeSync(out);
  }
  exitKills.add(child);
  reaper.tell({ gatewayPid: child.pid });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const logTail = (lines = 30) => {
    try {
      return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM"); // graceful: the gateway closes, and --cpu-prof writes its profile
    const gone = await Promise.race([exited.then(() => true), sleep(12_000).then(() => false)]);
    if (!gone) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  onCleanup("gateway process", stop);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the gateway exited (${child.exitCode ?? child.signalCode}) during start-up:\n${logTail()}`);
    }
    const status = await fetch(`${url}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`the gateway was not ready after 60 s (last /readyz: ${status}):\n${logTail()}`);
    await sleep(100);
  }
  return { url, pid: child.pid!, logFile, profileDir, stop, logTail };
}

interface PostResult {
  ids: string[];
  starts: number[];
  accepts: number[];
  /** "202 sent", "202 queued", "HTTP 503", "error ECONNRESET", … */
  outcomes: Record<string, number>;
  firstStart: number;
  lastAccept: number;
  sampleError: string | undefined;
}

async function postMessages(pool: Pool, token: string, to: string, count: number, concurrency: number, offset: number): Promise<PostResult> {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const bodies = Array.from({ length: count }, (_, i) => JSON.stringify({ to, body: bodyText(offset + i) }));
  const ids: string[] = [];
  const starts: number[] = [];
  const accepts: number[] = [];
  const outcomes: Record<string, number> = {};
  let sampleError: string | undefined;
  const count1 = (k: string) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
  let next = 0;
  const worker = async () => {
    while (next < count && !aborting) {
      const i = next++;
      const start = now();
      try {
        const res = await pool.request({ path: "/v1/messages", method: "POST", headers, body: bodies[i] });
        const text = await res.body.text();
        if (res.statusCode === 202) {
          const accepted = now();
          const json = JSON.parse(text) as { id: string; status: string };
          ids.push(json.id);
          starts.push(start);
          accepts.push(accepted);
          count1(`202 ${json.status}`);
        } else {
          count1(`HTTP ${res.statusCode}`);
          sampleError ??= `HTTP ${res.statusCode}: ${text.slice(0, 300)}`;
        }
      } catch (error) {
        const e = error as Error & { code?: string };
        count1(`error ${e.code ?? e.name}`);
        sampleError ??= e.message;
      }
    }
  };
  const firstStart = now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { ids, starts, accepts, outcomes, firstStart, lastAccept: accepts.reduce((a, b) => Math.max(a, b), firstStart), sampleError };
}

export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface BalconyRun {
  messages: number;
  concurrency: number;
  accepted: number;
  non202: number;
  outcomes: Record<string, number>;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Received stanzas whose id no 202 of this run reported. */
  strays: number;
  /** First POST start → last delivery. */
  seconds: number;
  msgsPerSec: number;
  acceptPerSec: number;
  /** POST start → 202. */
  httpLatencyMs: LatencyStats;
  /** POST start → delivery at the XMPP user. */
  latencyMs: LatencyStats;
  sampleError: string | undefined;
}

function stats(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN, mean };
}

async function balconyRun(pool: Pool, sink: Sink, token: string, to: string, count: number, concurrency: number, offset: number): Promise<BalconyRun> {
  const posted = await postMessages(pool, token, to, count, concurrency, offset);
  await sink.waitFor(posted.ids.length, LOSS_TIMEOUT_MS);
  const recv = await sink.take();
  const first = new Map<string, number>();
  let duplicates = 0;
  recv.ids.forEach((id, i) => {
    if (first.has(id)) duplicates++;
    else first.set(id, recv.times[i]!);
  });
  const latencies: number[] = [];
  let last = posted.firstStart;
  posted.ids.forEach((id, i) => {
    const t = first.get(id);
    if (t === undefined) return;
    latencies.push(t - posted.starts[i]!);
    if (t > last) last = t;
  });
  const postedSet = new Set(posted.ids);
  const strays = [...first.keys()].filter((id) => !postedSet.has(id)).length;
  const seconds = (last - posted.firstStart) / 1000;
  const accepted = posted.ids.length;
  return {
    messages: count,
    concurrency,
    accepted,
    non202: count - accepted,
    outcomes: posted.outcomes,
    delivered: latencies.length,
    lost: accepted - latencies.length,
    duplicates,
    strays,
    seconds,
    msgsPerSec: latencies.length / seconds,
    acceptPerSec: accepted / ((posted.lastAccept - posted.firstStart) / 1000),
    httpLatencyMs: stats(posted.accepts.map((t, i) => t - posted.starts[i]!)),
    latencyMs: stats(latencies),
    sampleError: posted.sampleError,
  };
}

async function api<T>(url: string, path: string, token: string, body: unknown, expect: number): Promise<T> {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`POST ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  params: { messages: number; concurrency: number; warmup: number; lowMessages: number; server: string; cores: number; cpu: string; node: string; gatewayEnv: Record<string, string>; loadAvgBefore: number[]; busyCoresBefore: number; source: string };
  ceiling: CeilingResult | null;
  balcony: BalconyRun & { cpu: CpuSplit };
  lowLoad: BalconyRun | null;
  ratio: number | null;
  profile: ProfileSummary | null;
}

const fmtInt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const fmtMs = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

function formatCpu(split: CpuSplit): string {
  const order = ["gateway", SERVER_KIND, "postgres (bench DB backends)", "postgres (rest of cluster)", "bench (load + sink)", "everything else", "whole machine"];
  return order
    .filter((k) => split.cores[k] !== undefined)
    .map((k) => `${k} ${split.cores[k]!.toFixed(2)}`)
    .join(", ");
}

function formatReport(r: Report): string {
  const p = r.params;
  const rows: string[][] = [["", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "non-202", "lost", "dupes"]];
  if (r.ceiling) {
    const c = r.ceiling;
    rows.push(["Ceiling: raw component → XMPP user", fmtInt(c.msgsPerSec), "", "", "", "", "", String(c.lost), String(c.duplicates)]);
  }
  const b = r.balcony;
  const lat = (s: LatencyStats) => [fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.max)];
  rows.push([`Balcony, C=${b.concurrency}: POST → delivery`, fmtInt(b.msgsPerSec), ...lat(b.latencyMs), String(b.non202), String(b.lost), String(b.duplicates)]);
  rows.push([`Balcony, C=${b.concurrency}: POST → 202`, fmtInt(b.acceptPerSec), ...lat(b.httpLatencyMs), "", "", ""]);
  if (r.lowLoad) {
    const l = r.lowLoad;
    rows.push([`Low load, C=1 (${l.messages} msgs): POST → delivery`, fmtInt(l.msgsPerSec), ...lat(l.latencyMs), String(l.non202), String(l.lost), String(l.duplicates)]);
    rows.push(["Low load, C=1: POST → 202", "", ...lat(l.httpLatencyMs), "", "", ""]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  const table = rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n");
  const lines = [
    "",
    `Balcony message benchmark: ${p.server}, ${p.cores} cores (${p.cpu}), Node ${p.node}, load average before ${p.loadAvgBefore.map((x) => x.toFixed(2)).join(" ")}, ${p.busyCoresBefore.toFixed(2)} cores busy before start`,
    `Source: ${p.source}`,
    `N = ${p.messages} messages per measured run (warm-up ${p.warmup}), C = ${p.concurrency} keep-alive connections${Object.keys(p.gatewayEnv).length ? `, gateway env ${JSON.stringify(p.gatewayEnv)}` : ""}`,
    "",
    table,
    "",
  ];
  if (r.ratio !== null) lines.push(`Ratio Balcony / ceiling: ${(r.ratio * 100).toFixed(1)}%  (${fmtInt(b.msgsPerSec)} / ${fmtInt(r.ceiling!.msgsPerSec)} msg/s)`);
  if (r.ceiling) {
    const c = r.ceiling;
    lines.push(`Ceiling: ${c.delivered}/${c.sent} delivered in ${c.seconds.toFixed(2)} s (socket took all writes in ${c.writeSeconds.toFixed(2)} s), ${c.bounced} bounced`);
    lines.push(`  cores used: ${formatCpu(c.cpu)}`);
  }
  lines.push(
    `Balcony: ${b.delivered}/${b.accepted} delivered in ${b.seconds.toFixed(2)} s; responses ${Object.entries(b.outcomes).map(([k, v]) => `${k}: ${v}`).join(", ")}; mean latency ${fmtMs(b.latencyMs.mean)} ms${b.strays ? `; ${b.strays} stray stanzas` : ""}`,
  );
  lines.push(`  cores used: ${formatCpu(b.cpu)}`);
  if (b.sampleError) lines.push(`  first error: ${b.sampleError}`);
  if (r.lowLoad?.sampleError) lines.push(`  low-load first error: ${r.lowLoad.sampleError}`);
  if (r.profile) lines.push("", formatProfile(r.profile));
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

/** The commit, and how many files under src/ differ from it: figures are only comparable per source. */
function sourceVersion(): string {
  try {
    const git = (args: string) => execSync(`git ${args}`, { cwd: GATEWAY_DIR, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const changed = git("status --porcelain -- src prisma package.json").split("\n").filter(Boolean).length;
    const where = GATEWAY_DIR === ROOT ? "" : `${GATEWAY_DIR}: `;
    return `${where}${git("rev-parse --short HEAD")}${changed ? ` + ${changed} changed file(s) in src/, prisma/, package.json` : ""}`;
  } catch {
    return GATEWAY_DIR === ROOT ? "unknown" : `${GATEWAY_DIR} (not a git checkout)`;
  }
}

async function main(): Promise<Report> {
  const workDir = mkdtempSync(join(tmpdir(), "balcony-bench-"));
  if (!opt["cpu-prof"]) reaper.tell({ dir: workDir });
  onCleanup("bench work dir", () => {
    if (!opt["cpu-prof"]) rmSync(workDir, { recursive: true, force: true });
  });
  const busyNow = async () => {
    const a = cpuSnapshot({ serverWorkDir: workDir });
    await sleep(1000);
    return cpuSplit(a, cpuSnapshot({ serverWorkDir: workDir })).cores["whole machine"] ?? 0;
  };
  let busyBefore = await busyNow();
  if (WAIT_IDLE_MS > 0 && busyBefore > IDLE_CORES) {
    log(`waiting up to ${WAIT_IDLE_MS / 1000} s for the machine to be idle (${busyBefore.toFixed(2)} cores busy)`);
    const deadline = Date.now() + WAIT_IDLE_MS;
    let quiet = 0;
    while (quiet < 3 && Date.now() < deadline) {
      busyBefore = await busyNow();
      quiet = busyBefore <= IDLE_CORES ? quiet + 1 : 0;
    }
  }
  if (busyBefore > IDLE_CORES) log(`warning: the machine is already busy (${busyBefore.toFixed(2)} cores in use before the benchmark)`);
  armOverallTimeout();
  const loadAvgBefore = loadavg();

  log(`starting ${SERVER_KIND}`);
  const server = await startXmppServer(SERVER_KIND);
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup(SERVER_KIND, () => server.stop());
  const password = randomBytes(8).toString("hex");
  await server.registerUser(SINK_USER, password);
  const sink = await Sink.start({
    service: `xmpp://${server.host}:${server.c2sPort}`,
    domain: server.userDomain,
    username: SINK_USER,
    password,
    resource: SINK_RESOURCE,
  });
  const to = sink.jid; // sink@localhost/bench
  log(`sink online as ${to}`);

  const ceiling = opt["skip-ceiling"] ? null : await measureCeiling(server, sink, to);
  checkAborted();
  if (ceiling) log(`ceiling: ${fmtInt(ceiling.msgsPerSec)} msg/s`);

  const db = await createTestDatabase();
  const baseUrl = new URL(db.url);
  baseUrl.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: baseUrl.toString() });
  onCleanup("database", () => db.drop());
  log(`starting the gateway (database ${db.name})`);
  const gateway = await startGatewayProcess(server, db.url, workDir);
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 3600 }, JWT_SECRET, { algorithm: "HS256" });
  await api(gateway.url, "/v1/accounts", admin, { localpart: SENDER }, 201);
  const { token } = await api<{ token: string }>(gateway.url, "/v1/tokens", admin, { account: SENDER, ttlSeconds: 3600 }, 201);

  const pool = new Pool(gateway.url, { connections: C, pipelining: 1, keepAliveTimeout: 60_000 });
  onCleanup("HTTP pool", () => pool.destroy());

  let offset = 0;
  if (WARMUP > 0) {
    log(`Balcony: warm-up, ${WARMUP} messages at C=${C}`);
    const warm = await postMessages(pool, token, to, WARMUP, C, offset);
    offset += WARMUP;
    await sink.waitFor(warm.ids.length, LOSS_TIMEOUT_MS);
    await sink.take();
  }

  checkAborted();
  log(`Balcony: ${N} messages at C=${C}`);
  const ctx: CpuContext = { gatewayPid: gateway.pid, serverWorkDir: server.workDir, dbName: db.name };
  const before = cpuSnapshot(ctx);
  const fromUs = monoUs();
  const run = await balconyRun(pool, sink, token, to, N, C, offset);
  const toUs = monoUs();
  checkAborted();
  const after = cpuSnapshot(ctx);
  offset += N;
  const balcony = { ...run, cpu: cpuSplit(before, after) };
  log(`Balcony: ${fmtInt(balcony.msgsPerSec)} msg/s, p50 ${fmtMs(balcony.latencyMs.p50)} ms, p99 ${fmtMs(balcony.latencyMs.p99)} ms`);

  let lowLoad: BalconyRun | null = null;
  if (LOW_N > 0) {
    checkAborted();
    log(`Balcony: low load, ${LOW_N} messages at C=1`);
    lowLoad = await balconyRun(pool, sink, token, to, LOW_N, 1, offset);
  }

  let profile: ProfileSummary | null = null;
  if (gateway.profileDir) {
    await gateway.stop();
    const files = readdirSync(gateway.profileDir).filter((f) => f.endsWith(".cpuprofile"));
    if (files.length) profile = summarizeProfile(join(gateway.profileDir, files[0]!), GATEWAY_DIR, fromUs, toUs);
    else log(`no CPU profile was written in ${gateway.profileDir}`);
  }

  return {
    params: {
      messages: N,
      concurrency: C,
      warmup: WARMUP,
      lowMessages: LOW_N,
      server: SERVER_KIND,
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? "?",
      node: process.version,
      gatewayEnv: GATEWAY_ENV,
      loadAvgBefore,
      busyCoresBefore: busyBefore,
      source: sourceVersion(),
    },
    ceiling,
    balcony,
    lowLoad,
    ratio: ceiling ? balcony.msgsPerSec / ceiling.msgsPerSec : null,
    profile,
  };
}

let exitCode = 0;
try {
  const report = await main();
  const text = formatReport(report);
  if (opt.json) {
    process.stderr.write(`${text}\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  if (report.profile) log(`CPU profile kept in ${report.profile.file}`);
} catch (error) {
  if (aborting) log("aborted");
  else log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  clearTimeout(overall);
  await cleanup();
  reaper.done();
}
process.exit(exitCode);
