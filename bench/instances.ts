// Multi-instance benchmark. Run it with:
//
//   npx tsx bench/instances.ts            # full run: 10 s per latency phase at 200 msg/s, 10 holder kills (~4 min)
//   npx tsx bench/instances.ts --quick    # smoke run for CI: 2 s per phase, 2 kills (~1 min)
//
// Options: --rate N (msg/s, default 200), --seconds S (per latency phase, default 10; --quick: 2),
// --kills K (default 10; --quick: 2), --failover-rate N (msg/s posted through HAProxy while killing,
// default 50), --timeout S (overall limit, default 900; --quick: 240), --json (figures as one JSON
// line on stdout; the table goes to stderr).
//
// Three gateway processes (XMPP_LINK_MODE=single) on one PostgreSQL database, HAProxy in front
// (scripts/harness/haproxy.ts), Prosody, and a real receiving XMPP user (bench/sink.ts, in a worker
// thread so its receive times do not wait for the load generator). It measures:
//   1. POST-to-arrival latency, open loop at a fixed rate, through each instance directly: the link
//      holder (it sends what it accepts itself), each standby (its messages go through Postgres and
//      a NOTIFY to the holder), then through HAProxy. p50 / p99 / max from the start of the POST to
//      the arrival of the stanza at the XMPP user.
//   2. Failover: K times, SIGKILL the link holder while a client posts through HAProxy (with
//      Idempotency-Key, retrying on errors); the time from the kill until another instance's
//      /readyz says xmpp "up". The killed instance is restarted each time. min / median / max.
//   3. Loss: every 202 of the whole run against every arrival at the XMPP user; must be 0.
// Everything it starts is removed at the end, on Ctrl-C, on its overall timeout, and (through its
// watchdog, bench/reaper.ts) if it is killed outright. Progress goes to stderr.
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { BASE_DATABASE_URL, createTestDatabase, type TestDatabase } from "../scripts/harness/database.js";
import { GatewayCluster, api, createAccount } from "../scripts/harness/cluster.js";
import { startHaproxy, type Haproxy } from "../scripts/harness/haproxy.js";
import { startXmppServer, type XmppServer } from "../scripts/harness/xmpp-server.js";
import { armOverallTimeout, cleanup, disarmOverallTimeout, isAborting, onCleanup, reaper } from "./lib/lifecycle.js";
import { now, percentile, sleep } from "./lib/util.js";
import type { SinkOptions } from "./sink.js";
import { startSink, type SinkWorker } from "./sink-client.js";

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rate: { type: "string", default: "200" },
    seconds: { type: "string" },
    kills: { type: "string" },
    "failover-rate": { type: "string", default: "50" },
    timeout: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

