/**
 * Several gateway processes (scripts/harness/gateway-process.ts) on one PostgreSQL database and
 * one XMPP server, each on a fixed loopback port so a killed instance comes back where the load
 * balancer expects it. For the multi-instance tests (test/instances/) and bench/instances.ts.
 *
 * Every generation of every instance keeps its output (LOG_LEVEL=info by default): `logs()` and
 * `writeLogs()` give it for failure reports, `linkEvents()` the lines about the link lease.
 */
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jwt from "jsonwebtoken";
import { JWT_SECRET, getOnce, startGatewayProcess, type GatewayProcess, type StartGatewayOptions } from "./gateway-process.js";
import { freePorts } from "./ports.js";
import type { XmppServer } from "./xmpp-server.js";

export type InstanceState = "up" | "standby" | "down" | "dead";

export interface Instance {
  /** g1, g2, …: also the server name in the HAProxy config. */
  name: string;
  port: number;
  url: string;
  /** The running process, or null while the instance is stopped. */
  proc: GatewayProcess | null;
  /** Every process this instance ran, oldest first (their output survives them). */
  generations: { proc: GatewayProcess; startedAt: Date; env: Record<string, string> }[];
}

export interface ClusterOptions {
  size?: number;
  /** Extra environment for every instance (LOG_LEVEL defaults to info). */
  env?: Record<string, string>;
}

export interface Readyz {
  status: number;
  xmpp: string | null;
  database: string | null;
}

export class GatewayCluster {
  readonly instances: Instance[];

  private constructor(
    readonly server: XmppServer,
    readonly databaseUrl: string,
    readonly env: Record<string, string>,
    ports: number[],
  ) {
    this.instances = ports.map((port, i) => ({ name: `g${i + 1}`, port, url: `http://127.0.0.1:${port}`, proc: null, generations: [] }));
  }

  /**
   * Starts the instances: the first alone (it applies the migrations and takes the link), then
   * the others together. Resolves once each answers /readyz with 200.
   */
  static async start(server: XmppServer, databaseUrl: string, opts: ClusterOptions = {}): Promise<GatewayCluster> {
    const size = opts.size ?? 3;
    const ports = await freePorts(size);
    const cluster = new GatewayCluster(server, databaseUrl, { LOG_LEVEL: "info", ...(opts.env ?? {}) }, ports);
    try {
      await cluster.restart(0);
      await Promise.all(cluster.instances.slice(1).map((_, i) => cluster.restart(i + 1)));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The instances as HAProxy servers. */
  get servers(): { name: string; port: number }[] {
    return this.instances.map(({ name, port }) => ({ name, port }));
  }

  /**
   * (Re)starts instance i on its port (no-op if running); extra env for this generation only.
   * Resolves once the process serves HTTP and, unless opts.waitFor is "live", once its /readyz
   * body says xmpp "up" or "standby" (bounded, 30 s). The body, not the status: what a standby's
   * status should be is for the tests to check, not for the harness to assume.
   */
  async restart(i: number, env: Record<string, string> = {}, opts: StartGatewayOptions = {}): Promise<GatewayProcess> {
    const inst = this.at(i);
    if (inst.proc) return inst.proc;
    const fullEnv = { ...this.env, ...env };
    const proc = await startGatewayProcess(this.server, this.databaseUrl, inst.port, fullEnv, { waitFor: "live" });
    inst.proc = proc;
    inst.generations.push({ proc, startedAt: new Date(), env: fullEnv });
    if (opts.waitFor === "live") return proc;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await this.readyz(i);
      if (r.xmpp === "up" || r.xmpp === "standby") return proc;
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`${inst.name} exited during start-up:\n${proc.output()}`);
      if (Date.now() > deadline) {
        await this.kill(i);
        throw new Error(`${inst.name}: /readyz still says ${JSON.stringify(r)} 30 s after start:\n${proc.output()}`);
      }
      await sleep(50);
    }
  }

  /** Stops instance i with the signal (SIGKILL: a crash; SIGTERM: a graceful stop); resolves on exit. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<string> {
    const inst = this.at(i);
    const proc = inst.proc;
    if (!proc) return "not running";
    const result = await proc.stop(signal);
    inst.proc = null;
    return result;
  }

  /** Restarts every stopped instance. */
  async ensureAll(): Promise<void> {
    await Promise.all(this.instances.map((inst, i) => (inst.proc ? undefined : this.restart(i))));
  }

  /** GET /readyz of instance i directly; status 0 when it does not answer. */
  async readyz(i: number, timeoutMs = 2000): Promise<Readyz> {
    const inst = this.at(i);
    if (!inst.proc) return { status: 0, xmpp: null, database: null };
    // On a connection of its own, closed after the answer (see getOnce).
    const r = await getOnce(`${inst.url}/readyz`, timeoutMs);
    let body: { xmpp?: string; database?: string } = {};
    try {
      body = JSON.parse(r.text) as typeof body;
    } catch {
      /* no JSON */
    }
    return r.status === 0 ? { status: 0, xmpp: null, database: null } : { status: r.status, xmpp: body.xmpp ?? null, database: body.database ?? null };
  }

