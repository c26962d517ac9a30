// Idle event streams benchmark (`npx tsx bench/streams.ts [--streams N] [--smoke] …`): issue 10.
//
// Starts a test database, Prosody and the gateway as a separate process, then:
//   1. opens N SSE streams (GET /v1/events, new sessions): N - HOT spread over many accounts
//      (PER_ACCOUNT each), HOT on one account; the gateway's memory per stream, read after a full
//      garbage collection (bench/lib/gc-probe.mjs) before and after;
//   2. drops them all at once and reopens them (a mass reconnect after a restart: existing
//      sessions): the open rate of this phase is the one compared with the target;
//   3. leaves them idle for IDLE seconds: gateway and Postgres CPU
//      (/proc/<pid>/stat ticks of the gateway and of the backends of the bench database),
//      transactions and session rows updated in the bench database; the V8 collections that fell
//      in the window, from the gateway's --trace-gc lines (bench/lib/gc-trace.ts);
//   4. a real XMPP user sends one message to the hot account's bare JID: the time until all HOT
//      streams have it, that each has it exactly once, and how many event-log reads the gateway
//      did for it (its balcony_event_log_reads_total metric, and the event table's index scans):
//      at most one per instance; none on the instance that stored it (it hands it to its streams).
// Prints a table with each figure beside its target (or one JSON line with --json). Everything it
// starts is removed on success, error, Ctrl-C or its overall timeout (and by bench/reaper.ts if
// this process is killed outright). Progress goes to stderr.
import { execSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import jwt from "jsonwebtoken";
import pg from "pg";
import { createTestDatabase } from "../scripts/harness/database.js";
import { freePort, startArgs, waitForOwnAnswer } from "../scripts/harness/gateway-process.js";
import { startXmppServer } from "../scripts/harness/xmpp-server.js";
import { connectUser } from "../scripts/harness/xmpp-user.js";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./cpuprofile.js";
import { cpuSeconds, cpuSnapshot, cpuSplit, GROUPS, mainThreadSleeps, type CpuContext } from "./lib/cpu.js";
import { formatGcTally, tallyGcTrace } from "./lib/gc-trace.js";
import { envOptions, log, median, monoUs, sleep } from "./lib/util.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;

const USAGE = `usage: npx tsx bench/streams.ts [options]
  --streams N       streams in all (default 10000; --smoke: 200)
  --hot H           of which on one account (default 1000; --smoke: 100)
  --per-account P   streams per account for the others (default 10)
  --idle S          idle window in seconds (default 30; --smoke: 5)
  --concurrency C   stream opens in flight (default 256)
  --heartbeat D     the gateway's SSE_HEARTBEAT (default: its own, 15s; --smoke: 1s)
  --smoke           a small run that finishes in seconds
  --cpu-prof        run the gateway with --cpu-prof and summarise the open and idle phases
  --env KEY=VALUE   extra gateway environment (repeatable)
  --gateway-dir D   run the gateway from another checkout (default: this repository)
  --built           run the built gateway as npm start does (node --no-memory-reducer
                    dist/server.js, after npm run build), instead of src/server.ts under tsx
  --timeout S       overall time limit (default 600)
  --json            one JSON line on stdout (the table goes to stderr)`;

const { values: opt } = parseArgs({
  options: {
    streams: { type: "string" },
    hot: { type: "string" },
    "per-account": { type: "string", default: "10" },
    idle: { type: "string" },
    concurrency: { type: "string", default: "256" },
    heartbeat: { type: "string" },
    smoke: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    "gateway-dir": { type: "string" },
    built: { type: "boolean", default: false },
    timeout: { type: "string", default: "600" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
function int(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name}: expected an integer >= ${min}, got "${raw}"\n${USAGE}`);
    process.exit(2);
  }
  return n;
}
const SMOKE = opt.smoke;
const N = int("streams", opt.streams ?? (SMOKE ? "200" : "10000"), 1);
const HOT = Math.min(N, int("hot", opt.hot ?? (SMOKE ? "100" : "1000"), 1));
const PER_ACCOUNT = int("per-account", opt["per-account"], 1);
const IDLE_S = int("idle", opt.idle ?? (SMOKE ? "5" : "30"), 1);
const C = int("concurrency", opt.concurrency, 1);
const TIMEOUT_MS = int("timeout", opt.timeout, 10) * 1000;
const GATEWAY_DIR = resolve(opt["gateway-dir"] ?? ROOT);
const GATEWAY_ENV = envOptions({
  RATE_LIMIT_PER_IP: "100000000",
  RATE_LIMIT_PER_ACCOUNT: "100000000",
  MAX_STREAMS_PER_ACCOUNT: String(Math.max(HOT, PER_ACCOUNT, 20)),
  ...(opt.heartbeat ?? (SMOKE ? "1s" : undefined) ? { SSE_HEARTBEAT: opt.heartbeat ?? "1s" } : {}),
}, opt.env);

/** The idle window's CPU is also read in slices of this length (see the idle phase). */
const IDLE_SLICE_MS = 5000;
const ULIMIT_N = (() => {
  try {
    return execSync("ulimit -n", { encoding: "utf8", shell: "/bin/sh" }).trim();
  } catch {
    return "?";
  }
})();

// ---------------------------------------------------------------------------------------------
// Cleanup: a stack run once in reverse order, also on signals and the overall timeout; the
// detached watchdog (bench/reaper.ts) does it if this process dies first.

const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
const exitKills = new Set<ChildProcess>();
let cleaning: Promise<void> | undefined;
const onCleanup = (what: string, fn: () => Promise<void> | void) => cleanups.push({ what, fn });
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const { what, fn } = cleanups.pop()!;
      try {
        await Promise.race([Promise.resolve().then(fn), sleep(15_000).then(() => Promise.reject(new Error("timed out")))]);
      } catch (err) {
        log(`cleanup of ${what} failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
const reaper = (() => {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./reaper.ts", import.meta.url))], { cwd: ROOT, detached: true, stdio: ["pipe", "ignore", "ignore"] });
  child.unref();
  child.on("error", () => undefined);
  const stdin = child.stdin!;
  stdin.on("error", () => undefined);
  (stdin as unknown as { unref?: () => void }).unref?.();
  return { tell: (r: Record<string, unknown>) => void stdin.write(`${JSON.stringify(r)}\n`), done: () => void stdin.end(`${JSON.stringify({ done: true })}\n`) };
})();
process.on("exit", () => exitKills.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill("SIGKILL")));
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.on(signal, () => {
    if (cleaning) return;
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(130);
    });
  });

// ---------------------------------------------------------------------------------------------
// Probes: /proc RSS, the gateway's metrics, the bench database's statistics (CPU: bench/lib/cpu.ts)

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}
async function metric(url: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------------------------------------
// Streams: raw http (no agent, no keep-alive), SSE parsed with eventsource-parser

interface Stream {
  i: number;
  token: string;
  resource: string;
  req: http.ClientRequest | null;
  open: boolean;
  heartbeats: number;
  /** Message events carrying the fan-out body, and when the first arrived (ms since t0). */
  got: number;
  at: number;
  lastId: string | null;
  retries: number;
}

let port = 0;
/** Opens refused with 503 or 429 and retried. */
let refused = 0;
let fanoutBody = "";
let fanoutT0 = 0;

function openStream(s: Stream, cursor: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: "text/event-stream", authorization: `Bearer ${s.token}`, "balcony-resource": s.resource };
    if (cursor && s.lastId) headers["last-event-id"] = s.lastId;
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/events", headers, agent: false });
    s.req = req;
    req.on("error", (err) => {
      if (!s.open) reject(err);
      s.open = false;
    });
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        // Refused for now (503: the database pool was busy; 429): retried like a client would, and counted.
        if ((res.statusCode === 503 || res.statusCode === 429) && s.retries < 20) {
          s.retries++;
          refused++;
          setTimeout(() => openStream(s, cursor).then(resolve, reject), 200 * s.retries);
          return;
        }
        reject(new Error(`stream ${s.i}: HTTP ${res.statusCode}`));
        return;
      }
      s.open = true;
      const parser = createParser({
        onEvent: (m) => {
          s.lastId = m.id ?? s.lastId;
          if (m.event === "message" && m.data.includes(fanoutBody) && fanoutBody) {
            if (s.got++ === 0) s.at = performance.now() - fanoutT0;
          }
        },
        onComment: (c) => {
          if (c === "heartbeat") s.heartbeats++;
        },
      });
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => parser.feed(chunk));
      res.on("close", () => (s.open = false));
      res.on("error", () => (s.open = false));
      resolve();
    });
    req.end();
  });
}

