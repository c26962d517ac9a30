// The benchmarks' side of the receiving XMPP user (bench/sink.ts runs it in a worker thread, so
// receiving does not compete with the load generator's event loop): start it, ask it for the
// stanza ids and arrival times it recorded, stop it. Each benchmark keeps its own accounting.
import { Worker } from "node:worker_threads";
import type { SinkOptions } from "./sink.js";

export type SinkMessage =
  | { type: "online"; jid: string }
  | { type: "failed"; message: string }
  | { type: "error"; message: string }
  | { type: "progress"; unique: number; total: number }
  | { type: "records"; ids: string[]; times: Float64Array }
  | { type: "stopped" };

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class SinkWorker {
  /** The user's full JID once logged in. */
  jid = "";
  readonly errors: string[] = [];
  #listeners = new Set<(m: SinkMessage) => void>();
  #stopped = false;

  private constructor(
    private readonly worker: Worker,
    onMessage: (m: SinkMessage) => void,
  ) {
    worker.on("message", (m: SinkMessage) => {
      if (m.type === "error") this.errors.push(m.message);
      onMessage(m);
      for (const l of this.#listeners) l(m);
    });
    worker.on("error", (e) => this.errors.push(`worker: ${e.message}`));
  }

  /** Starts the worker and waits for its login; `onMessage` sees every message (e.g. progress). */
  static async start(opts: SinkOptions, onMessage: (m: SinkMessage) => void = () => undefined): Promise<SinkWorker> {
    // Workers do not inherit tsx's loader: register it in the worker before importing sink.ts.
    const entry = new URL("./sink.ts", import.meta.url).href;
    const tsx = import.meta.resolve("tsx/esm/api");
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    const sink = new SinkWorker(new Worker(code, { eval: true, workerData: opts }), onMessage);
    const first = await within(sink.#next((m) => m.type === "online" || m.type === "failed"), 15_000, "sink login").catch(async (e: unknown) => {
      await sink.stop();
      throw e;
    });
    if (first.type === "failed") {
      await sink.stop();
      throw new Error(`sink login failed: ${first.message}`);
    }
    if (first.type === "online") sink.jid = first.jid;
    return sink;
  }

  #next(match: (m: SinkMessage) => boolean): Promise<SinkMessage> {
    return new Promise((resolve) => {
      const l = (m: SinkMessage) => {
        if (!match(m)) return;
        this.#listeners.delete(l);
        resolve(m);
      };
      this.#listeners.add(l);
    });
  }

  /** The ids and arrival times recorded since the last call. */
  async records(): Promise<{ ids: string[]; times: Float64Array }> {
    const reply = this.#next((m) => m.type === "records");
    this.worker.postMessage({ cmd: "take" });
    const m = (await within(reply, 30_000, "sink records")) as Extract<SinkMessage, { type: "records" }>;
    return { ids: m.ids, times: m.times };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const stopped = this.#next((m) => m.type === "stopped");
    this.worker.postMessage({ cmd: "stop" });
    await within(stopped, 5000, "sink stop").catch(() => undefined);
    await this.worker.terminate();
  }
}
