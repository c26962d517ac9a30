// Runs the gateway as a separate process (node src/server.ts through tsx), for tests that kill
// it: SIGKILL mid-traffic, SIGTERM for a graceful stop.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { get } from "node:http";
import { listensOn } from "./ports.js";
import type { XmppServer } from "./xmpp-server.js";

export { freePort } from "./ports.js";

/** The secret every harness gateway verifies tokens with, whether started here or in-process by the tests. */
export const JWT_SECRET = "test-secret-0123456789abcdef0123456789";

/**
 * GET on a connection of its own, closed after the answer (status 0: no answer within timeoutMs).
 * The harness's probes leave no keep-alive connection behind: a test that stops a gateway sees
 * only the connections it opened itself (a SIGTERMed one serves those for its drain, SHUTDOWN_DRAIN).
 */
export function getOnce(url: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      // Cut before its end (the timeout, a reset): no answer. After "end", the first resolve stands.
      res.on("close", () => resolve({ status: 0, text: "" }));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0, text: "" }));
  });
}

/**
 * The node arguments `npm start` runs the built gateway with, from `dir`'s package.json (its start
 * script is `node ARGS`): for anything that starts the built gateway as production does.
 */
export function startArgs(dir: string): string[] {
  const script = (JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { scripts?: { start?: string } }).scripts?.start ?? "";
  const [cmd, ...args] = script.trim().split(/\s+/);
  if (cmd !== "node" || args.length === 0) throw new Error(`${dir}/package.json: the start script is not "node ARGS": ${JSON.stringify(script)}`);
  return args;
}

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
  /** Sends a signal and waits for the process to exit; returns its exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<string>;
}

/**
 * Waits until `child`'s server answers 200 on `path` at 127.0.0.1:`port`: from that process (or
 * one of its descendants, tsx's CLI runs the server in a child) and no other. A gateway that could
 * not bind its port exits, and another process's server may be what answers there
 * (scripts/harness/ports.ts). Fails when the process exits first or after `timeoutMs`, with the
 * last lines of its output; the caller decides what becomes of a process that never answered.
 */
export async function waitForOwnAnswer(child: ChildProcess, port: number, path: string, o: { timeoutMs: number; output: () => string; intervalMs?: number }): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let foreign = false;
  for (let status = 0; ; ) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const note = foreign ? ` (port ${port} was answered by another process meanwhile)` : "";
      throw new Error(`gateway exited during start-up${note}, ${child.signalCode ?? `code ${child.exitCode}`}:\n${o.output()}`);
    }
    status = (await getOnce(`http://127.0.0.1:${port}${path}`)).status;
    if (status === 200 && listensOn(child.pid!, port)) return;
    foreign ||= status === 200;
    if (Date.now() > deadline) throw new Error(`gateway did not answer 200 on ${path} within ${o.timeoutMs / 1000} s (last: ${status || "no answer"}):\n${o.output()}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50));
  }
}

const running = new Set<ChildProcess>();
process.on("exit", () => running.forEach((c) => c.kill("SIGKILL")));

export interface StartGatewayOptions {
  /**
   * What start-up waits for: "ready" (default: `GET /readyz` answers 200) or "live" (`GET /healthz`
   * answers 200: the process serves HTTP, whatever the state of its component link, e.g. while the
   * XMPP server is down or another process holds the component's only connection).
   */
  waitFor?: "ready" | "live";
  /** Run another build of the gateway: node with these arguments in this directory (default: src/server.ts through tsx, here). */
  run?: { cwd: string; args: string[] };
}

export async function startGatewayProcess(
  server: XmppServer,
  databaseUrl: string,
  port: number,
  env: Record<string, string> = {},
  opts: StartGatewayOptions = {},
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, opts.run?.args ?? ["--import", "tsx", "src/server.ts"], {
    ...(opts.run ? { cwd: opts.run.cwd } : {}),
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      XMPP_SERVICE: server.componentService,
      XMPP_DOMAIN: server.componentDomain,
      XMPP_SECRET: server.componentSecret,
      JWT_SECRET,
      XMPP_RECONNECT_MAX: "500ms",
      // A test's own keep-alive connections (fetch keeps them for about 70 s) would hold each
      // SIGTERM for the default drain (5 s); the tests of the drain set theirs, or "" (the default).
      SHUTDOWN_DRAIN: "1s",
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<string>((resolve) =>
    child.on("exit", (code, sig) => {
      running.delete(child);
      resolve(sig ?? String(code));
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const path = opts.waitFor === "live" ? "/healthz" : "/readyz";
  await waitForOwnAnswer(child, port, path, { timeoutMs: 30_000, output: () => out }).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  return {
    url,
    port,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