async function openAll(streams: Stream[], cursor: boolean): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < streams.length) await openStream(streams[next++]!, cursor);
  };
  await Promise.all(Array.from({ length: Math.min(C, streams.length) }, worker));
  return streams.length / ((performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------------------------------------

interface Row {
  figure: string;
  value: string;
  target: string;
  ok: boolean | null;
}

async function main(): Promise<{ rows: Row[]; profile: ProfileSummary[]; lossless: boolean }> {
  const timer = setTimeout(() => {
    log(`overall timeout of ${TIMEOUT_MS / 1000} s: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(1);
    });
  }, TIMEOUT_MS);
  timer.unref();
  log(`ulimit -n: ${ULIMIT_N}; ${N} streams (${HOT} on one account, ${N - HOT} over ${Math.ceil((N - HOT) / PER_ACCOUNT)} accounts), idle ${IDLE_S} s`);
  const need = N + 200;
  if (ULIMIT_N !== "unlimited" && Number(ULIMIT_N) < need) throw new Error(`ulimit -n is ${ULIMIT_N}; ${need} file descriptors are needed: raise it (ulimit -n ${need}) and run again`);

  const work = mkdtempSync(join(tmpdir(), "balcony-streams-"));
  reaper.tell({ dir: work });
  onCleanup("work dir", () => {
    if (!opt["cpu-prof"]) rmSync(work, { recursive: true, force: true });
  });
  const server = await startXmppServer("prosody");
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup("prosody", () => server.stop());
  await server.registerUser("juliet", "pw-juliet");
  const db = await createTestDatabase();
  const base = new URL(db.url);
  base.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: base.toString() });
  onCleanup("database", () => db.drop());

  // The gateway as a separate process.
  port = await freePort();
  const logFile = join(work, "gateway.log");
  const profileDir = opt["cpu-prof"] ? join(work, "profile") : undefined;
  const out = openSync(logFile, "a");
  const memoryFile = join(work, "memory.json");
  const gcProbe = fileURLToPath(new URL("./lib/gc-probe.mjs", import.meta.url));
  // Built: as `npm start` runs it (its V8 flags too: --no-memory-reducer, README "Deploying").
  const entry = opt.built ? startArgs(GATEWAY_DIR) : ["--import", "tsx", "src/server.ts"];
  if (opt.built && !existsSync(join(GATEWAY_DIR, "dist/server.js"))) throw new Error(`--built: no ${GATEWAY_DIR}/dist/server.js (npm run build first)`);
  const child = spawn(process.execPath, [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), "--expose-gc", "--trace-gc", "--import", gcProbe, ...entry], {
    cwd: GATEWAY_DIR,
    env: {
      ...process.env,
      BENCH_MEMORY_FILE: memoryFile,
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: db.url,
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: server.componentDomain,
      XMPP_SECRET: server.componentSecret,
      JWT_SECRET,
      LOG_LEVEL: "warn",
      ...GATEWAY_ENV,
    },
    stdio: ["ignore", out, out],
  });
  closeSync(out);
  exitKills.add(child);
  reaper.tell({ gatewayPid: child.pid });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  // Without --trace-gc's lines ("[pid:isolate] ... ms: Scavenge ..."): they would crowd out the gateway's own.
  const logTail = () =>
    readFileSync(logFile, "utf8")
      .trimEnd()
      .split("\n")
      .filter((l) => !/^\[\d+:0x[0-9a-f]+\]/.test(l))
      .slice(-20)
      .join("\n");
  onCleanup("gateway", async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    if (!(await Promise.race([exited.then(() => true), sleep(12_000).then(() => false)]))) child.kill("SIGKILL");
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForOwnAnswer(child, port, "/readyz", { timeoutMs: 60_000, intervalMs: 100, output: logTail });
  const pid = child.pid!;
  /** The gateway's memory right after a full garbage collection (bench/lib/gc-probe.mjs), RSS included. */
  const memory = async (): Promise<{ rss: number; heapUsed: number; external: number }> => {
    rmSync(memoryFile, { force: true });
    process.kill(pid, "SIGUSR2");
    for (const deadline = Date.now() + 10_000; !existsSync(memoryFile); await sleep(20)) if (Date.now() > deadline) throw new Error("the gateway did not report its memory (gc-probe)");
    const m = JSON.parse(readFileSync(memoryFile, "utf8")) as { heapUsed: number; external: number };
    return { rss: rssKiB(pid) * 1024, heapUsed: m.heapUsed, external: m.external };
  };

  // Accounts and tokens: the hot account first.
  const accounts = ["hot", ...Array.from({ length: Math.ceil((N - HOT) / PER_ACCOUNT) }, (_, i) => `cold${i}`)];
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 7200 }, JWT_SECRET, { algorithm: "HS256" });
  let nextAccount = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (nextAccount < accounts.length) {
        const localpart = accounts[nextAccount++]!;
        const r = await fetch(`${url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ localpart }) });
        if (r.status !== 201) throw new Error(`creating ${localpart}: ${r.status} ${await r.text()}`);
      }
    }),
  );
  const tokens = accounts.map((a) => jwt.sign({ sub: a, exp: Math.floor(Date.now() / 1000) + 7200 }, JWT_SECRET, { algorithm: "HS256" }));
  const streams: Stream[] = Array.from({ length: N }, (_, i) => ({
    i,
    token: i < HOT ? tokens[0]! : tokens[1 + Math.floor((i - HOT) / PER_ACCOUNT)]!,
    resource: `s${i}`,
    req: null,
    open: false,
    heartbeats: 0,
    got: 0,
    at: 0,
    lastId: null,
    retries: 0,
  }));
  // Warm up the gateway's code paths (JIT, caches) with a few streams, then measure from there.
  await openAll(streams.slice(0, 20), false);
  for (const s of streams.slice(0, 20)) s.req?.destroy();
  const streamsGauge = () => metric(url, "balcony_event_streams");
  for (const deadline = Date.now() + 30_000; (await streamsGauge()) !== 0 && Date.now() < deadline; ) await sleep(50);
  await sleep(500);
  const memBase = await memory();

  log(`opening ${N} streams (new sessions)`);
  const firstRate = await openAll(streams, false);
  const refusedFirst = refused;
  refused = 0;
  // What a fresh process holds for N streams (as after a gateway restart, when they all come back).
  await sleep(2000);
  const memFirst = await memory();
  log(`opened at ${firstRate.toFixed(0)}/s; dropping them all, then reconnecting`);
  for (const s of streams) s.req?.destroy();
  for (const deadline = Date.now() + 120_000; (await streamsGauge()) !== 0; await sleep(100)) if (Date.now() > deadline) throw new Error("streams still counted open 120 s after they were dropped");
  await sleep(1000);
  const openFrom = monoUs();
  const reopenRate = await openAll(streams, true);
  const openTo = monoUs();
  log(`reconnected at ${reopenRate.toFixed(0)}/s; settling, then idle for ${IDLE_S} s`);
  // Idle means steady state: the reconnect's own work (the closes' batched writes, the garbage of
  // 20,000 connections) is over before the window starts. A full GC (the same probe) clears the
  // garbage; without it, its collection fell in the window and identical runs read 2.0 and 5.5%.
  await sleep(3000);
  await memory();
  await sleep(2000);
  const open0 = streams.filter((s) => s.open).length;
  const gauge0 = await streamsGauge();

  // Idle.
  const hb0 = streams.map((s) => s.heartbeats);
  const statsClient = new pg.Client({ connectionString: db.url });
  await statsClient.connect();
  onCleanup("stats client", () => statsClient.end());
  const dbStats = async () =>
    (
      await statsClient.query<{ xact: number; upd: number; hot: number; idx: number }>(
        `SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())::int AS xact,
                (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'session')::int AS upd,
                (SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'session')::int AS hot,
                (SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'event')::int AS idx`,
      )
    ).rows[0]!;
  // Statistics reach pg_stat_* up to 10 s late (PostgreSQL 15): compare windows shifted alike.
  const stats0 = await dbStats();
  const idleFrom = monoUs();
  // --trace-gc writes a line per collection to the gateway's log: what is appended in the window.
  const gcFrom = statSync(logFile).size;
  // The gateway's process and the bench database's backends (bench/lib/cpu.ts's groups).
  const cpuContext: CpuContext = { serverKind: "prosody", serverWorkDir: server.workDir, gatewayPid: pid, dbName: db.name };
  const cpu0 = cpuSnapshot(cpuContext);
  const g0 = cpuSeconds(pid);
  const sleeps0 = mainThreadSleeps(pid);
  const t0 = performance.now();
  // The gateway's CPU in 5 s slices too: V8's memory reducer collects the whole heap twice some
  // seconds after the last full collection (the probe's, the reconnect's), once allocation is low,
  // at about a second of CPU with 10,000 streams; the collections line of the table names it, and
  // the slices show the steady state apart from it.
  const slices: number[] = [];
  for (let at = 0, prev = g0; at < IDLE_S * 1000; ) {
    const step = Math.min(IDLE_SLICE_MS, IDLE_S * 1000 - at);
    await sleep(step);
    at += step;
    const t = cpuSeconds(pid);
    if (step === IDLE_SLICE_MS) slices.push((t - prev) / (step / 1000));
    prev = t;
  }
  const seconds = (performance.now() - t0) / 1000;
  const wakeups = (mainThreadSleeps(pid) - sleeps0) / seconds;
  const { cores } = cpuSplit(cpu0, cpuSnapshot(cpuContext));
  const gatewayCores = cores[GROUPS.gateway] ?? 0;
  const pgCores = cores[GROUPS.dbBackends] ?? 0;
  const idleTo = monoUs();
  const gcLog = readFileSync(logFile);
  const gcTally = tallyGcTrace(gcLog.subarray(gcFrom).toString("utf8"));
  // The probe's forced full collections (memory(), before the window) are always in the trace: none
  // means the trace is off, and the window's "0 collections" would be a reading of nothing.
  if (tallyGcTrace(gcLog.toString("utf8")).full.count === 0) throw new Error("no --trace-gc lines in the gateway's log: not even the probe's full collections");
  const rssIdle = rssKiB(pid) * 1024;
  const mem = await memory();
  const perStream = (memFirst.rss - memBase.rss) / 1024 / N;
  const perStreamChurned = (mem.rss - memBase.rss) / 1024 / N;
  const withHeartbeat = streams.filter((s, i) => s.heartbeats > hb0[i]!).length;
  const stats1 = SMOKE ? null : (await sleep(11_000), await dbStats());

  // One event to the hot account.
  const juliet = await connectUser(server, "juliet", "pw-juliet", "bench");
  onCleanup("juliet", () => juliet.stop());
  const reads0 = await metric(url, "balcony_event_log_reads_total");
  const idx0 = SMOKE ? null : (await dbStats()).idx;
  fanoutBody = `fanout-${randomBytes(6).toString("hex")}`;
  fanoutT0 = performance.now();
  await juliet.sendMessage(`hot@${server.componentDomain}`, fanoutBody);
  const hot = streams.slice(0, HOT);
  for (const deadline = Date.now() + 30_000; hot.some((s) => s.got === 0) && Date.now() < deadline; ) await sleep(5);
  const reached = hot.filter((s) => s.got > 0).length;
  const fanoutMs = Math.max(...hot.map((s) => (s.got > 0 ? s.at : Infinity)));
  await sleep(1000); // duplicates, if any, arrive meanwhile
  const reads = reads0 === null ? null : (await metric(url, "balcony_event_log_reads_total"))! - reads0;
  const idxScans = idx0 === null ? null : (await sleep(11_000), (await dbStats()).idx - idx0);
  const twice = hot.filter((s) => s.got > 1).length;
  const strays = streams.slice(HOT).filter((s) => s.got > 0).length;
  const openEnd = streams.filter((s) => s.open).length;
  const lossless = reached === HOT && twice === 0 && strays === 0 && open0 === N && openEnd === N;

  // Close the streams and stop the gateway (it writes its CPU profile on exit).
  for (const s of streams) s.req?.destroy();
  await cleanupGateway();
  async function cleanupGateway() {
    const entry = cleanups.findIndex((c) => c.what === "gateway");
    if (entry >= 0) await cleanups.splice(entry, 1)[0]!.fn();
  }
  const profile: ProfileSummary[] = [];
  if (profileDir) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"));
    if (files[0]) {
      profile.push(summarizeProfile(join(profileDir, files[0]), GATEWAY_DIR, openFrom, openTo));
      profile.push(summarizeProfile(join(profileDir, files[0]), GATEWAY_DIR, idleFrom, idleTo));
      log(`profile: ${join(profileDir, files[0])}`);
    }
  }

  const MiB = 1024 * 1024;
  const f = (x: number, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const rows: Row[] = [
    { figure: "open rate, reconnect (existing sessions)", value: `${f(reopenRate)} streams/s`, target: ">= 2,000 streams/s", ok: reopenRate >= 2000 },
    { figure: "open rate, first open (new sessions)", value: `${f(firstRate)} streams/s`, target: "(info)", ok: null },
    { figure: "opens refused (503/429) and retried: first / reconnect", value: `${refusedFirst} / ${refused}`, target: "0 / 0", ok: refusedFirst === 0 && refused === 0 },
    { figure: "streams open after reconnect (client / gateway gauge)", value: `${open0} / ${gauge0}`, target: `${N}`, ok: open0 === N && gauge0 === N },
    {
      figure: "gateway RSS per stream, first open (after a full GC)",
      value: `${f(perStream, 1)} KiB (${f(memFirst.rss / MiB)} MiB for ${N}, ${f(memBase.rss / MiB)} MiB before)`,
      target: "<= 16 KiB",
      ok: perStream <= 16,
    },
    {
      figure: "  JS heap / external per stream, first open; after reconnect",
      value: `${f((memFirst.heapUsed - memBase.heapUsed) / 1024 / N, 1)} / ${f((memFirst.external - memBase.external) / 1024 / N, 1)} KiB; ${f((mem.heapUsed - memBase.heapUsed) / 1024 / N, 1)} / ${f((mem.external - memBase.external) / 1024 / N, 1)} KiB`,
      target: "(info)",
      ok: null,
    },
    // After 20,000 connections came and went, RSS also holds what V8 and malloc keep for reuse.
    { figure: "  RSS per stream after the reconnect and idle (after a full GC)", value: `${f(perStreamChurned, 1)} KiB (${f(mem.rss / MiB)} MiB; ${f(rssIdle / MiB)} MiB before that GC)`, target: "(info)", ok: null },
    { figure: `gateway CPU, idle ${f(seconds, 1)} s`, value: `${f(gatewayCores * 100, 2)}% of a core`, target: "< 2% of a core", ok: gatewayCores < 0.02 },
    {
      figure: `  gateway CPU, idle, per ${IDLE_SLICE_MS / 1000} s slice: median / max`,
      value: slices.length ? `${f(median(slices) * 100, 2)}% / ${f(Math.max(...slices) * 100, 2)}% of a core, ${slices.length} slice(s)` : "n/a (idle window under one slice)",
      target: "(info)",
      ok: null,
    },
    // Each wake-up costs CPU of its own on this VM (0.2-0.3 ms in a bare node process), whatever it does.
    { figure: "  gateway wake-ups, idle (its main thread's sleeps)", value: `${f(wakeups, 1)} a second`, target: "(info)", ok: null },
    {
      figure: "  V8 collections in the window: memory reducer / other full / young (main-thread ms)",
      value: formatGcTally(gcTally),
      target: "(info)",
      ok: null,
    },
    { figure: "Postgres CPU (bench DB backends), idle", value: `${f(pgCores * 100, 2)}% of a core`, target: "near zero (< 1%)", ok: pgCores < 0.01 },
    {
      figure: "transactions / session rows updated (of which HOT), idle",
      value: stats1 ? `${f(stats1.xact - stats0.xact)} / ${f(stats1.upd - stats0.upd)} (${f(stats1.hot - stats0.hot)}) (${f((stats1.xact - stats0.xact) / seconds, 1)} tx/s)` : "n/a (--smoke)",
      target: "(info)",
      ok: null,
    },
    { figure: "streams that got a heartbeat while idle", value: `${withHeartbeat}`, target: `${N} (if idle >= heartbeat)`, ok: null },
    { figure: `one event to ${HOT} streams of one account: all have it after`, value: `${f(fanoutMs, 1)} ms (${reached}/${HOT})`, target: `all ${HOT}, exactly once`, ok: reached === HOT && twice === 0 },
    { figure: "  duplicates / events on other accounts' streams", value: `${twice} / ${strays}`, target: "0 / 0", ok: twice === 0 && strays === 0 },
    { figure: "  event-log reads by the gateway for it", value: reads === null ? "n/a (no metric)" : f(reads), target: "<= 1 per instance", ok: reads === null ? null : reads <= 1 },
    { figure: "  event table scans in Postgres for it", value: idxScans === null ? "n/a (--smoke)" : f(idxScans), target: "(info)", ok: null },
    { figure: "streams still open at the end", value: `${openEnd}`, target: `${N}`, ok: openEnd === N },
    { figure: "ulimit -n (bench and gateway)", value: ULIMIT_N, target: `>= ${need}`, ok: true },
  ];
  return { rows, profile, lossless };
}

