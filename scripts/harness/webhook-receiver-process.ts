// A webhook receiver in its own process, for the tests and the benchmark: it records every POST
// to /hooks/<name> (headers, raw body, arrival time) and answers as told, one behaviour per
// request from that name's plan, then `ok`:
//   ok          200 "ok"
//   <status>    that status with body "status <status>" (e.g. 500, 410, 302 with a Location);
//               "<status>;retry-after=<value>" adds that Retry-After header
//   timeout     never answers (the socket is held open)
//   close       destroys the connection before answering
//   slow:<ms>   200 after that many milliseconds
//   trickle:<ms> 200 and the body's first bytes at once, the rest after that many milliseconds
// Control: POST /_plan/<name> (JSON array of behaviours), GET /_log/<name>, GET /_count/<name>.
// Listens on HOST (default 127.0.0.1), on a free port reserved for it; prints "LISTENING <port>" when ready.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mono } from "./clock.js";
import { freePort } from "./ports.js";

interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
  /** Arrival on CLOCK_MONOTONIC (./clock.ts), comparable across the machine's processes. */
  mono: number;
  /** What the receiver did with it. */
  behaviour: string;
  /** When the answer was sent (absent while held, or for `close` and `timeout`). */
  answeredAt?: number;
}

const logs = new Map<string, Received[]>();
const plans = new Map<string, string[]>();
const held: ServerResponse[] = [];
const now = () => performance.timeOrigin + performance.now();

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://receiver");
  const [, kind, name = ""] = url.pathname.split("/");
  const body = await bodyOf(req);
  if (kind === "_plan" && req.method === "POST") {
    plans.set(name, JSON.parse(body) as string[]);
    return json(res, { ok: true });
  }
  if (kind === "_log") return json(res, logs.get(name) ?? []);
  if (kind === "_count") return json(res, (logs.get(name) ?? []).length);
  if (kind !== "hooks" || req.method !== "POST") return res.writeHead(404).end();
  const behaviour = plans.get(name)?.shift() ?? "ok";
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]));
  let log = logs.get(name);
  if (!log) logs.set(name, (log = []));
  const rec: Received = { headers, body, at: now(), mono: mono(), behaviour };
  log.push(rec);
  res.on("finish", () => (rec.answeredAt = now()));
  if (behaviour === "ok") return res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  if (behaviour === "timeout") return void held.push(res);
  if (behaviour === "close") return req.socket.destroy();
  if (behaviour.startsWith("slow:")) return void setTimeout(() => res.writeHead(200).end("ok"), Number(behaviour.slice(5)));
  if (behaviour.startsWith("trickle:")) {
    res.writeHead(200, { "content-type": "text/plain" }).write("accepted, ");
    return void setTimeout(() => res.end("and done"), Number(behaviour.slice(8)));
  }
  // "<status>;retry-after=<value>": that status with a Retry-After header.
  const [code, retryAfter] = behaviour.split(";retry-after=");
  const status = Number(code);
  res.writeHead(status, { ...(status >= 300 && status < 400 ? { location: `/hooks/${name}-redirected` } : {}), ...(retryAfter ? { "retry-after": retryAfter } : {}) }).end(`status ${status}`);
});
server.keepAliveTimeout = 60_000;
// A reserved port (scripts/harness/ports.ts), not one the kernel would hand out while another test
// file's server has yet to bind it.
const host = process.env.HOST ?? "127.0.0.1";
server.listen(await freePort(host), host, () => {
  process.stdout.write(`LISTENING ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
