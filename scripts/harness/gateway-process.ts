// Runs the gateway as a separate process (node src/server.ts through tsx), for tests that kill
// it: SIGKILL mid-traffic, SIGTERM for a graceful stop.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import type { XmppServer } from "./xmpp-server.js";

/** The secret every harness gateway verifies tokens with, whether started here or in-process by the tests. */
export const JWT_SECRET = "test-secret-0123456789abcdef0123456789";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
  /** Sends a signal and waits for the process to exit; returns its exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<string>;
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
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited during start-up:\n${out}`);
    const ok = await fetch(`${url}${opts.waitFor === "live" ? "/healthz" : "/readyz"}`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`gateway not ${opts.waitFor === "live" ? "live" : "ready"} after 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
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