let exitCode = 0;
try {
  const { rows, profile, lossless } = await main();
  const w = Math.max(...rows.map((r) => r.figure.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  const lines = [
    `Idle event streams: ${N} streams (${HOT} on one account), gateway ${GATEWAY_DIR} (${opt.built ? `node ${startArgs(GATEWAY_DIR).join(" ")}, as npm start` : "tsx src/server.ts"}), ${new Date().toISOString()}`,
    `${"figure".padEnd(w)}  ${"measured".padEnd(v)}  target`,
    ...rows.map((r) => `${r.figure.padEnd(w)}  ${r.value.padEnd(v)}  ${r.target}${r.ok === null ? "" : r.ok ? "  ok" : "  MISSED"}`),
    `result: ${lossless ? "completed without loss" : "LOSS: see the rows above"}`,
    ...profile.map((p, i) => `\n[${i === 0 ? "reconnect phase" : "idle phase"}] ${formatProfile(p)}`),
  ];
  const text = lines.join("\n");
  if (opt.json) {
    process.stderr.write(`${text}\n`);
    process.stdout.write(`${JSON.stringify({ streams: N, hot: HOT, lossless, rows })}\n`);
  } else process.stdout.write(`${text}\n`);
  if (!lossless) exitCode = 1;
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  await cleanup();
  reaper.done();
}
process.exit(exitCode);
