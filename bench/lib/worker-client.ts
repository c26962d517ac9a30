// The main thread's side of the benchmarks' receivers, each in a worker thread so that receiving
// does not compete with the load generator's event loop (bench/sink.ts, bench/inbound-receiver.ts,
// bench/rooms-occupant.ts): start one and wait until it is live, count arrivals as they come, take
// what it recorded, stop it. Each benchmark keeps its own accounting.
import { Worker } from "node:worker_threads";
import { withTimeout } from "./util.js";

/** What a receiver recorded since the last take(): ids in arrival order (repeats included), a time each. */
export interface WorkerRecords {
  ids: string[];
  /** Arrival times (CLOCK_MONOTONIC ms, bench/lib/util.ts's now), one per id. */
  times: Float64Array;
}

/** What the workers post. */
export type WorkerMessage<R extends WorkerRecords = WorkerRecords> =
  | { type: "online"; jid?: string }
  | { type: "failed"; message: string }
  | { type: "error"; message: string }
  | { type: "progress"; unique: number; total: number }
  | ({ type: "records" } & R)
  | { type: "stopped" };

export class RecordingWorker<R extends WorkerRecords = WorkerRecords> {
  /** Distinct ids received since the last take(). */
  unique = 0;
  /** The full JID the receiver logged in as, where it says (the sink). */
  jid = "";
  readonly errors: string[] = [];
  #listeners = new Set<(m: WorkerMessage<R>) => void>();
  #stopped = false;

  private constructor(
    private readonly worker: Worker,
    private readonly what: string,
  ) {
    worker.on("message", (m: WorkerMessage<R>) => {
      if (m.type === "error") this.errors.push(m.message);
      if (m.type === "progress") this.unique = m.unique;
      for (const l of this.#listeners) l(m);
    });
    worker.on("error", (e) => this.errors.push(`worker: ${e.message}`));
  }

  /** Starts the worker module `entry` with `workerData`; resolves once it is live (logged in, in its rooms, streaming). */
  static async start<R extends WorkerRecords>(entry: URL, workerData: unknown, what: string, startMs = 15_000): Promise<RecordingWorker<R>> {
    // Workers do not inherit tsx's loader: register it in the worker before importing the module.
    const tsx = import.meta.resolve("tsx/esm/api");
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
    const w = new RecordingWorker<R>(new Worker(code, { eval: true, workerData }), what);
    const first = await withTimeout(
      w.#next((m) => m.type === "online" || m.type === "failed"),
      startMs,
      `${what} start`,
    ).catch(async (e: unknown) => {
      await w.stop();
      throw e;
    });
    if (first.type === "failed") {
      await w.stop();
      throw new Error(`${what} failed to start: ${first.message}`);
    }
    if (first.type === "online") w.jid = first.jid ?? "";
    return w;
  }

  #next(match: (m: WorkerMessage<R>) => boolean): Promise<WorkerMessage<R>> {
    return new Promise((resolve) => {
      const l = (m: WorkerMessage<R>) => {
        if (!match(m)) return;
        this.#listeners.delete(l);
        resolve(m);
      };
      this.#listeners.add(l);
    });
  }

  /** Everything recorded since the last take(); resets the counters. */
  async take(): Promise<R> {
    const reply = this.#next((m) => m.type === "records");
    this.worker.postMessage({ cmd: "take" });
    const { type: _, ...records } = (await withTimeout(reply, 30_000, `${this.what} records`)) as Extract<WorkerMessage<R>, { type: "records" }>;
    this.unique = 0;
    return records as unknown as R;
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
    await withTimeout(stopped, 5000, `${this.what} stop`).catch(() => undefined);
    await this.worker.terminate();
  }
}