  /** Every instance's xmpp state from /readyz ("dead" when it does not answer). */
  async states(): Promise<InstanceState[]> {
    const all = await Promise.all(this.instances.map((_, i) => this.readyz(i)));
    return all.map((r) => (r.status === 0 ? "dead" : ((r.xmpp ?? "down") as InstanceState)));
  }

  /** Indexes of the instances whose /readyz says xmpp "up". */
  async holders(): Promise<number[]> {
    return (await this.states()).flatMap((s, i) => (s === "up" ? [i] : []));
  }

  /**
   * Waits (bounded) until the states are stable: with XMPP_LINK_MODE=single exactly one running
   * instance "up" and every other running one "standby"; with "all", every running one "up".
   * Returns the holder's index (the first "up" one).
   */
  async waitStable(timeoutMs = 15_000, mode: "single" | "all" = "single"): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: InstanceState[] = [];
    for (;;) {
      last = await this.states();
      const running = last.filter((_, i) => this.instances[i]!.proc);
      const ups = last.flatMap((s, i) => (s === "up" ? [i] : []));
      const ok = mode === "all" ? running.every((s) => s === "up") : ups.length === 1 && running.filter((s) => s === "standby").length === running.length - 1;
      if (ok && ups.length > 0) return ups[0]!;
      if (Date.now() > deadline) throw new Error(`cluster not stable after ${timeoutMs} ms: ${this.describe(last)}`);
      await sleep(100);
    }
  }

  describe(states: InstanceState[]): string {
    return states.map((s, i) => `${this.instances[i]?.name ?? `#${i + 1}`}=${s}`).join(" ");
  }

  /** Output of every generation of every instance, each line prefixed by the instance's name. */
  logs(): string {
    return this.instances
      .flatMap((inst) =>
        inst.generations.map((g, n) => {
          const head = `===== ${inst.name} generation ${n + 1} (pid ${g.proc.child.pid}, started ${g.startedAt.toISOString()})`;
          return [head, ...g.proc.output().trimEnd().split("\n").map((l) => `${inst.name}.${n + 1} ${l}`)].join("\n");
        }),
      )
      .join("\n");
  }

  /**
   * The log lines about the link and its lease (pino JSON; msg and time), across instances and
   * generations, in time order: what a failure report needs to show who held the link when.
   */
  linkEvents(): string[] {
    const rows: { t: number; line: string }[] = [];
    for (const inst of this.instances) {
      inst.generations.forEach((g, n) => {
        for (const raw of g.proc.output().split("\n")) {
          let rec: { time?: number; msg?: string; level?: number; [k: string]: unknown };
          try {
            rec = JSON.parse(raw) as typeof rec;
          } catch {
            continue;
          }
          if (!rec.msg || !/lease|link|component|shutting down|listening|connect/i.test(rec.msg)) continue;
          const t = typeof rec.time === "number" ? rec.time : 0;
          rows.push({ t, line: `${new Date(t).toISOString()} ${inst.name}.${n + 1} [${rec.level}] ${rec.msg}` });
        }
      });
    }
    return rows.sort((a, b) => a.t - b.t).map((r) => r.line);
  }

  /** Writes every instance's output to files in a new temp dir; returns the dir. */
  async writeLogs(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `balcony-instances-${label.replace(/[^a-z0-9]+/gi, "-").slice(0, 40)}-`));
    for (const inst of this.instances) {
      for (const [n, g] of inst.generations.entries()) await writeFile(join(dir, `${inst.name}.${n + 1}.log`), g.proc.output());
    }
    await writeFile(join(dir, "link-events.log"), this.linkEvents().join("\n") + "\n");
    return dir;
  }

  async stop(): Promise<void> {
    await Promise.all(this.instances.map((inst) => inst.proc?.stop("SIGKILL")));
    for (const inst of this.instances) inst.proc = null;
  }

  private at(i: number): Instance {
    const inst = this.instances[i];
    if (!inst) throw new Error(`no instance ${i}`);
    return inst;
  }
}

/** Pids of the processes holding established TCP connections to the loopback port (e.g. a component port). */
export function connectionsTo(port: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    execFile("ss", ["-Htnp", "state", "established", `( dport = :${port} )`], (error, stdout) => {
      if (error) return reject(error);
      resolve(stdout.split("\n").filter(Boolean).map((l) => Number(/pid=(\d+)/.exec(l)?.[1] ?? -1)));
    });
  });
}

/** A token signed with the harness's JWT_SECRET, valid for an hour. */
export function sign(claims: Record<string, unknown>): string {
  return jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });
}

export const ADMIN_TOKEN = (): string => sign({ sub: "admin", scope: "admin" });

export interface ApiResult {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One JSON request; throws on a connection error (callers that retry catch it). */
export async function api(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ApiResult> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(base + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
  });
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: r.status, headers: r.headers, body };
}

/** Creates an account (admin) and returns a token for it. */
export async function createAccount(base: string, localpart: string, resource?: string): Promise<string> {
  const r = await api(base, "POST", "/v1/accounts", { token: ADMIN_TOKEN(), body: { localpart } });
  if (r.status !== 201) throw new Error(`create account ${localpart} through ${base}: ${r.status} ${JSON.stringify(r.body)}`);
  return sign(resource ? { sub: localpart, resource } : { sub: localpart });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
