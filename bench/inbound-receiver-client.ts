// The main thread's side of bench/inbound-receiver.ts: start the worker, wait until it is live,
// count arrivals as they come, take what it recorded, stop it.
import { Worker } from "node:worker_threads";
import type { ReceiverOptions } from "./inbound-receiver.js";

type ReceiverMessage =
  | { type: "online" }
  | { type: "failed"; message: string }
  | { type: "error"; message: string }
  | { type: "progress"; unique: number; total: number }
  | { type: "records"; ids: string[]; times: Float64Array; seqs: Float64Array; other: Record<string, number> }
  | { type: "stopped" };

export interface Records {
  /** Stanza ids in arrival order (repeats included). */
  ids: string[];
  /** Arrival times (ms since the epoch, performance.timeOrigin + now()), one per id. */
  times: Float64Array;
  /** SSE event ids (sequence numbers), one per id; -1 where there is none (component). */
  seqs: Float64Array;
  /** What arrived that was not a message of the run: "event presence", "iq type=get", … */
  other: Record<string, number>;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Receiver {
  /** Distinct ids received since the last take(). */
  unique = 0;
  total = 0;
  readonly errors: string[] = [];
  #listeners = new Set<(m: ReceiverMessage) => void>();
  #stopped = false;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (m: ReceiverMessage) => {
      if (m.type === "error") this.errors.push(m.message);
      if (m.type === "progress") {
        this.unique = m.unique;
        this.total = m.total;
      }
      for (const l of this.#listeners) l(m);
    });
    worker.on("error", (e) => this.errors.push(`worker: ${e.message}`));
  }

  static async start(opts: ReceiverOptions): Promise<Receiver> {
    // Workers do not inherit tsx's loader: register it in the worker before importing the module.
    const entry = new URL("./inbound-receiver.ts", import.meta.url).href;
    const tsx = import.meta.resolve("tsx/esm/api");
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    const r = new Receiver(new Worker(code, { eval: true, workerData: opts }));
    const first = await within(r.#next((m) => m.type === "online" || m.type === "failed"), 15_000, `${opts.mode} receiver start`).catch(async (e: unknown) => {
      await r.stop();
      throw e;
    });
    if (first.type === "failed") {
      await r.stop();
      throw new Error(`${opts.mode} receiver failed to start: ${first.message}`);
    }
    return r;
  }

  #next(match: (m: ReceiverMessage) => boolean): Promise<ReceiverMessage> {
    return new Promise((resolve) => {
      const l = (m: ReceiverMessage) => {
        if (!match(m)) return;
        this.#listeners.delete(l);
        resolve(m);
      };
      this.#listeners.add(l);
    });
  }

  /** Everything recorded since the last take(); resets the counters. */
  async take(): Promise<Records> {
    const reply = this.#next((m) => m.type === "records");
    this.worker.postMessage({ cmd: "take" });
    const m = (await within(reply, 30_000, "receiver records")) as Extract<ReceiverMessage, { type: "records" }>;
    this.unique = 0;
    this.total = 0;
    return { ids: m.ids, times: m.times, seqs: m.seqs, other: m.other };
  }

  /**
   * Waits until `expected` distinct ids arrived; false when nothing new arrived for idleMs (call
   * it once the sender is done, so that idle means lost) or when `aborted()` says so.
   */
  waitFor(expected: number, idleMs: number, aborted: () => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      let last = this.unique;
      let lastChange = Date.now();
      const timer = setInterval(() => {
        if (this.unique >= expected) return done(true);
        if (aborted()) return done(false);
        if (this.unique !== last) {
          last = this.unique;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > idleMs) {
          done(false);
        }
      }, 5);
      const done = (ok: boolean) => {
        clearInterval(timer);
        resolve(ok);
      };
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const stopped = this.#next((m) => m.type === "stopped");
    this.worker.postMessage({ cmd: "stop" });
    await within(stopped, 5000, "receiver stop").catch(() => undefined);
    await this.worker.terminate();
  }
}
