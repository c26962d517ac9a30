// Message benchmark (`npm run bench -- [options]`, issue 10): on Prosody and on ejabberd, in one
// run, the same messages sent to a real XMPP user (bench/sink.ts, in a worker thread) by
//   1. the ceiling: a raw XEP-0114 component writing the stanzas Balcony sends (no HTTP, no DB);
//   2. the peer: the XMPP server's own HTTP API (ejabberd's mod_http_api send_message; Prosody's
//      mod_rest from prosody-modules with --mod-rest DIR, else issue 10's figures, labelled so);
//   3. Balcony: the gateway as a separate process, POST /v1/messages;
//   4. Balcony's batch API, POST /v1/messages/batch with 1,000 messages per request (Prosody).
// Each row: throughput (N messages over C keep-alive connections, median of --runs runs, each timed
// from the first start to the last arrival), then an open-loop run at a fixed arrival rate
// (message i starts at t0 + i/rate, whatever became of the earlier ones), each message timed from
// its POST start or stanza write to its arrival at the XMPP user, p50/p99, with CPU per process
// group during that run. Then issue 10's targets, PASS/FAIL, beside the figures. Every message is
// identified by its body text (bench/lib/ holds the parts; bench/peers/ the peers' notes).
//
// Everything started is removed on success, error, Ctrl-C or the overall timeout (and by a
// detached watchdog, bench/reaper.ts, if this process is killed outright). Progress goes to
// stderr; the table to stdout (with --json: one JSON line on stdout, the table on stderr).
// Everything shares the machine's cores: the "everything else" CPU figure shows foreign load that
// makes a run untrustworthy; --wait-idle waits for a quiet machine first.
import { execSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatProfile } from "./cpuprofile.js";
import { busyCores } from "./lib/cpu.js";
import { armOverallTimeout, isAborting, onCleanup, printReport, reaper, runBench } from "./lib/lifecycle.js";
import { formatTable, formatTargets, type ServerKind, type ServerReport } from "./lib/report.js";
import { findModRest, runServer } from "./lib/scenario.js";
import { envOptions, erlangBusyWaitSetting, intOption as intOptionOf, log } from "./lib/util.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Below this many busy cores the machine counts as idle (--wait-idle). */
const IDLE_CORES = 0.3;

const USAGE = `usage: npm run bench -- [options]
  --server KIND       prosody, ejabberd or both (default both)
  --messages N        messages per throughput run (default 20000)
  --runs R            throughput runs per row; the median counts (default 3)
  --concurrency C     concurrent keep-alive HTTP connections (default 32)
  --warmup W          warm-up messages before each row's runs (default 2000)
  --rate R            arrival rate of the latency/CPU run, msg/s (default 500; 0 skips it)
  --rate-seconds S    length of that run (default 6)
  --batch-size B      messages per POST /v1/messages/batch (default 1000)
  --mod-rest DIR      a prosody-modules checkout (or folder holding mod_rest/): measure Prosody's
                      mod_rest as the peer (default: bench/peers/prosody if it holds mod_rest;
                      otherwise issue 10's mod_rest figures are shown, labelled as such)
  --smoke             tiny run of every row: 300 messages, 1 run, 2 s at the rate, short timeouts
  --loss-timeout S    a message not received S seconds after the last arrival is lost (default 10)
  --timeout S         overall time limit (default 2400), not counting --wait-idle
  --wait-idle S       first wait up to S seconds for the machine to be idle (default 0)
  --env KEY=VALUE     extra environment for the gateway (repeatable), e.g. --env DB_POOL_MAX=20
  --gateway-dir DIR   run the gateway from another checkout (e.g. a git worktree with a candidate
                      change; it needs node_modules); default: this repository
  --cpu-prof          run the gateway with --cpu-prof and summarise where its CPU time went, in
                      two windows: the Balcony row's throughput runs, and its run at --rate
  --cpu-prof-row ROW  the row whose throughput runs are the first window: balcony (default) or batch
  --erlang-busy-wait  run ejabberd with the Erlang VM's default scheduler busy wait (the harness
                      turns it off: scripts/harness/xmpp-server.ts erlangBusyWait)
  --json              print the report as one JSON line on stdout (the table goes to stderr)`;

