// Webhook benchmark (`npm run bench:webhooks -- [options]`): inbound XMPP → webhook deliveries.
//
// Prosody, a fresh PostgreSQL database, the gateway as a separate process (bench/lib/gateway.ts)
// and a fast webhook receiver process (scripts/harness/webhook-receiver.ts, every request answered
// 200 "ok" at once, each arrival logged with its time `at`). A accounts, each with its own webhook
// (type "message") to its own receiver path; a real XMPP user (bench/inbound-sender.ts, c2s) sends
// chat messages to the accounts, round-robin. One run measures:
//   1. throughput: M messages written as fast as Prosody takes them, timed from the first write
//      to the last delivery the receiver logged: deliveries/s, with the gateway's and its
//      PostgreSQL backends' CPU per delivery (bench/lib/cpu.ts). Ceiling: the same receiver
//      taking M POSTs (the body and webhook-* headers of a real delivery) from a plain undici
//      Client per endpoint, A endpoints in parallel with one request in flight each, sequential
//      keep-alive requests: the HTTP path alone, the shape of the gateway's own sending (one
//      request in flight per endpoint), without Balcony;
//   2. latency: RATE messages/s for S seconds (open loop), each carrying its send time on
//      CLOCK_MONOTONIC (process.hrtime, one clock for all the machine's processes) in its body;
//      latency = the receiver's `mono` minus that. Reference, in the same run and for the same
//      stanzas: account 0's (every A-th message) stanza → SSE event latency, measured by a
//      GET /v1/events client in a worker thread (bench/inbound-receiver.ts).
// Prints a table (figure, value, ceiling/reference, ratio) on stdout; progress goes to stderr.
// Everything started is removed on success, error, Ctrl-C or the overall timeout (bench/reaper.ts
// if we are killed outright). The machine's cores are shared with whatever else runs: the
// "everything else" CPU figure says how loaded it was.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import jwt from "jsonwebtoken";
import { Client } from "undici";
import { createTestDatabase } from "../scripts/harness/database.js";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../scripts/harness/webhook-receiver.js";
import { startXmppServer } from "../scripts/harness/xmpp-server.js";
import { startReceiver, type Receiver } from "./inbound-receiver-client.js";
import { Sender } from "./inbound-sender.js";
import { busyCores, cpuSnapshot, cpuSplit, formatCpu, GROUPS, type CpuContext, type CpuSplit } from "./lib/cpu.js";
import { api, startGatewayProcess } from "./lib/gateway.js";
import { armOverallTimeout, checkAborted, isAborting, onCleanup, printReport, reaper, runBench } from "./lib/lifecycle.js";
import { openLoop } from "./lib/pace.js";
import { envOptions, fmtInt, fmtMs, fmtRatio, intOption as intOptionOf, log, now, sleep, stats, textTable, type LatencyStats } from "./lib/util.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;
const SENDER_USER = "alice";
const STREAM_RESOURCE = "bench";
/** Stanzas per socket write in the throughput runs (as bench/inbound.ts). */
const CHUNK = 64;
/** Receiver counts are polled this often: the end of a run is the last logged `at`, not the poll. */
const POLL_MS = 250;

const USAGE = `usage: npm run bench:webhooks -- [options]
  --accounts A        accounts, each with its own webhook (default 20)
  --messages M        messages in the throughput run, spread over the accounts (default 20000)
  --rate R            messages per second of the latency run (default 200)
  --seconds S         length of the latency run (default 20)
  --warmup W          warm-up messages (and ceiling requests) before the throughput runs (default 1000)
  --loss-timeout S    a delivery not arrived S seconds after the last progress is lost (default 15)
  --timeout S         overall time limit (default 900)
  --env KEY=VALUE     extra environment for the gateway (repeatable), e.g. --env WEBHOOK_CONCURRENCY=64`;