function intOption(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const QUICK = opt.quick;
const RATE = intOption("rate", opt.rate, 1, 5000);
const SECONDS = intOption("seconds", opt.seconds ?? (QUICK ? "2" : "10"), 1, 600);
const KILLS = intOption("kills", opt.kills ?? (QUICK ? "2" : "10"), 0, 100);
const FAILOVER_RATE = intOption("failover-rate", opt["failover-rate"], 1, 1000);
const TIMEOUT_MS = intOption("timeout", opt.timeout ?? (QUICK ? "240" : "900"), 10, 7200) * 1000;
/** A message that has not arrived this long after the last arrival counts as lost. */
const LOSS_IDLE_MS = 10_000;
/** At most this many POSTs in flight in the open-loop phases (beyond: the phase falls behind, and says so). */
const MAX_IN_FLIGHT = 512;
const SINK_USER = "sink";
const SINK_PASSWORD = "sink-pw";

const log = (msg: string) => process.stderr.write(`[bench:instances] ${msg}\n`);

// Cleanup (bench/lib/lifecycle.ts): bounded, in reverse order, on success, error, Ctrl-C or the
// overall timeout; its watchdog (bench/reaper.ts) kills and removes everything if we die outright.
armOverallTimeout(TIMEOUT_MS);

function finish(code: number): never {
  disarmOverallTimeout();
  reaper.done();
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------
// The receiving XMPP user (bench/sink.ts in a worker thread): it records stanza ids and times

/** The receiving user (bench/sink-client.ts), keeping the first arrival time of every id. */
class Sink {
  /** stanza id -> first arrival time */
  readonly arrivals = new Map<string, number>();
  /** arrivals of an id already seen (resends) */
  duplicates = 0;

  private constructor(private readonly worker: SinkWorker) {}

  static async start(opts: SinkOptions): Promise<Sink> {
    const worker = await startSink(opts);
    onCleanup("sink user", () => worker.stop());
    return new Sink(worker);
  }

  get errors(): string[] {
    return this.worker.errors;
  }

  /** Fetches what arrived since the last collect() into `arrivals`. */
  async collect(): Promise<void> {
    const m = await this.worker.take();
    m.ids.forEach((id, i) => {
      if (this.arrivals.has(id)) this.duplicates++;
      else this.arrivals.set(id, m.times[i]!);
    });
  }

  /** Waits until every id arrived; false when nothing new arrived for idleMs. */
  async waitFor(ids: Iterable<string>, idleMs: number): Promise<boolean> {
    const want = [...ids];
    let count = -1;
    let lastChange = Date.now();
    for (;;) {
      await this.collect();
      const missing = want.filter((id) => !this.arrivals.has(id)).length;
      if (missing === 0) return true;
      if (isAborting()) return false;
      if (this.arrivals.size !== count) {
        count = this.arrivals.size;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > idleMs) return false;
      await sleep(100);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Load

interface Accepted {
  /** key -> message id of its 202 */
  ids: Map<string, string>;
  /** message id -> when its first POST started */
  startedAt: Map<string, number>;
  /** message id -> the phase it belongs to */
  phase: Map<string, string>;
  /** ids of every 202 (a key retried after a 202 must get the same one) */
  all: Set<string>;
  failures: number;
  idConflicts: number;
}

const accepted: Accepted = { ids: new Map(), startedAt: new Map(), phase: new Map(), all: new Set(), failures: 0, idConflicts: 0 };

/** POSTs one message, retrying with the same Idempotency-Key on errors, bounded by `deadline`. */
async function post(base: string, token: string, to: string, key: string, phase: string, deadline: number): Promise<boolean> {
  const started = now();
  while (!isAborting() && Date.now() < deadline) {
    try {
      const r = await api(base, "POST", "/v1/messages", { token, headers: { "idempotency-key": key }, body: { to, body: `${phase} ${key}` }, timeoutMs: 10_000 });
      if (r.status === 202) {
        const id = (r.body as { id: string }).id;
        const prior = accepted.ids.get(key);
        if (prior !== undefined && prior !== id) accepted.idConflicts++;
        accepted.ids.set(key, id);
        accepted.all.add(id);
        if (!accepted.startedAt.has(id)) accepted.startedAt.set(id, started);
        accepted.phase.set(id, phase);
        return true;
      }
    } catch {
      /* connection error: retried */
    }
    accepted.failures++;
    await sleep(50);
  }
  return false;
}

interface OpenLoop {
  sent: number;
  accepted: number;
  /** How far behind its schedule the latest POST started, at worst (ms): the load generator's own lag. */
  behindMs: number;
  /** From the first POST's start to the last one's (s): the offered rate is sent / sendSeconds. */
  sendSeconds: number;
}

/** Open loop: POSTs at `rate` per second for `seconds`, each on its own schedule. */
async function openLoop(base: string, token: string, to: string, phase: string, rate: number, seconds: number, stop?: () => boolean): Promise<OpenLoop> {
  const total = Math.round(rate * seconds);
  const t0 = now();
  let inFlight = 0;
  let ok = 0;
  let behindMs = 0;
  const tasks: Promise<void>[] = [];
  const deadline = Date.now() + seconds * 1000 + 60_000;
  let i = 0;
  for (; i < total && !isAborting() && !(stop?.() ?? false); i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    while (inFlight >= MAX_IN_FLIGHT) await sleep(1);
    behindMs = Math.max(0, now() - due);
    inFlight++;
    tasks.push(
      post(base, token, to, `${phase}-${i}`, phase, deadline).then((r) => {
        inFlight--;
        if (r) ok++;
      }),
    );
  }
  const sendSeconds = (now() - t0) / 1000;
  await Promise.all(tasks);
  return { sent: i, accepted: ok, behindMs, sendSeconds };
}

interface LatencyRow {
  phase: string;
  target: string;
  sent: number;
  accepted: number;
  arrived: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  behindMs: number;
}

async function latencyPhase(sink: Sink, base: string, target: string, token: string, to: string, phase: string): Promise<LatencyRow> {
  log(`latency: ${RATE} msg/s for ${SECONDS} s through ${target}`);
  const r = await openLoop(base, token, to, phase, RATE, SECONDS);
  const ids = [...accepted.phase].filter(([, p]) => p === phase).map(([id]) => id);
  await sink.waitFor(ids, LOSS_IDLE_MS);
  const lat = ids
    .filter((id) => sink.arrivals.has(id))
    .map((id) => sink.arrivals.get(id)! - accepted.startedAt.get(id)!)
    .sort((a, b) => a - b);
  return { phase, target, sent: r.sent, accepted: r.accepted, arrived: lat.length, rate: r.sent / Math.max(r.sendSeconds, 1 / RATE), p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? NaN, behindMs: r.behindMs };
}

// ---------------------------------------------------------------------------------------------
// Main

interface Report {
  quick: boolean;
  /** 1-minute load average of the machine at the start and at the end, and its cores. */
  load: { start: number; end: number; cores: number };
  rate: number;
  seconds: number;
  latency: LatencyRow[];
  /** `sent` and `accepted`: the POSTs through HAProxy while the kills went on (each retried until its 202). */
  failover: { kills: number; ms: number[]; min: number; median: number; max: number; takers: string[]; sent: number; accepted: number };
  loss: { accepted: number; arrived: number; lost: number; duplicates: number; idConflicts: number; failedAttempts: number };
}

async function main(): Promise<Report> {
  const loadStart = loadavg()[0]!;
  log(`starting Prosody, PostgreSQL database, 3 gateway instances, HAProxy${QUICK ? " (--quick)" : ""}`);
  const server: XmppServer = await startXmppServer("prosody");
  onCleanup("XMPP server", () => server.stop());
  reaper.tell({ serverWorkDir: server.workDir });
  await server.registerUser(SINK_USER, SINK_PASSWORD);
  const db: TestDatabase = await createTestDatabase();
  onCleanup("database", () => db.drop());
  reaper.tell({ database: db.name, baseUrl: BASE_DATABASE_URL });

  const cluster = await GatewayCluster.start(server, db.url, { env: { LOG_LEVEL: "warn", RATE_LIMIT_PER_IP: "0", RATE_LIMIT_PER_ACCOUNT: "0" } });
  onCleanup("gateways", () => cluster.stop());
  const tellPids = () => cluster.instances.forEach((inst) => inst.proc?.child.pid && reaper.tell({ gatewayPid: inst.proc.child.pid }));
  tellPids();
  const haproxy: Haproxy = await startHaproxy(cluster.servers);
  onCleanup("HAProxy", () => haproxy.stop());
  reaper.tell({ serverWorkDir: haproxy.workDir });

  const sink = await Sink.start({ service: `xmpp://${server.host}:${server.c2sPort}`, domain: server.userDomain, username: SINK_USER, password: SINK_PASSWORD, resource: "bench" });
  const to = `${SINK_USER}@${server.userDomain}`;
  const token = await createAccount(haproxy.url, "bench");

  // Warm-up: every instance has served a few requests and the sink is reachable.
  for (const inst of cluster.instances) await openLoop(inst.url, token, to, `warmup-${inst.name}`, 20, 1);
  await sink.waitFor([...accepted.phase].map(([id]) => id), LOSS_IDLE_MS);

  // 1. Latency through each instance directly, holder first, then through HAProxy.
  const holder = await cluster.waitStable(30_000);
  const order = [holder, ...[0, 1, 2].filter((i) => i !== holder)];
  const latency: LatencyRow[] = [];
  for (const i of order) {
    const inst = cluster.instances[i]!;
    const role = i === holder ? "holder" : "standby";
    latency.push(await latencyPhase(sink, inst.url, `${inst.name} (${role})`, token, to, `lat-${inst.name}`));
    if (isAborting()) throw new Error("aborted");
  }
  latency.push(await latencyPhase(sink, haproxy.url, "HAProxy", token, to, "lat-lb"));

  // 2. Failover: kill the holder K times under load through HAProxy.
  const ms: number[] = [];
  const takers: string[] = [];
  let stopLoad = false;
  const load = openLoop(haproxy.url, token, to, "failover", FAILOVER_RATE, 3600, () => stopLoad);
  let underLoad: OpenLoop;
  try {
    for (let k = 0; k < KILLS && !isAborting(); k++) {
      const h = await cluster.waitStable(30_000);
      await sleep(500);
      const killedAt = Date.now();
      await cluster.kill(h, "SIGKILL");
      const others = [0, 1, 2].filter((i) => i !== h);
      let took = -1;
      while (took < 0) {
        if (Date.now() - killedAt > 30_000) throw new Error(`kill ${k + 1}: no instance took the link within 30 s`);
        const rs = await Promise.all(others.map((i) => cluster.readyz(i, 1000)));
        const j = rs.findIndex((r) => r.xmpp === "up");
        if (j >= 0) took = others[j]!;
        else await sleep(20);
      }
      ms.push(Date.now() - killedAt);
      takers.push(`${cluster.instances[h]!.name}->${cluster.instances[took]!.name}`);
      log(`kill ${k + 1}/${KILLS}: ${cluster.instances[h]!.name} SIGKILLed, ${cluster.instances[took]!.name} up after ${ms.at(-1)} ms; restarting ${cluster.instances[h]!.name}`);
      await cluster.restart(h);
      tellPids();
    }
  } finally {
    stopLoad = true;
    underLoad = await load;
  }

  // 3. Loss over the whole run.
  log("waiting for every accepted message to arrive");
  await sink.waitFor(accepted.all, LOSS_IDLE_MS);
  await sleep(500);
  await sink.collect();
  const lost = [...accepted.all].filter((id) => !sink.arrivals.has(id)).length;
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    quick: QUICK,
    load: { start: loadStart, end: loadavg()[0]!, cores: availableParallelism() },
    rate: RATE,
    seconds: SECONDS,
    latency,
    failover: { kills: ms.length, ms, min: sorted[0] ?? NaN, median: percentile(sorted, 50), max: sorted.at(-1) ?? NaN, takers, sent: underLoad.sent, accepted: underLoad.accepted },
    loss: { accepted: accepted.all.size, arrived: [...accepted.all].filter((id) => sink.arrivals.has(id)).length, lost, duplicates: sink.duplicates, idConflicts: accepted.idConflicts, failedAttempts: accepted.failures },
  };
}

function format(r: Report): string {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1).padStart(7) : "      -");
  const lines = [
    `Balcony, 3 instances (XMPP_LINK_MODE=single) + HAProxy + Prosody${r.quick ? " (--quick)" : ""}`,
    `Machine: ${r.load.cores} cores, load average ${r.load.start.toFixed(1)} at the start, ${r.load.end.toFixed(1)} at the end (everything, this benchmark included, shares these cores)`,
    ``,
    `POST-to-arrival latency, open loop at ${r.rate} msg/s for ${r.seconds} s each (ms):`,
    `  target              sent  202s  arrived  offered/s     p50     p99     max  lag(gen)`,
    ...r.latency.map((l) => `  ${l.target.padEnd(18)} ${String(l.sent).padStart(5)} ${String(l.accepted).padStart(5)} ${String(l.arrived).padStart(8)}   ${f(l.rate)} ${f(l.p50)} ${f(l.p99)} ${f(l.max)} ${f(l.behindMs)}`),
    ``,
    `Failover (SIGKILL of the holder -> another instance's /readyz "up"), ${r.failover.kills} kills under ${FAILOVER_RATE} msg/s through HAProxy (${r.failover.accepted} of ${r.failover.sent} POSTs accepted):`,
    `  min ${r.failover.min} ms, median ${r.failover.median} ms, max ${r.failover.max} ms   (each: ${r.failover.ms.join(", ")})`,
    `  handovers: ${r.failover.takers.join(" ")}`,
    ``,
    `Messages: ${r.loss.accepted} accepted (202), ${r.loss.arrived} arrived, LOST ${r.loss.lost}; ${r.loss.duplicates} same-id resends after kills; ` +
      `${r.loss.idConflicts} keys with two ids; ${r.loss.failedAttempts} failed attempts retried by the clients`,
  ];
  return lines.join("\n");
}

try {
  const report = await main();
  const text = format(report);
  if (opt.json) {
    process.stderr.write(`${text}\n`);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  await cleanup();
  finish(report.loss.lost === 0 && report.loss.idConflicts === 0 ? 0 : 1);
} catch (error) {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  await cleanup();
  finish(1);
}
