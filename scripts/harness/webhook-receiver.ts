// Starts scripts/harness/webhook-receiver-process.ts as a separate process and talks to it: a
// real HTTP receiver on loopback for webhook tests and the benchmark.
import { spawn, type ChildProcess } from "node:child_process";

export interface ReceivedWebhook {
  headers: Record<string, string>;
  body: string;
  /** Arrival, in milliseconds since the epoch (sub-millisecond precision). */
  at: number;
  /** Arrival in milliseconds on CLOCK_MONOTONIC (process.hrtime), comparable across the machine's processes. */
  mono: number;
  behaviour: string;
  /** When the receiver answered (absent for `timeout` and `close`). */
  answeredAt?: number;
}

export interface WebhookReceiver {
  /** The URL of hook `name`, e.g. http://127.0.0.1:PORT/hooks/a. */
  url(name: string): string;
  /** What the next requests to `name` get (see the process's comment); afterwards `ok`. */
  plan(name: string, behaviours: string[]): Promise<void>;
  log(name: string): Promise<ReceivedWebhook[]>;
  count(name: string): Promise<number>;
  /** Waits until `name` has received at least `n` requests; returns them all. */
  waitFor(name: string, n: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => running.forEach((c) => c.kill("SIGKILL")));

export async function startWebhookReceiver(host = "127.0.0.1"): Promise<WebhookReceiver> {
  const child = spawn(process.execPath, ["--import", "tsx", new URL("./webhook-receiver-process.ts", import.meta.url).pathname], {
    env: { ...process.env, HOST: host },
    stdio: ["ignore", "pipe", "inherit"],
  });
  running.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`webhook receiver exited (${code}) before listening`)));
  });
  const base = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const get = async <T>(path: string): Promise<T> => (await (await fetch(base + path)).json()) as T;
  const receiver: WebhookReceiver = {
    url: (name) => `${base}/hooks/${name}`,
    async plan(name, behaviours) {
      await fetch(`${base}/_plan/${name}`, { method: "POST", body: JSON.stringify(behaviours) });
    },
    log: (name) => get(`/_log/${name}`),
    count: (name) => get(`/_count/${name}`),
    async waitFor(name, n, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const log = await receiver.log(name);
        if (log.length >= n) return log;
        if (Date.now() > deadline) throw new Error(`webhook receiver: ${name} got ${log.length} requests, expected ${n} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGKILL");
      await exited;
      running.delete(child);
    },
  };
  return receiver;
}
