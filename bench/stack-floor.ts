// Stack floor benchmark (`npm run bench:stack-floor -- [--rate R] [--seconds S] [--smoke] [--json]`),
// issue 10. What Balcony's own stack costs on this machine before any of Balcony's code: a
// server process with a bare Fastify route, then the same route with one autocommit INSERT through
// pg (a prepared statement, as Balcony's hot path), then that plus one stanza-sized socket write
// (to a sink in this process), each answering 202 with a small JSON body. Requests come at a fixed
// rate (open loop, undici over 32 keep-alive connections, as bench/messages.ts); the figures are
// the server's CPU per request (its own process.resourceUsage, user + system), beside the peer
// XMPP servers' CPU per message in issue 10 (Prosody's mod_rest 0.42 ms at 500 msg/s), and the
// answer latency. bench/messages.ts measures Balcony's full path at the same rate.
import { fork } from "node:child_process";
import { createServer as createTcpServer, connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Fastify from "fastify";
import pg from "pg";
import { Pool } from "undici";
import { createTestDatabase } from "../scripts/harness/database.js";
import { openLoop } from "./lib/pace.js";
import { log, now, percentile, sleep } from "./lib/util.js";

const USAGE = `usage: npm run bench:stack-floor -- [options]
  --rate R      requests per second (default 500)
  --seconds S   measured seconds per row, after a warm-up of a third of that (default 10; --smoke: 1)
  --smoke       a small run that finishes in seconds
  --json        one JSON line on stdout (the table goes to stderr)`;

const MODES = ["bare", "insert", "insert+stanza"] as const;
type Mode = (typeof MODES)[number];
const LABELS: Record<Mode, string> = {
  bare: "Fastify route, body validated, 202",
  insert: "+ one autocommit INSERT (pg, prepared)",
  "insert+stanza": "+ one stanza written to a socket",
};
/** Issue 10's peer figure at 500 msg/s: Prosody's mod_rest, CPU per message. */
const PEER_MS = 0.42;

interface Usage {
  cpuUs: number;
}

if (process.argv[2] === "--serve") await serve(process.argv[3] as Mode, process.argv[4]!, Number(process.argv[5]));
else await main();

/** The server process: one route, reporting its CPU on request. */
async function serve(mode: Mode, dbUrl: string, sinkPort: number): Promise<void> {
  const db = new pg.Pool({ connectionString: dbUrl, max: 4 });
  const sink: Socket | null = mode === "insert+stanza" ? await new Promise((resolve) => { const s = connect(sinkPort, "127.0.0.1", () => resolve(s)); }) : null;
  if (sink) sink.setNoDelay(true);
  const app = Fastify({ logger: false });
  const body = { type: "object", required: ["to", "body"], properties: { to: { type: "string" }, body: { type: "string" } } };
  const response = { 202: { type: "object", properties: { id: { type: "string" }, status: { type: "string" } } } };
  app.post("/m", { schema: { body, response } }, async (req, reply) => {
    const m = req.body as { to: string; body: string };
    let id = "none";
    if (mode !== "bare") {
      const r = await db.query<{ id: string }>({ name: "ins", text: "INSERT INTO m (peer, body) VALUES ($1, $2) RETURNING id::text", values: [m.to, m.body] });
      id = r.rows[0]!.id;
    }
    sink?.write(`<message to='${m.to}' from='floor@bench/x' id='${id}' type='chat'><body>${m.body}</body></message>`);
    return reply.code(202).send({ id, status: "queued" });
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  process.on("message", () => {
    const u = process.resourceUsage();
    process.send!({ cpuUs: u.userCPUTime + u.systemCPUTime } satisfies Usage);
  });
  process.send!({ port });
}

async function main(): Promise<void> {
  const { values: opt } = parseArgs({
    options: { rate: { type: "string", default: "500" }, seconds: { type: "string" }, smoke: { type: "boolean", default: false }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
  });
  if (opt.help) return void console.log(USAGE);
  const rate = Number(opt.rate);
  const seconds = Number(opt.seconds ?? (opt.smoke ? 1 : 10));
  if (!(rate > 0 && seconds > 0)) throw new Error(`--rate and --seconds must be positive\n${USAGE}`);

  const db = await createTestDatabase();
  let sunk = 0;
  const sink = createTcpServer((s) => s.on("data", (d) => (sunk += d.length)));
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  try {
    const setup = new pg.Client({ connectionString: db.url });
    await setup.connect();
    await setup.query("CREATE TABLE m (id bigserial PRIMARY KEY, peer text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())");
    await setup.end();
    const rows = [];
    for (const mode of MODES) rows.push(await measureMode(mode, db.url, (sink.address() as { port: number }).port, rate, seconds));
    if (sunk === 0) throw new Error("the stanza row wrote nothing to the sink");
    report(rate, seconds, rows, opt.json);
  } finally {
    sink.close();
    await db.drop();
  }
}

async function measureMode(mode: Mode, dbUrl: string, sinkPort: number, rate: number, seconds: number) {
  const child = fork(fileURLToPath(import.meta.url), ["--serve", mode, dbUrl, String(sinkPort)], { execArgv: process.execArgv });
  const next = () => new Promise<{ port?: number; cpuUs?: number }>((resolve) => child.once("message", resolve));
  try {
    const { port } = await next();
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 32 });
    const run = async (n: number) => {
      const answers: number[] = [];
      let refused = 0;
      const pending: Promise<void>[] = [];
      await openLoop(n, rate, (i, start) => {
        pending.push(
          pool
            .request({ method: "POST", path: "/m", headers: { "content-type": "application/json" }, body: JSON.stringify({ to: "juliet@localhost", body: `floor ${i}` }) })
            .then(async (r) => {
              await r.body.text();
              if (r.statusCode === 202) answers.push(now() - start);
              else refused++;
            }),
        );
      }, () => false);
      await Promise.all(pending);
      return { answers, refused };
    };
    log(`${mode}: warm-up`);
    await run(Math.max(50, Math.round((rate * seconds) / 3)));
    await sleep(200);
    child.send("usage");
    const before = (await next()).cpuUs!;
    log(`${mode}: ${rate * seconds} requests at ${rate}/s`);
    const { answers, refused } = await run(rate * seconds);
    child.send("usage");
    const after = (await next()).cpuUs!;
    await pool.close();
    if (refused > 0 || answers.length !== rate * seconds) throw new Error(`${mode}: ${answers.length} answered 202 of ${rate * seconds}, ${refused} refused`);
    answers.sort((a, b) => a - b);
    return { mode, cpuMs: (after - before) / 1000 / answers.length, p50: percentile(answers, 50), p99: percentile(answers, 99) };
  } finally {
    child.kill();
  }
}

function report(rate: number, seconds: number, rows: { mode: Mode; cpuMs: number; p50: number; p99: number }[], json: boolean | undefined): void {
  const lines = [
    `Stack floor: one server process, ${rate} requests/s for ${seconds} s per row (open loop, 32 keep-alive connections), node ${process.version}`,
    `row                                         CPU ms/request   answer p50 / p99     (issue 10's peer, Prosody's mod_rest: ${PEER_MS} ms/msg at 500/s)`,
    ...rows.map((r) => `${LABELS[r.mode].padEnd(43)} ${r.cpuMs.toFixed(3).padStart(14)}   ${r.p50.toFixed(2).padStart(6)} / ${r.p99.toFixed(2).padStart(6)} ms`),
  ];
  if (json) {
    process.stderr.write(`${lines.join("\n")}\n`);
    console.log(JSON.stringify(Object.fromEntries(rows.map((r) => [r.mode, { cpuMs: r.cpuMs, p50: r.p50, p99: r.p99 }]))));
  } else console.log(lines.join("\n"));
}
