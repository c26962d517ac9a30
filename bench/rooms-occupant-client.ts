// The main thread's side of bench/rooms-occupant.ts: start the worker, wait until it is in every
// room, count arrivals as they come, take what it recorded, stop it. The same interface as
// bench/inbound-receiver-client.ts's Receiver (which bench/rooms.ts uses for the SSE side).
import { Worker } from "node:worker_threads";
import type { Records } from "./inbound-receiver-client.js";
import type { OccupantOptions } from "./rooms-occupant.js";

type OccupantMessage =
  | { type: "online" }
  | { type: "failed"; message: string }
  | { type: "error"; message: string }
  | { type: "progress"; unique: number; total: number }
  | { type: "records"; ids: string[]; times: Float64Array; seqs: Float64Array; other: Record<string, number> }
  | { type: "stopped" };

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Occupant {
  /** Distinct ids received since the last take(). */
  unique = 0;
  total = 0;
  readonly errors: string[] = [];
  #listeners = new Set<(m: OccupantMessage) => void>();
  #stopped = false;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (m: OccupantMessage) => {
      if (m.type === "error") this.errors.push(m.message);
      if (m.type === "progress") {
        this.unique = m.unique;
        this.total = m.total;
      }
      for (const l of this.#listeners) l(m);
    });
    worker.on("error", (e) => this.errors.push(`worker: ${e.message}`));
  }

  /** Logs in and enters every room; resolves once it is in all of them. */
  static async start(opts: OccupantOptions): Promise<Occupant> {
    // Workers do not inherit tsx's loader: register it in the worker before importing the module.
    const entry = new URL("./rooms-occupant.ts", import.meta.url).href;
    const tsx = import.meta.resolve("tsx/esm/api");
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    const o = new Occupant(new Worker(code, { eval: true, workerData: opts }));
    const first = await within(o.#next((m) => m.type === "online" || m.type === "failed"), 60_000, "room occupant start").catch(async (e: unknown) => {
      await o.stop();
      throw e;
    });
    if (first.type === "failed") {
      await o.stop();
      throw new Error(`room occupant failed to start: ${first.message}`);
    }
    return o;
  }

  #next(match: (m: OccupantMessage) => boolean): Promise<OccupantMessage> {
    return new Promise((resolve) => {
      const l = (m: OccupantMessage) => {
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
    const m = (await within(reply, 30_000, "occupant records")) as Extract<OccupantMessage, { type: "records" }>;
    this.unique = 0;
    this.total = 0;
    return { ids: m.ids, times: m.times, seqs: m.seqs, other: m.other };
  }

  /** Waits until `expected` distinct ids arrived; false when nothing new arrived for idleMs or when `aborted()` says so. */
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
    await within(stopped, 5000, "occupant stop").catch(() => undefined);
    await this.worker.terminate();
  }
}
