// Heartbeat write benchmark (`npm run bench:heartbeats -- [--streams N] [--rounds R] [--smoke] [--json]`),
// issue 10: idle event streams. Idle, a gateway's only work is one SSE heartbeat per stream per
// 15 s (API.md's minimum): 667 writes a second for 10,000 streams, against a budget of 2% of a
// core. This measures the CPU one heartbeat costs the writing process on this machine, three ways,
// on N real HTTP/1.1 chunked responses held open by a client in another process:
//   - floor: the prepared chunk written straight to each socket (no checks);
//   - Balcony: src/http/sse.ts's `heartbeat` (that, when the response is chunked and idle);
//   - res.write: Node's own path for the same comment (what Balcony used before).
// Each way writes R rounds to every stream (a slice per timer tick, as the gateway does); the
// figure is user + system CPU (process.resourceUsage) per heartbeat, median over the rounds, with
// the ways interleaved round by round so machine noise falls on all of them. The client counts the
// bytes it received, and the run fails unless every heartbeat arrived.
import { fork, type ChildProcess } from "node:child_process";
import { Agent, createServer, request, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { heartbeat, HEARTBEAT, HEARTBEAT_CHUNK } from "../src/http/sse.js";
import { log, median, sleep } from "./lib/util.js";

const USAGE = `usage: npm run bench:heartbeats -- [options]
  --streams N   open streams (default 5000; --smoke: 200)
  --rounds R    heartbeats per stream per way (default 9; --smoke: 2)
  --smoke       a small run that finishes in seconds
  --json        one JSON line on stdout (the table goes to stderr)`;

/** API.md: heartbeats at least every 15 s; issue 10: 10,000 idle streams under 2% of a core. */
const INTERVAL_S = 15;
const STREAMS_TARGET = 10_000;
const BUDGET_CORE = 0.02;
const SLICES = 16;

type Way = "floor" | "Balcony" | "res.write";
const WAYS: Record<Way, (res: ServerResponse) => void> = {
  floor: (res) => res.socket!.write(HEARTBEAT_CHUNK),
  Balcony: heartbeat,
  "res.write": (res) => res.write(HEARTBEAT),
};

// The client: opens N streams and reports the bytes it received when asked.
if (process.argv[2] === "--client") {
  const [port, n] = process.argv.slice(3).map(Number) as [number, number];
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    request({ host: "127.0.0.1", port, path: "/", agent }, (res) => res.on("data", (d: Buffer) => (bytes += d.length)))
      .on("error", (err) => process.send!({ error: err.message }))
      .end();
  }
  process.on("message", () => process.send!({ bytes }));
} else {
  await main();
}

async function main(): Promise<void> {
  const { values: opt } = parseArgs({
    options: { streams: { type: "string" }, rounds: { type: "string" }, smoke: { type: "boolean", default: false }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
  });
  if (opt.help) return void console.log(USAGE);
  const n = Number(opt.streams ?? (opt.smoke ? 200 : 5000));
  const rounds = Number(opt.rounds ?? (opt.smoke ? 2 : 9));
  if (!(n > 0 && rounds > 0)) throw new Error(`--streams and --rounds must be positive\n${USAGE}`);

  const streams: ServerResponse[] = [];
  let allOpen = () => undefined as void;
  const opened = new Promise<void>((resolve) => (allOpen = resolve));
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write("retry: 1000\n\n");
    if (streams.push(res) === n) allOpen();
  });
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const client: ChildProcess = fork(fileURLToPath(import.meta.url), ["--client", String(port), String(n)], { execArgv: process.execArgv });
  const ask = () =>
    new Promise<number>((resolve, reject) => {
      client.once("message", (m: { bytes?: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.bytes!)));
      client.send("bytes");
    });
  try {
    log(`opening ${n} streams`);
    await opened;
    await sleep(500);
    const before = await ask();
    const perRound: Record<Way, number[]> = { floor: [], Balcony: [], "res.write": [] };
    for (let r = 0; r < rounds; r++) {
      for (const way of Object.keys(WAYS) as Way[]) perRound[way].push(await round(streams, WAYS[way]));
    }
    await sleep(500);
    const arrived = (await ask()) - before;
    // The client counts body bytes, after HTTP/1.1 de-chunking.
    const expected = rounds * 3 * n * Buffer.byteLength(HEARTBEAT);
    if (arrived !== expected) throw new Error(`the client received ${arrived} heartbeat bytes, expected ${expected}`);
    report(n, rounds, perRound, opt.json);
  } finally {
    client.kill();
    for (const res of streams) res.destroy();
    server.close();
  }
}

/** Writes one heartbeat to every stream, a slice per tick; CPU µs per heartbeat. */
async function round(streams: ServerResponse[], write: (res: ServerResponse) => void): Promise<number> {
  const start = process.resourceUsage();
  for (let s = 0; s < SLICES; s++) {
    for (let i = s; i < streams.length; i += SLICES) write(streams[i]!);
    await sleep(5);
  }
  // Let the writes' completions run (their callbacks are part of the cost).
  await sleep(20);
  const end = process.resourceUsage();
  return (end.userCPUTime - start.userCPUTime + end.systemCPUTime - start.systemCPUTime) / streams.length;
}

function report(n: number, rounds: number, perRound: Record<Way, number[]>, json: boolean | undefined): void {
  const floor = median(perRound.floor);
  const budgetUs = (BUDGET_CORE * 1e6 * INTERVAL_S) / STREAMS_TARGET;
  const rows = (Object.keys(perRound) as Way[]).map((way) => {
    const us = median(perRound[way]);
    return { way, us, ratio: us / floor, core: (us * STREAMS_TARGET) / INTERVAL_S / 1e6, perRound: perRound[way] };
  });
  const lines = [
    `Heartbeat CPU per write, ${n} open streams, ${rounds} rounds per way (median), node ${process.version}`,
    `way         µs/heartbeat  / floor   10,000 streams at one per ${INTERVAL_S} s   budget (issue 10: < ${BUDGET_CORE * 100}% of a core idle = ${budgetUs.toFixed(0)} µs)`,
    ...rows.map((r) => `${r.way.padEnd(11)} ${r.us.toFixed(2).padStart(12)}  ${r.ratio.toFixed(2).padStart(6)}x  ${(r.core * 100).toFixed(2).padStart(8)}% of a core`),
  ];
  if (json) {
    process.stderr.write(`${lines.join("\n")}\n`);
    console.log(JSON.stringify(Object.fromEntries(rows.map((r) => [r.way, { us: r.us, ratio: r.ratio, core: r.core, perRound: r.perRound }]))));
  } else console.log(lines.join("\n"));
}
