// The receiving XMPP user of the message benchmark (bench/sink.ts in a worker thread, through
// bench/sink-client.ts), identifying messages by their body text, and the matching of what was
// sent with what arrived.
import type { SinkOptions } from "../sink.js";
import { startSink, type SinkWorker } from "../sink-client.js";
import { isAborting, onCleanup } from "./lifecycle.js";

export class Receiver {
  private constructor(private readonly worker: SinkWorker) {}

  static async start(opts: Omit<SinkOptions, "key">): Promise<Receiver> {
    const worker = await startSink({ ...opts, key: "body" });
    onCleanup("sink user", () => worker.stop());
    return new Receiver(worker);
  }

  get jid(): string {
    return this.worker.jid;
  }

  get errors(): string[] {
    return this.worker.errors;
  }

  /** Distinct messages received since the last take(). */
  get unique(): number {
    return this.worker.unique;
  }

  /** Everything received since the last take() (keys are body texts); resets the counters. */
  async take(): Promise<{ keys: string[]; times: Float64Array }> {
    const r = await this.worker.take();
    return { keys: r.ids, times: r.times };
  }

  /**
   * Waits until `expected` distinct messages arrived; gives up (false) when nothing new arrived for
   * idleMs. Call it once the sender is done, so that idle means lost.
   */
  waitFor(expected: number, idleMs: number): Promise<boolean> {
    return this.worker.waitFor(expected, idleMs, isAborting);
  }
}

export interface Delivery {
  /** Messages the sender had accepted (202, 200, written on the socket). */
  accepted: number;
  delivered: number;
  lost: number;
  duplicates: number;
  /** Received messages nobody sent in this run. */
  strays: number;
  /** Per delivered message: arrival − start, ms. */
  latencies: number[];
  /** Last arrival of an accepted message (or `from` when none arrived). */
  lastArrival: number;
}

/** Matches the messages accepted (key → start time) with what the receiver recorded. */
export function matchDeliveries(accepted: Map<string, number>, recv: { keys: string[]; times: Float64Array }, from: number): Delivery {
  const first = new Map<string, number>();
  let duplicates = 0;
  recv.keys.forEach((key, i) => {
    if (first.has(key)) duplicates++;
    else first.set(key, recv.times[i]!);
  });
  const latencies: number[] = [];
  let lastArrival = from;
  for (const [key, start] of accepted) {
    const t = first.get(key);
    if (t === undefined) continue;
    latencies.push(t - start);
    if (t > lastArrival) lastArrival = t;
  }
  let strays = 0;
  for (const key of first.keys()) if (!accepted.has(key)) strays++;
  return {
    accepted: accepted.size,
    delivered: latencies.length,
    lost: accepted.size - latencies.length,
    duplicates,
    strays,
    latencies,
    lastArrival,
  };
}