const { values: opt } = parseArgs({
  options: {
    accounts: { type: "string" },
    messages: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    warmup: { type: "string" },
    "loss-timeout": { type: "string" },
    timeout: { type: "string" },
    env: { type: "string", multiple: true, default: [] },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
const intOption = (name: string, raw: string | undefined, fallback: number, min: number) => intOptionOf({ usage: USAGE, smoke: false }, name, raw, fallback, fallback, min);
const A = intOption("accounts", opt.accounts, 20, 1);
const M = intOption("messages", opt.messages, 20_000, 1);
const RATE = intOption("rate", opt.rate, 200, 1);
const L = RATE * intOption("seconds", opt.seconds, 20, 1);
const WARMUP = intOption("warmup", opt.warmup, 1000, 0);
const LOSS_TIMEOUT_MS = intOption("loss-timeout", opt["loss-timeout"], 15, 1) * 1000;
const TIMEOUT_MS = intOption("timeout", opt.timeout, 900, 10) * 1000;
const GATEWAY_ENV = envOptions({ WEBHOOK_ALLOW_PRIVATE: "127.0.0.1" }, opt.env);

const localpart = (k: number) => `wh${k}`;
/** Messages of a run of n that go to account k (message i goes to account i mod A). */
const share = (n: number, k: number) => Math.floor(n / A) + (k < n % A ? 1 : 0);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const BODY = /^wh (\S+) (\d+) (\S+)$/;

// ---------------------------------------------------------------------------------------------
// The receiver's side

/** The receiver's log lengths, per hook. */
const counts = (receiver: WebhookReceiver, names: string[]) => Promise.all(names.map((n) => receiver.count(n)));

/** Waits until hook k has at least base[k] + want[k] requests; gives up when nothing arrived for LOSS_TIMEOUT_MS. */
async function waitCounts(receiver: WebhookReceiver, names: string[], base: number[], want: number[]): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const c = await counts(receiver, names);
    if (c.every((n, k) => n - base[k]! >= want[k]!)) return;
    const total = sum(c);
    if (total !== last) [last, lastChange] = [total, Date.now()];
    else if (Date.now() - lastChange > LOSS_TIMEOUT_MS) return void log(`gave up waiting: ${sum(want) - (total - sum(base))} requests missing`);
    checkAborted();
    await sleep(POLL_MS);
  }
}

/** What hook k logged since base[k], every hook. */
async function logsSince(receiver: WebhookReceiver, names: string[], base: number[]): Promise<ReceivedWebhook[]> {
  return (await Promise.all(names.map((n, k) => receiver.log(n).then((l) => l.slice(base[k]))))).flat();
}

interface Arrivals {
  /** Message index → first arrival (the receiver's `mono`) and the send time its body carries, both on CLOCK_MONOTONIC. */
  first: Map<number, { mono: number; sentAt: number }>;
  duplicates: number;
  /** Requests that were not deliveries of this run's messages. */
  strays: number;
}

function arrivals(entries: ReceivedWebhook[], run: string): Arrivals {
  const first = new Map<number, { mono: number; sentAt: number }>();
  let duplicates = 0;
  let strays = 0;
  for (const r of entries) {
    const body = (JSON.parse(r.body) as { data?: { body?: unknown } }).data?.body;
    const m = typeof body === "string" ? BODY.exec(body) : null;
    if (!m || m[1] !== run) {
      strays++;
      continue;
    }
    const i = Number(m[2]);
    if (first.has(i)) duplicates++;
    else first.set(i, { mono: r.mono, sentAt: Number(m[3]) });
  }
  return { first, duplicates, strays };
}

// ---------------------------------------------------------------------------------------------
// Runs

interface Throughput {
  sent: number;
  delivered: number;
  duplicates: number;
  strays: number;
  seconds: number;
  perSec: number;
}

interface Balcony extends Throughput {
  cpu: CpuSplit;
  /** CPU milliseconds per delivery. */
  gatewayMs: number;
  postgresMs: number;
  sample: ReceivedWebhook;
}

interface Latency {
  sent: number;
  webhook: LatencyStats;
  /** The webhook latency of account 0's messages alone (the ones the SSE stream also had). */
  webhookAccount0: LatencyStats;
  sse: LatencyStats;
  sseExpected: number;
  duplicates: number;
  maxSendLagMs: number;
  cpu: CpuSplit;
}

const stanza = (k: number, id: string, body: string, domain: string) => `<message to="${localpart(k)}@${domain}" type="chat" id="${id}"><body>${body}</body></message>`;

class Bench {
  private readonly hooks = Array.from({ length: A }, (_, k) => `b${k}`);
  private readonly ceilingHooks = Array.from({ length: A }, (_, k) => `c${k}`);

  constructor(
    private readonly tag: string,
    private readonly domain: string,
    private readonly sender: Sender,
    private readonly receiver: WebhookReceiver,
    private readonly cpu: CpuContext,
  ) {}

  /** n messages as fast as the c2s socket takes them; returns when all were delivered (or given up). */
  async blast(run: string, n: number): Promise<{ t0: number; base: number[]; cpu: CpuSplit }> {
    const xml = Array.from({ length: n }, (_, i) => stanza(i % A, `${this.tag}-${run}-${i}`, `wh ${run} ${i} 0`, this.domain));
    const base = await counts(this.receiver, this.hooks);
    const before = cpuSnapshot(this.cpu);
    const sent = await this.sender.blast(xml, CHUNK, isAborting);
    await waitCounts(this.receiver, this.hooks, base, this.hooks.map((_, k) => share(n, k)));
    const cpu = cpuSplit(before, cpuSnapshot(this.cpu));
    checkAborted();
    return { t0: sent.t0, base, cpu };
  }

  async throughput(): Promise<Balcony> {
    if (WARMUP > 0) {
      log(`Balcony: warm-up, ${WARMUP} messages`);
      await this.blast(`${this.tag}w`, WARMUP);
    }
    log(`Balcony: throughput, ${M} messages over ${A} accounts`);
    const run = `${this.tag}t`;
    const { t0, base, cpu } = await this.blast(run, M);
    const entries = await logsSince(this.receiver, this.hooks, base);
    const got = arrivals(entries, run);
    let last = t0;
    for (const a of got.first.values()) last = Math.max(last, a.mono);
    const seconds = (last - t0) / 1000;
    const perDelivery = (cores: number | undefined) => ((cores ?? NaN) * cpu.seconds * 1000) / got.first.size;
    const r: Balcony = {
      sent: M,
      delivered: got.first.size,
      duplicates: got.duplicates,
      strays: got.strays,
      seconds,
      perSec: got.first.size / seconds,
      cpu,
      gatewayMs: perDelivery(cpu.cores[GROUPS.gateway]),
      postgresMs: perDelivery(cpu.cores[GROUPS.dbBackends]),
      sample: entries[0]!,
    };
    log(`Balcony: ${fmtInt(r.perSec)} deliveries/s, ${r.delivered}/${M} delivered`);
    return r;
  }

  /** The ceiling: the same number of POSTs, one undici Client (one keep-alive connection) per endpoint. */
  async ceiling(sample: ReceivedWebhook): Promise<Throughput & { refused: number }> {
    const headers = Object.fromEntries(Object.entries(sample.headers).filter(([k]) => k === "content-type" || k === "user-agent" || k.startsWith("webhook-")));
    const urls = this.ceilingHooks.map((n) => new URL(this.receiver.url(n)));
    const clients = urls.map((u) => new Client(u.origin, { pipelining: 1, keepAliveTimeout: 60_000 }));
    let refused = 0;
    const post = async (k: number, n: number) => {
      for (let j = 0; j < n && !isAborting(); j++) {
        const res = await clients[k]!.request({ method: "POST", path: urls[k]!.pathname, headers, body: sample.body });
        await res.body.text();
        if (res.statusCode !== 200) refused++;
      }
    };
    try {
      if (WARMUP > 0) {
        log(`ceiling: warm-up, ${WARMUP} requests`);
        await Promise.all(urls.map((_, k) => post(k, share(WARMUP, k))));
      }
      log(`ceiling: ${M} POSTs, ${A} endpoints with one in flight each`);
      const base = await counts(this.receiver, this.ceilingHooks);
      const t0 = now();
      await Promise.all(urls.map((_, k) => post(k, share(M, k))));
      checkAborted();
      const entries = await logsSince(this.receiver, this.ceilingHooks, base);
      const last = entries.reduce((x, e) => Math.max(x, e.mono), t0);
      const seconds = (last - t0) / 1000;
      log(`ceiling: ${fmtInt(entries.length / seconds)} requests/s`);
      return { sent: M, delivered: entries.length, duplicates: 0, strays: 0, seconds, perSec: entries.length / seconds, refused };
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    }
  }

  /** RATE messages/s, open loop, each with its send time in its body; account 0's also timed on its SSE stream. */
  async latency(stream: Receiver): Promise<Latency> {
    const run = `${this.tag}l`;
    const base = await counts(this.receiver, this.hooks);
    await stream.take(); // whatever the stream had before this run
    log(`latency: ${L} messages at ${RATE}/s`);
    const before = cpuSnapshot(this.cpu);
    const sendTimes = new Float64Array(L);
    const writes: Promise<unknown>[] = [];
    const maxSendLagMs = await openLoop(
      L,
      RATE,
      (i, start) => {
        sendTimes[i] = start;
        // `start` is on CLOCK_MONOTONIC (bench/lib/util.ts's now), the clock of the receiver's `mono`.
        writes.push(this.sender.blast([stanza(i % A, `${run}-${i}`, `wh ${run} ${i} ${start.toFixed(3)}`, this.domain)], 1, isAborting));
      },
      isAborting,
    );
    await Promise.all(writes);
    await waitCounts(this.receiver, this.hooks, base, this.hooks.map((_, k) => share(L, k)));
    const sseExpected = share(L, 0);
    await stream.waitFor(sseExpected, LOSS_TIMEOUT_MS, isAborting);
    const cpu = cpuSplit(before, cpuSnapshot(this.cpu));
    checkAborted();

    const got = arrivals(await logsSince(this.receiver, this.hooks, base), run);
    const all: number[] = [];
    const account0: number[] = [];
    for (const [i, a] of got.first) {
      all.push(a.mono - a.sentAt);
      if (i % A === 0) account0.push(a.mono - a.sentAt);
    }
    const recs = await stream.take();
    const seen = new Set<string>();
    const sse: number[] = [];
    recs.ids.forEach((id, j) => {
      const m = id.startsWith(`${run}-`) && !seen.has(id) ? Number(id.slice(run.length + 1)) : NaN;
      if (!Number.isInteger(m)) return;
      seen.add(id);
      sse.push(recs.times[j]! - sendTimes[m]!);
    });
    const r: Latency = { sent: L, webhook: stats(all), webhookAccount0: stats(account0), sse: stats(sse), sseExpected, duplicates: got.duplicates, maxSendLagMs, cpu };
    log(`latency: webhook p50 ${fmtMs(r.webhook.p50)} ms, p99 ${fmtMs(r.webhook.p99)} ms; SSE p50 ${fmtMs(r.sse.p50)} ms`);
    return r;
  }
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  header: string[];
  balcony: Balcony;
  ceiling: Throughput & { refused: number };
  latency: Latency;
}

function formatReport(r: Report): string {
  const { balcony: b, ceiling: c, latency: l } = r;
  const ratio = (x: number, y: number) => fmtRatio(x / y);
  const lost = b.sent - b.delivered + (l.sent - l.webhook.count);
  const refLost = c.sent - c.delivered + (l.sseExpected - l.sse.count);
  const rows = [
    ["figure", "value", "ceiling/reference", "ratio"],
    [`throughput, deliveries/s (${A} accounts, ${M} messages)`, fmtInt(b.perSec), fmtInt(c.perSec), ratio(b.perSec, c.perSec)],
    ["gateway CPU per delivery, ms", fmtMs(b.gatewayMs), "-", "-"],
    ["Postgres CPU per delivery, ms", fmtMs(b.postgresMs), "-", "-"],
    [`stanza → webhook p50, ms (${RATE}/s)`, fmtMs(l.webhook.p50), fmtMs(l.sse.p50), ratio(l.webhook.p50, l.sse.p50)],
    [`stanza → webhook p99, ms (${RATE}/s)`, fmtMs(l.webhook.p99), fmtMs(l.sse.p99), ratio(l.webhook.p99, l.sse.p99)],
    [`stanza → webhook max, ms (${RATE}/s)`, fmtMs(l.webhook.max), fmtMs(l.sse.max), ratio(l.webhook.max, l.sse.max)],
    ["deliveries lost", String(lost), String(refLost), "-"],
    ["deliveries duplicated", String(b.duplicates + l.duplicates), "-", "-"],
  ];
  return [
    "",
    ...r.header,
    "",
    textTable(rows),
    "",
    `Ceiling (throughput): the same receiver taking ${M} POSTs of a real delivery's body and webhook-* headers from a plain undici Client per endpoint, ${A} endpoints in parallel, one keep-alive request in flight each; first request → last arrival. The ratio is Balcony / ceiling.`,
    `Reference (latency): the same stanzas to account 0 (1 in ${A}: ${l.sseExpected} of ${l.sent}) → SSE event on GET /v1/events, sent while the webhooks delivered; ratio webhook / SSE. Webhook latency of those stanzas alone: p50 ${fmtMs(l.webhookAccount0.p50)}, p99 ${fmtMs(l.webhookAccount0.p99)}, max ${fmtMs(l.webhookAccount0.max)} ms.`,
    `Latency clocks: send time written by this process, arrival by the receiver process (both CLOCK_MONOTONIC); SSE arrivals on this process's clock.`,
    `CPU per delivery: the whole path (stanza in, event appended, delivery out and settled), total CPU time of the run / deliveries; Postgres = the bench database's backends.`,
    `CPU: cores used on average during the run (1.00 = one core); "everything else" is foreign load (other work on the machine) and the webhook receiver.`,
    "",
    `Throughput: ${b.delivered}/${b.sent} delivered in ${b.seconds.toFixed(2)} s (first write → last arrival), ${b.duplicates} duplicates, ${b.strays} strays; ceiling ${c.delivered}/${c.sent} in ${c.seconds.toFixed(2)} s, ${c.refused} non-200`,
    `  cores used: ${formatCpu(b.cpu, "prosody")}`,
    `Latency run: ${l.webhook.count}/${l.sent} delivered, SSE ${l.sse.count}/${l.sseExpected}; webhook mean ${fmtMs(l.webhook.mean)} ms, SSE mean ${fmtMs(l.sse.mean)} ms; sender at worst ${fmtMs(l.maxSendLagMs)} ms behind schedule`,
    `  cores used: ${formatCpu(l.cpu, "prosody")}`,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<Report> {
  const workDir = mkdtempSync(join(tmpdir(), "balcony-bench-webhooks-"));
  reaper.tell({ dir: workDir });
  onCleanup("bench work dir", () => rmSync(workDir, { recursive: true, force: true }));
  armOverallTimeout(TIMEOUT_MS);
  const loadAvgBefore = loadavg();
  const tag = randomBytes(3).toString("hex");

  log("starting prosody");
  const server = await startXmppServer("prosody");
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup("prosody", () => server.stop());
  const cpuCtx: CpuContext = { serverKind: "prosody", serverWorkDir: server.workDir };
  const busyBefore = await busyCores(cpuCtx);
  const password = randomBytes(8).toString("hex");
  await server.registerUser(SENDER_USER, password);
  const sender = await Sender.start({ service: `xmpp://${server.host}:${server.c2sPort}`, domain: server.userDomain, username: SENDER_USER, password, resource: "bench" });
  onCleanup("sending user", () => sender.stop());

  const receiver = await startWebhookReceiver();
  onCleanup("webhook receiver", () => receiver.stop());

  const db = await createTestDatabase();
  const baseUrl = new URL(db.url);
  baseUrl.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: baseUrl.toString() });
  onCleanup("database", () => db.drop());
  log(`starting the gateway (database ${db.name})`);
  const gateway = await startGatewayProcess({ server, databaseUrl: db.url, workDir, gatewayDir: ROOT, jwtSecret: JWT_SECRET, cpuProf: false, env: GATEWAY_ENV });
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 3600 }, JWT_SECRET, { algorithm: "HS256" });
  for (let k = 0; k < A; k++) {
    await api(gateway.url, "/v1/accounts", admin, { localpart: localpart(k) }, 201);
    await api(gateway.url, "/v1/webhooks", admin, { url: receiver.url(`b${k}`), events: ["message"], account: localpart(k), description: "bench" }, 201);
  }
  log(`${A} accounts with a webhook each; sender ${sender.jid}`);

  const bench = new Bench(tag, server.componentDomain, sender, receiver, { ...cpuCtx, gatewayPid: gateway.pid, dbName: db.name });
  const balcony = await bench.throughput();
  if (!balcony.sample) throw new Error("no delivery arrived");
  const ceiling = await bench.ceiling(balcony.sample);
  await sleep(500); // let the gateway settle before the latency run

  const { token } = await api<{ token: string }>(gateway.url, "/v1/tokens", admin, { account: localpart(0), resource: STREAM_RESOURCE, ttlSeconds: 3600 }, 201);
  const stream = await startReceiver({ mode: "sse", url: gateway.url, token, resource: STREAM_RESOURCE });
  onCleanup("SSE client", () => stream.stop());
  // A new session first replays account 0's log so far: let that drain before the latency run.
  await stream.waitFor(share(WARMUP, 0) + share(M, 0), LOSS_TIMEOUT_MS, isAborting);
  const latency = await bench.latency(stream);
  if (stream.errors.length) throw new Error(`the SSE client failed: ${stream.errors.join("; ")}`);

  const concurrency = Number(GATEWAY_ENV.WEBHOOK_CONCURRENCY ?? 32);
  const header = [
    `Balcony webhook benchmark: prosody, ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}, load average before ${loadAvgBefore.map((x) => x.toFixed(2)).join(" ")}, ${busyBefore.toFixed(2)} cores busy before start`,
    `XMPP user (c2s) → ${A} accounts round-robin → one webhook each → local receiver ("ok" at once); warm-up ${WARMUP}; gateway env ${JSON.stringify(GATEWAY_ENV)}`,
  ];
  if (concurrency < A) header.push(`Note: WEBHOOK_CONCURRENCY ${concurrency} < ${A} accounts: the gateway serves fewer endpoints at once than the ceiling.`);
  return { header, balcony, ceiling, latency };
}

await runBench(main, (report) => printReport(formatReport(report), null));