const { values: opt } = parseArgs({
  options: {
    server: { type: "string", default: "both" },
    messages: { type: "string" },
    runs: { type: "string" },
    concurrency: { type: "string", default: "32" },
    warmup: { type: "string" },
    rate: { type: "string", default: "500" },
    "rate-seconds": { type: "string" },
    "batch-size": { type: "string", default: "1000" },
    "mod-rest": { type: "string" },
    smoke: { type: "boolean", default: false },
    "loss-timeout": { type: "string" },
    timeout: { type: "string" },
    "wait-idle": { type: "string", default: "0" },
    env: { type: "string", multiple: true, default: [] },
    "cpu-prof": { type: "boolean", default: false },
    "cpu-prof-row": { type: "string", default: "balcony" },
    "gateway-dir": { type: "string" },
    "erlang-busy-wait": { type: "boolean", default: false },
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

const SERVERS: ServerKind[] = opt.server === "both" ? ["prosody", "ejabberd"] : opt.server === "prosody" || opt.server === "ejabberd" ? [opt.server] : [];
if (SERVERS.length === 0) {
  console.error(`--server: expected prosody, ejabberd or both, got "${opt.server}"`);
  process.exit(2);
}
const RATE = intOption("rate", opt.rate, 500, 500, 0);
const SETTINGS = {
  messages: intOption("messages", opt.messages, 20_000, 300, 1),
  runs: intOption("runs", opt.runs, 3, 1, 1),
  warmup: intOption("warmup", opt.warmup, 2000, 50, 0),
  concurrency: intOption("concurrency", opt.concurrency, 32, 32, 1),
  rate: RATE,
  rateMessages: RATE * intOption("rate-seconds", opt["rate-seconds"], 6, 2, 1),
  lossTimeoutMs: intOption("loss-timeout", opt["loss-timeout"], 10, 5, 1) * 1000,
};
const BATCH_SIZE = intOption("batch-size", opt["batch-size"], 1000, 1000, 1);
const CPU_PROF_ROW = opt["cpu-prof-row"] === "batch" ? "batch" : "balcony";
if (opt["cpu-prof-row"] !== CPU_PROF_ROW) {
  console.error(`--cpu-prof-row: expected balcony or batch, got "${opt["cpu-prof-row"]}"`);
  process.exit(2);
}
const TIMEOUT_MS = intOption("timeout", opt.timeout, 2400, 240, 10) * 1000;
const WAIT_IDLE_MS = intOption("wait-idle", opt["wait-idle"], 0, 0, 0) * 1000;
const GATEWAY_DIR = resolve(opt["gateway-dir"] ?? ROOT);
const MOD_REST_DIR = findModRest(opt["mod-rest"] ? resolve(opt["mod-rest"]) : join(ROOT, "bench", "peers", "prosody"));
if (opt["mod-rest"] && !MOD_REST_DIR) {
  console.error(`--mod-rest: no mod_rest/mod_rest.lua under ${opt["mod-rest"]}`);
  process.exit(2);
}
// The benchmark sends far more than the default per-account / per-IP request rates allow: raise
// them so they never refuse a request (the limiter still runs, so its cost stays in the figures).
const GATEWAY_ENV = envOptions({ RATE_LIMIT_PER_IP: "100000000", RATE_LIMIT_PER_ACCOUNT: "100000000" }, opt.env);

/** The commit, and how many files under src/ differ from it: figures are only comparable per source. */
function sourceVersion(): string {
  try {
    // --no-optional-locks: never take the index lock of a work tree others may be using.
    const git = (args: string) => execSync(`git --no-optional-locks ${args}`, { cwd: GATEWAY_DIR, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const changed = git("status --porcelain -- src prisma package.json").split("\n").filter(Boolean).length;
    const where = GATEWAY_DIR === ROOT ? "" : `${GATEWAY_DIR}: `;
    return `${where}${git("rev-parse --short HEAD")}${changed ? ` + ${changed} changed file(s) in src/, prisma/, package.json` : ""}`;
  } catch {
    return GATEWAY_DIR === ROOT ? "unknown" : `${GATEWAY_DIR} (not a git checkout)`;
  }
}

export interface Report {
  params: {
    servers: ServerKind[];
    smoke: boolean;
    messages: number;
    runs: number;
    warmup: number;
    concurrency: number;
    rate: number;
    rateMessages: number;
    batchSize: number;
    modRest: string | null;
    /** ejabberd ran with the Erlang VM's default scheduler busy wait (--erlang-busy-wait). */
    erlangBusyWait: boolean;
    cores: number;
    cpu: string;
    node: string;
    gatewayEnv: Record<string, string>;
    loadAvgBefore: number[];
    busyCoresBefore: number;
    source: string;
  };
  servers: ServerReport[];
  /** Every target checked passed (a target that could not be checked does not count). */
  pass: boolean;
}

function formatReport(r: Report): string {
  const p = r.params;
  const lines = [
    "",
    `Balcony message benchmark${p.smoke ? " (SMOKE: tiny N, figures mean nothing)" : ""}: ${p.servers.join(" + ")}, ${p.cores} cores (${p.cpu}), Node ${p.node}, load average before ${p.loadAvgBefore.map((x) => x.toFixed(2)).join(" ")}, ${p.busyCoresBefore.toFixed(2)} cores busy before start`,
    `Source: ${p.source}`,
    ...(p.servers.includes("ejabberd") ? [`ejabberd: ${erlangBusyWaitSetting(p.erlangBusyWait)}`] : []),
    `Throughput: N = ${p.messages} messages per run, median of ${p.runs} run(s) (warm-up ${p.warmup}), C = ${p.concurrency} keep-alive connections; latency and CPU: ${p.rateMessages} messages at ${p.rate} msg/s, open loop${Object.keys(p.gatewayEnv).length ? `; gateway env ${JSON.stringify(p.gatewayEnv)}` : ""}`,
    "CPU: % of one core during the fixed-rate run; CPU ms/msg: the server's (ceiling, peer) or the gateway's + its PostgreSQL backends' (Balcony); lost/dup/refused summed over all runs of the row",
    "",
    formatTable(r.servers, p.rate),
    "",
    formatTargets(r.servers),
    "",
    ...r.servers.flatMap((s) => s.details),
  ];
  const runsOf = CPU_PROF_ROW === "batch" ? "the batch row's" : "Balcony's";
  for (const s of r.servers) {
    if (s.profile) lines.push("", `${s.server}, ${runsOf} throughput runs: ${formatProfile(s.profile)}`);
    if (s.rateProfile) lines.push("", `${s.server}, Balcony at ${p.rate}/s: ${formatProfile(s.rateProfile)}`);
  }
  return lines.join("\n");
}

async function main(): Promise<Report> {
  const workDir = mkdtempSync(join(tmpdir(), "balcony-bench-"));
  if (!opt["cpu-prof"]) reaper.tell({ dir: workDir });
  onCleanup("bench work dir", () => {
    if (!opt["cpu-prof"]) rmSync(workDir, { recursive: true, force: true });
  });
  const idleCtx = { serverKind: "-", serverWorkDir: workDir };
  let busyBefore = await busyCores(idleCtx);
  if (WAIT_IDLE_MS > 0 && busyBefore > IDLE_CORES) {
    log(`waiting up to ${WAIT_IDLE_MS / 1000} s for the machine to be idle (${busyBefore.toFixed(2)} cores busy)`);
    const deadline = Date.now() + WAIT_IDLE_MS;
    let quiet = 0;
    while (quiet < 3 && Date.now() < deadline) {
      busyBefore = await busyCores(idleCtx);
      quiet = busyBefore <= IDLE_CORES ? quiet + 1 : 0;
    }
  }
  if (busyBefore > IDLE_CORES) log(`warning: the machine is already busy (${busyBefore.toFixed(2)} cores in use before the benchmark)`);
  armOverallTimeout(TIMEOUT_MS);
  const loadAvgBefore = loadavg();
  if (!MOD_REST_DIR) log("Prosody's mod_rest is not available here (not in Debian's prosody-modules; see --mod-rest): its row shows issue 10's figures");

  const servers: ServerReport[] = [];
  for (const kind of SERVERS) {
    if (isAborting()) break;
    servers.push(
      await runServer(kind, {
        settings: SETTINGS,
        batchSize: BATCH_SIZE,
        modRestDir: MOD_REST_DIR,
        gatewayDir: GATEWAY_DIR,
        gatewayEnv: GATEWAY_ENV,
        cpuProf: opt["cpu-prof"],
        cpuProfRow: CPU_PROF_ROW,
        erlangBusyWait: opt["erlang-busy-wait"],
        workDir,
      }),
    );
  }
  return {
    params: {
      servers: SERVERS,
      smoke: opt.smoke,
      ...SETTINGS,
      batchSize: BATCH_SIZE,
      modRest: MOD_REST_DIR ?? null,
      erlangBusyWait: opt["erlang-busy-wait"],
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? "?",
      node: process.version,
      gatewayEnv: GATEWAY_ENV,
      loadAvgBefore,
      busyCoresBefore: busyBefore,
      source: sourceVersion(),
    },
    servers,
    pass: servers.every((s) => s.targets.every((t) => t.pass !== false)),
  };
}

await runBench(main, (report) => {
  printReport(formatReport(report), opt.json ? JSON.stringify(report, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v)) : null);
  for (const s of report.servers) if (s.profile) log(`${s.server}: CPU profile kept in ${s.profile.file}`);
});
