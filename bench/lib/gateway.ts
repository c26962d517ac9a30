// The gateway under test as a separate process (node --import tsx src/server.ts), optionally from
// another checkout (--gateway-dir) and with --cpu-prof; stopped gracefully by the cleanup.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitForOwnAnswer } from "../../scripts/harness/gateway-process.js";
import { freePort } from "../../scripts/harness/ports.js";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { exitKills, onCleanup, reaper } from "./lifecycle.js";
import { sleep } from "./util.js";

export interface GatewayProcess {
  url: string;
  pid: number;
  logFile: string;
  profileDir: string | undefined;
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

export interface GatewayOptions {
  server: XmppServer;
  databaseUrl: string;
  /** Where its log (and profile) go. */
  workDir: string;
  /** The checkout to run src/server.ts from. */
  gatewayDir: string;
  jwtSecret: string;
  cpuProf: boolean;
  env: Record<string, string>;
  /** Where bench/lib/loop-probe.mjs, loaded into the gateway, records its collections and event-loop gaps (none: not loaded). */
  loopFile?: string;
  /** Where bench/lib/alloc-probe.mjs, loaded into the gateway, writes its heap profile (none: not loaded). */
  allocFile?: string;
}

export async function startGatewayProcess(o: GatewayOptions): Promise<GatewayProcess> {
  const port = await freePort();
  const logFile = join(o.workDir, `gateway-${o.server.kind}.log`);
  const profileDir = o.cpuProf ? join(o.workDir, `profile-${o.server.kind}`) : undefined;
  const out = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    const preload = (name: string) => ["--import", fileURLToPath(new URL(`./${name}`, import.meta.url))];
    const probe = [...(o.loopFile ? preload("loop-probe.mjs") : []), ...(o.allocFile ? preload("alloc-probe.mjs") : [])];
    const args = [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), ...probe, "--import", "tsx", "src/server.ts"];
    child = spawn(process.execPath, args, {
      cwd: o.gatewayDir,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: String(port),
        DATABASE_URL: o.databaseUrl,
        XMPP_SERVICE: o.server.componentService,
        XMPP_DOMAIN: o.server.componentDomain,
        XMPP_SECRET: o.server.componentSecret,
        XMPP_RECONNECT_MAX: "2s",
        JWT_SECRET: o.jwtSecret,
        LOG_LEVEL: "warn",
        ...(o.loopFile ? { BENCH_LOOP_FILE: o.loopFile } : {}),
        ...(o.allocFile ? { BENCH_ALLOC_FILE: o.allocFile } : {}),
        ...o.env,
      },
      stdio: ["ignore", out, out],
    });
  } finally {
    closeSync(out);
  }
  exitKills.add(child);
  reaper.tell({ gatewayPid: child.pid });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const logTail = (lines = 30) => {
    try {
      return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM"); // graceful: the gateway closes, and --cpu-prof writes its profile
    const gone = await Promise.race([exited.then(() => true), sleep(12_000).then(() => false)]);
    if (!gone) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  onCleanup("gateway process", stop);

  const url = `http://127.0.0.1:${port}`;
  await waitForOwnAnswer(child, port, "/readyz", { timeoutMs: 60_000, intervalMs: 100, output: () => logTail() });
  return { url, pid: child.pid!, logFile, profileDir, stop, logTail };
}

/** POST with a bearer token, expecting one status; the JSON answer. */
export async function api<T>(url: string, path: string, token: string, body: unknown, expect: number): Promise<T> {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`POST ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}
