// Inbound benchmark (`npx tsx bench/inbound.ts [--smoke] [--json] [--cpu-prof] …`): XMPP → SSE.
//
// A real XMPP user, logged in to Prosody (or ejabberd, --server ejabberd) over c2s, sends chat
// messages to a Balcony account (inbox@<component domain>). Each is timed from its write on the
// user's socket to its arrival as an SSE `message` event at a client of GET /v1/events (parsed
// with eventsource-parser, in a worker thread). One run measures, with the same user and stanzas:
//   1. the ceiling: a raw XEP-0114 component (@xmpp/component, in a worker thread) on the
//      component domain receiving the stanzas: the XMPP server's routing, no database, no HTTP;
//   2. Balcony: the gateway as a separate process (node --import tsx src/server.ts) on a fresh
//      PostgreSQL database, with one SSE client on the account.
// Each side gets a throughput run (N messages written as fast as the server's c2s socket takes
// them) and an open-loop run at a fixed rate (500 msg/s by default: stanza i is written at
// start + i/rate whatever happened to the ones before), the latter with CPU per process group.
// Targets, printed with PASS/FAIL: p99 ≤ 5 ms at the fixed rate; throughput ≥ 0.5 × the ceiling.
//
// The test harness's servers do not throttle c2s: Prosody's config (scripts/harness/xmpp-server.ts)
// loads no mod_limits, and ejabberd's c2s listener has no shaper. Lost = not arrived within
// --loss-timeout seconds of the last arrival. Progress goes to stderr; everything started is
// removed on success, error, Ctrl-C or the overall timeout (bench/reaper.ts if we are killed).
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import jwt from "jsonwebtoken";
import pg from "pg";
import { createTestDatabase } from "../scripts/harness/database.js";
import { startXmppServer } from "../scripts/harness/xmpp-server.js";
import { formatProfile, summarizeProfile, type ProfileSummary } from "./cpuprofile.js";
import { cpuSnapshot, cpuSplit, formatCpu, formatSleeps, formatWaits, type CpuContext, type CpuSplit } from "./lib/cpu.js";
import { startGatewayProcess, api } from "./lib/gateway.js";
import { armOverallTimeout, checkAborted, isAborting, onCleanup, printReport, reaper, runBench } from "./lib/lifecycle.js";
import { bodyText, envOptions, erlangBusyWaitSetting, intOption as intOptionOf, log, monoUs, sleep, stats, type LatencyStats } from "./lib/util.js";
import { startReceiver, type Receiver, type Records } from "./inbound-receiver-client.js";
import { summarizeStalls, type RunWindows, type StallSummary } from "./lib/loop-stalls.js";
import { sampleAllocations, summarizeAllocations, type AllocSummary } from "./lib/alloc.js";
import { Sender, type SendResult } from "./inbound-sender.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;
const SENDER_USER = "alice";
const ACCOUNT = "inbox";
const STREAM_RESOURCE = "bench";
/** Stanzas per socket write in the throughput runs. */
const CHUNK = 64;
const P99_TARGET_MS = 5;
const RATIO_TARGET = 0.5;

// ---------------------------------------------------------------------------------------------
// Options

const USAGE = `usage: npx tsx bench/inbound.ts [options]
  --messages N        messages in the throughput runs (default 20000)
  --rate R            messages per second of the fixed-rate latency runs (default 500)
  --rate-messages M   messages in the fixed-rate runs (default 5000, i.e. 10 s at 500/s)
  --warmup W          warm-up messages before the measured runs (default 2000)
  --receipts          the messages ask for XEP-0184 receipts (the gateway answers once a stream has them)
  --server KIND       prosody (default) or ejabberd
  --erlang-busy-wait  run ejabberd with the Erlang VM's default scheduler busy wait (the harness
                      turns it off: scripts/harness/xmpp-server.ts erlangBusyWait)
  --loss-timeout S    a message not arrived S seconds after the last arrival is lost (default 10)
  --timeout S         overall time limit (default 300)
  --env KEY=VALUE     extra environment for the gateway (repeatable), e.g. --env DB_POOL_MAX=20
  --cpu-prof          run the gateway with --cpu-prof and summarise where its CPU time went
  --skip-ceiling      only measure Balcony
  --stalls            load bench/lib/loop-probe.mjs into the gateway (a 1 ms timer: costs CPU of its
                      own) and tell how many of the fixed-rate run's messages at or over its p99 were
                      in flight while the gateway's event loop stood still over 4 ms, or collected
  --alloc             load bench/lib/alloc-probe.mjs into the gateway (V8's sampling heap profiler:
                      costs CPU of its own) and tell how many KB it allocated a message during the
                      fixed-rate run, by file: the same on a busy machine as on a quiet one
  --smoke             300 + 250 messages, warm-up 50, loss timeout 5 s (checks that everything works)
  --json              print the figures as one JSON line on stdout (the table goes to stderr)`;

const { values: opt } = parseArgs({
  options: {
    messages: { type: "string" },
    rate: { type: "string", default: "500" },
    "rate-messages": { type: "string" },
    warmup: { type: "string" },
    receipts: { type: "boolean", default: false },
    server: { type: "string", default: "prosody" },
    "erlang-busy-wait": { type: "boolean", default: false },
    "loss-timeout": { type: "string" },
    timeout: { type: "string" },
    env: { type: "string", multiple: true, default: [] },
    "cpu-prof": { type: "boolean", default: false },
    "skip-ceiling": { type: "boolean", default: false },
    stalls: { type: "boolean", default: false },
    alloc: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}

const intOption = (name: string, raw: string | undefined, fallback: number, smoke: number, min: number) =>
  intOptionOf({ usage: USAGE, smoke: !!opt.smoke }, name, raw, fallback, smoke, min);

const N = intOption("messages", opt.messages, 20_000, 300, 1);
const RATE = intOption("rate", opt.rate, 500, 500, 1);
const RATE_N = intOption("rate-messages", opt["rate-messages"], 5000, 250, 1);
const WARMUP = intOption("warmup", opt.warmup, 2000, 50, 0);
const LOSS_TIMEOUT_MS = intOption("loss-timeout", opt["loss-timeout"], 10, 5, 1) * 1000;
const TIMEOUT_MS = intOption("timeout", opt.timeout, 300, 100, 10) * 1000;
const SERVER_KIND = opt.server;
if (SERVER_KIND !== "prosody" && SERVER_KIND !== "ejabberd") {
  console.error(`--server: expected prosody or ejabberd, got "${SERVER_KIND}"`);
  process.exit(2);
}
const GATEWAY_ENV = envOptions({}, opt.env);

// ---------------------------------------------------------------------------------------------
// Runs and their figures

export interface RunResult {
  sent: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Arrivals of a stanza before one sent earlier by the same user (order per sender broken). */
  reordered: number;
  /** Arrived ids that this run did not send. */
  strays: number;
  /** SSE only: consecutive `message` events whose ids are not n, n+1 (a gap or a repeat). */
  seqBreaks: number | null;
  /** Anything else that arrived: other event types, other stanzas. */
  other: Record<string, number>;
  /** First write → last arrival. */
  seconds: number;
  msgsPerSec: number;
  /** Rate at which the sender's socket took the stanzas. */
  sendPerSec: number;
  /** Write at the XMPP user → arrival. */
  latencyMs: LatencyStats;
  /** Fixed-rate runs: the worst lateness of a write behind its schedule. */
  maxSendLagMs: number;
  cpu: CpuSplit;
}

class Phase {
  private seq: number | null = null;
  lastWindows: RunWindows | null = null;

  constructor(
    private readonly tag: string,
    private readonly to: string,
    private readonly sender: Sender,
    private readonly receiver: Receiver,
    private readonly cpu: CpuContext,
    private readonly sse: boolean,
  ) {}

  private offset = 0;

  private stanzas(name: string, count: number): { ids: string[]; xml: string[] } {
    const ids: string[] = [];
    const xml: string[] = [];
    const request = opt.receipts ? '<request xmlns="urn:xmpp:receipts"/>' : "";
    for (let i = 0; i < count; i++) {
      const id = `${this.tag}-${name}-${i}`;
      ids.push(id);
      xml.push(`<message to="${this.to}" type="chat" id="${id}"><body>${bodyText("inbound", this.offset + i)}</body>${request}</message>`);
    }
    this.offset += count;
    return { ids, xml };
  }

  /** `rate` null: as fast as the socket takes them. */
  async run(name: string, count: number, rate: number | null): Promise<RunResult> {
    const { ids, xml } = this.stanzas(name, count);
    const before = cpuSnapshot(this.cpu);
    const sent = rate === null ? await this.sender.blast(xml, CHUNK, isAborting) : await this.sender.paced(xml, rate, isAborting);
    await this.receiver.waitFor(count, LOSS_TIMEOUT_MS, isAborting);
    const after = cpuSnapshot(this.cpu);
    checkAborted();
    return this.analyse(ids, sent, await this.receiver.take(), cpuSplit(before, after));
  }

  private analyse(ids: string[], sent: SendResult, recv: Records, cpu: CpuSplit): RunResult {
    const index = new Map(ids.map((id, i) => [id, i]));
    const first = new Map<string, number>();
    let duplicates = 0;
    let strays = 0;
    let reordered = 0;
    let highest = -1;
    let seqBreaks = 0;
    recv.ids.forEach((id, k) => {
      if (this.sse) {
        const seq = recv.seqs[k]!;
        if (this.seq !== null && seq !== this.seq + 1) seqBreaks++;
        this.seq = seq;
      }
      if (first.has(id)) return void duplicates++;
      first.set(id, recv.times[k]!);
      const i = index.get(id);
      if (i === undefined) return void strays++;
      if (i < highest) reordered++;
      highest = Math.max(highest, i);
    });
    const latencies: number[] = [];
    let last = sent.t0;
    ids.forEach((id, i) => {
      const t = first.get(id);
      if (t === undefined) return;
      latencies.push(t - sent.sendTimes[i]!);
      last = Math.max(last, t);
    });
    const seconds = (last - sent.t0) / 1000;
    const latencyMs = stats(latencies);
    const slow: [number, number][] = [];
    ids.forEach((id, i) => {
      const t = first.get(id);
      if (t !== undefined && t - sent.sendTimes[i]! >= latencyMs.p99) slow.push([sent.sendTimes[i]!, t]);
    });
    this.lastWindows = { span: [sent.t0, last], slow };
    return {
      sent: ids.length,
      delivered: latencies.length,
      lost: ids.length - latencies.length,
      duplicates,
      reordered,
      strays,
      seqBreaks: this.sse ? seqBreaks : null,
      other: recv.other,
      seconds,
      msgsPerSec: latencies.length / seconds,
      sendPerSec: ids.length / Math.max(1e-3, (sent.written - sent.t0) / 1000),
      latencyMs,
      maxSendLagMs: sent.maxLagMs,
      cpu,
    };
  }
}

interface Side {
  throughput: RunResult;
  fixedRate: RunResult;
}

/**
 * Warm-up, the throughput run, then the fixed-rate run; `windows` gets the measured runs' times
 * (profile windows); `probe` is started just before the fixed-rate run and stopped once it is over.
 */
async function measure(label: string, phase: Phase, receiver: Receiver, windows?: Record<string, [number, number]>, probe?: () => { stop: () => Promise<void> }): Promise<Side> {
  if (WARMUP > 0) {
    log(`${label}: warm-up, ${WARMUP} messages`);
    await phase.run("warmup", WARMUP, null);
  }
  checkAborted();
  log(`${label}: throughput, ${N} messages as fast as the server takes them`);
  let from = monoUs();
  const throughput = await phase.run("throughput", N, null);
  if (windows) windows.throughput = [from, monoUs()];
  log(`${label}: ${fmtInt(throughput.msgsPerSec)} msg/s, ${throughput.lost} lost, p50 ${fmtMs(throughput.latencyMs.p50)} ms`);
  // Let queues empty before the latency run.
  await sleep(500);
  checkAborted();
  log(`${label}: ${RATE_N} messages at ${RATE} msg/s`);
  from = monoUs();
  const probing = probe?.();
  const fixedRate = await phase.run("rate", RATE_N, RATE);
  if (windows) windows.fixedRate = [from, monoUs()];
  await probing?.stop();
  log(`${label}: at ${RATE}/s p50 ${fmtMs(fixedRate.latencyMs.p50)} ms, p99 ${fmtMs(fixedRate.latencyMs.p99)} ms, ${fixedRate.lost} lost`);
  if (receiver.errors.length) log(`${label}: receiver errors: ${receiver.errors.slice(0, 3).join("; ")}`);
  return { throughput, fixedRate };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Target {
  name: string;
  value: number;
  target: number;
  pass: boolean;
}

export interface Report {
  params: {
    messages: number;
    rate: number;
    rateMessages: number;
    warmup: number;
    receipts: boolean;
    smoke: boolean;
    server: string;
    serverLimits: string;
    cores: number;
    cpu: string;
    node: string;
    gatewayEnv: Record<string, string>;
    loadAvgBefore: number[];
  };
  ceiling: Side | null;
  balcony: Side;
  /** Balcony throughput / ceiling throughput. */
  ratio: number | null;
  targets: Target[];
  /** Stanzas the XMPP server sent back to the sending user (bounces would show here). */
  senderReceived: Record<string, number>;
  profile: { throughput: ProfileSummary | null; fixedRate: ProfileSummary | null } | null;
  /** --stalls: the gateway's event loop during Balcony's fixed-rate run (bench/lib/loop-probe.mjs). */
  stalls: StallSummary | null;
  /** --alloc: what the gateway allocated during Balcony's fixed-rate run (bench/lib/alloc-probe.mjs). */
  alloc: AllocSummary | null;
}

const fmtInt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const fmtMs = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");

function formatReport(r: Report): string {
  const p = r.params;
  const rows: string[][] = [["", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "lost", "dupes", "reord"]];
  const row = (label: string, x: RunResult) => [
    label,
    fmtInt(x.msgsPerSec),
    fmtMs(x.latencyMs.p50),
    fmtMs(x.latencyMs.p90),
    fmtMs(x.latencyMs.p99),
    fmtMs(x.latencyMs.max),
    String(x.lost),
    String(x.duplicates),
    String(x.reordered),
  ];
  if (r.ceiling) {
    rows.push(row(`Ceiling (raw component), throughput, N=${p.messages}`, r.ceiling.throughput));
    rows.push(row(`Ceiling (raw component), ${p.rate}/s, ${p.rateMessages} msgs`, r.ceiling.fixedRate));
  }
  rows.push(row(`Balcony XMPP → SSE, throughput, N=${p.messages}`, r.balcony.throughput));
  rows.push(row(`Balcony XMPP → SSE, ${p.rate}/s, ${p.rateMessages} msgs`, r.balcony.fixedRate));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((cells) => (cells[i] ?? "").length)));
  const table = rows.map((cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
  const b = r.balcony;
  const lines = [
    "",
    `Balcony inbound benchmark${p.smoke ? " (smoke)" : ""}: ${p.server} (${p.serverLimits}), ${p.cores} cores (${p.cpu}), Node ${p.node}, load average before ${p.loadAvgBefore.map((x) => x.toFixed(2)).join(" ")}`,
    `XMPP user (c2s) → ${ACCOUNT}@<component domain> → GET /v1/events (SSE); warm-up ${p.warmup}${p.receipts ? "; receipts requested" : ""}${Object.keys(p.gatewayEnv).length ? `; gateway env ${JSON.stringify(p.gatewayEnv)}` : ""}`,
    "",
    table,
    "",
    ...r.targets.map((t) => `Target ${t.name}: ${t.name.startsWith("p99") ? `${fmtMs(t.value)} ms ≤ ${t.target} ms` : `${(t.value * 100).toFixed(1)}% ≥ ${t.target * 100}%`}  ${t.pass ? "PASS" : "FAIL"}`),
    "",
  ];
  const detail = (label: string, x: RunResult) => {
    lines.push(`${label}: ${x.delivered}/${x.sent} arrived in ${x.seconds.toFixed(2)} s (sender wrote at ${fmtInt(x.sendPerSec)} msg/s${x.maxSendLagMs ? `, at worst ${fmtMs(x.maxSendLagMs)} ms behind schedule` : ""}), mean ${fmtMs(x.latencyMs.mean)} ms${x.strays ? `, ${x.strays} strays` : ""}${x.seqBreaks ? `, ${x.seqBreaks} SSE id gaps/repeats` : ""}${Object.keys(x.other).length ? `, other: ${JSON.stringify(x.other)}` : ""}`);
    lines.push(`  cores used: ${formatCpu(x.cpu, p.server)}`);
    lines.push(`  waiting for a core (all threads, ms per s): ${formatWaits(x.cpu, p.server)}`);
    lines.push(`  wake-ups a message (sleeps of all threads): ${formatSleeps(x.cpu, p.server, x.sent)}`);
  };
  if (r.ceiling) {
    detail("Ceiling throughput", r.ceiling.throughput);
    detail(`Ceiling at ${p.rate}/s`, r.ceiling.fixedRate);
  }
  detail("Balcony throughput", b.throughput);
  detail(`Balcony at ${p.rate}/s`, b.fixedRate);
  if (Object.keys(r.senderReceived).length) lines.push(`The sending user received: ${JSON.stringify(r.senderReceived)}`);
  const st = r.stalls;
  if (st) {
    lines.push(
      `Balcony at ${p.rate}/s, the gateway's event loop (--stalls: a 1 ms timer in the gateway, which costs CPU of its own): ${st.gaps} gaps over 4 ms (median ${fmtMs(st.gapMsP50)} ms, longest ${fmtMs(st.gapMsMax)} ms, ${Number.isFinite(st.gapOnCpu) ? `${(st.gapOnCpu * 100).toFixed(0)}%` : "-"} of their time on a CPU), ${st.gcs} collections (${fmtMs(st.gcMs)} ms)`,
      `  of the ${st.slow} messages at or over p99, ${st.slowDuringGap} were in flight during a gap, ${st.slowDuringGc} during a collection${st.loaded ? "" : " (the probe did not load: no figures)"}`,
    );
  }
  if (r.alloc) {
    const kb = (x: number) => x.toFixed(1);
    lines.push(
      `Balcony at ${p.rate}/s, allocated by the gateway (--alloc: V8's sampling heap profiler, which costs CPU of its own): ${kb(r.alloc.kbPerMessage)} KB a message over ${r.alloc.messages} messages`,
      `  by file, KB a message: ${r.alloc.byFile.map((e) => `${e.name} ${kb(e.kbPerMessage)}`).join(", ")}`,
    );
  }
  if (r.profile?.throughput) lines.push("", `Throughput run: ${formatProfile(r.profile.throughput)}`);
  if (r.profile?.fixedRate) lines.push("", `${p.rate}/s run: ${formatProfile(r.profile.fixedRate)}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<Report> {
  const workDir = mkdtempSync(join(tmpdir(), "balcony-bench-inbound-"));
  if (!opt["cpu-prof"]) reaper.tell({ dir: workDir });
  onCleanup("bench work dir", () => {
    if (!opt["cpu-prof"]) rmSync(workDir, { recursive: true, force: true });
  });
  armOverallTimeout(TIMEOUT_MS);
  const loadAvgBefore = loadavg();
  const tag = randomBytes(3).toString("hex");

  log(`starting ${SERVER_KIND}`);
  const server = await startXmppServer(SERVER_KIND, { erlangBusyWait: opt["erlang-busy-wait"] });
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup(SERVER_KIND, () => server.stop());
  const password = randomBytes(8).toString("hex");
  await server.registerUser(SENDER_USER, password);
  const sender = await Sender.start({ service: `xmpp://${server.host}:${server.c2sPort}`, domain: server.userDomain, username: SENDER_USER, password, resource: "bench" });
  onCleanup("sending user", () => sender.stop());
  const to = `${ACCOUNT}@${server.componentDomain}`;
  log(`sender online as ${sender.jid}, sending to ${to}`);
  const cpu: CpuContext = { serverKind: SERVER_KIND, serverWorkDir: server.workDir };

  let ceiling: Side | null = null;
  if (!opt["skip-ceiling"]) {
    const component = await startReceiver({ mode: "component", service: server.componentService, domain: server.componentDomain, password: server.componentSecret });
    onCleanup("raw component", () => component.stop());
    ceiling = await measure("ceiling", new Phase(`${tag}c`, to, sender, component, cpu, false), component);
    // Prosody takes one connection per component domain: the gateway's comes next.
    await component.stop();
  }
  checkAborted();

  const db = await createTestDatabase();
  const baseUrl = new URL(db.url);
  baseUrl.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: baseUrl.toString() });
  onCleanup("database", () => db.drop());
  log(`starting the gateway (database ${db.name})`);
  const loopFile = opt.stalls ? join(workDir, "gateway-loop.txt") : undefined;
  const allocFile = opt.alloc ? join(workDir, "gateway-alloc.heapprofile") : undefined;
  const gateway = await startGatewayProcess({ server, databaseUrl: db.url, workDir, gatewayDir: ROOT, jwtSecret: JWT_SECRET, cpuProf: !!opt["cpu-prof"], env: GATEWAY_ENV, loopFile, allocFile });
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 3600 }, JWT_SECRET, { algorithm: "HS256" });
  await api(gateway.url, "/v1/accounts", admin, { localpart: ACCOUNT }, 201);
  if (opt.receipts) {
    // Receipts go only to a sender that may see the account's presence (XEP-0184 §8): the sender
    // gets a subscription from, as the account's approval of its request would give it.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query("INSERT INTO roster_item (account_id, jid, subscription) SELECT id, $2, 'from' FROM account WHERE localpart = $1", [ACCOUNT, sender.jid.split("/")[0]]);
    await c.end();
  }
  const { token } = await api<{ token: string }>(gateway.url, "/v1/tokens", admin, { account: ACCOUNT, resource: STREAM_RESOURCE, ttlSeconds: 3600 }, 201);
  const stream = await startReceiver({ mode: "sse", url: gateway.url, token, resource: STREAM_RESOURCE });
  onCleanup("SSE client", () => stream.stop());
  const windows: Record<string, [number, number]> = {};
  const balconyPhase = new Phase(`${tag}b`, to, sender, stream, { ...cpu, gatewayPid: gateway.pid, dbName: db.name }, true);
  const allocated: { summary: AllocSummary | null } = { summary: null };
  const probe = allocFile
    ? () => {
        const sampling = sampleAllocations(gateway.pid, allocFile);
        return { stop: async () => void (allocated.summary = summarizeAllocations(await sampling.stop(), ROOT, RATE_N)) };
      }
    : undefined;
  const balcony = await measure("Balcony", balconyPhase, stream, windows, probe);
  if (stream.errors.length) throw new Error(`the SSE client failed: ${stream.errors.join("; ")}`);
  let stalls: StallSummary | null = null;
  if (loopFile) {
    await sleep(300); // the probe writes every 100 ms
    stalls = summarizeStalls(readFileSync(loopFile, "utf8"), balconyPhase.lastWindows!);
  }

  let profile: Report["profile"] = null;
  if (gateway.profileDir) {
    await stream.stop();
    await gateway.stop();
    const files = readdirSync(gateway.profileDir).filter((f) => f.endsWith(".cpuprofile"));
    if (files.length) {
      const file = join(gateway.profileDir, files[0]!);
      const window = (w: [number, number] | undefined) => (w ? summarizeProfile(file, ROOT, w[0], w[1]) : null);
      profile = { throughput: window(windows.throughput), fixedRate: window(windows.fixedRate) };
    } else {
      log(`no CPU profile was written in ${gateway.profileDir}`);
    }
  }

  const ratio = ceiling ? balcony.throughput.msgsPerSec / ceiling.throughput.msgsPerSec : null;
  const targets: Target[] = [{ name: `p99 at ${RATE}/s`, value: balcony.fixedRate.latencyMs.p99, target: P99_TARGET_MS, pass: balcony.fixedRate.latencyMs.p99 <= P99_TARGET_MS }];
  if (ratio !== null) targets.push({ name: "throughput / ceiling", value: ratio, target: RATIO_TARGET, pass: ratio >= RATIO_TARGET });
  return {
    params: {
      messages: N,
      rate: RATE,
      rateMessages: RATE_N,
      warmup: WARMUP,
      receipts: opt.receipts,
      smoke: opt.smoke,
      server: SERVER_KIND,
      serverLimits:
        SERVER_KIND === "prosody"
          ? "harness config: no mod_limits, c2s unthrottled"
          : `harness config: no c2s shaper, ${erlangBusyWaitSetting(opt["erlang-busy-wait"])}`,
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? "?",
      node: process.version,
      gatewayEnv: GATEWAY_ENV,
      loadAvgBefore,
    },
    ceiling,
    balcony,
    ratio,
    targets,
    senderReceived: sender.received,
    profile,
    stalls,
    alloc: allocated.summary,
  };
}

await runBench(main, (report) => {
  printReport(formatReport(report), opt.json ? JSON.stringify(report) : null);
  if (report.profile) log(`CPU profile kept in ${report.profile.throughput?.file ?? report.profile.fixedRate?.file}`);
});
