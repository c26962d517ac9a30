// The main thread's side of bench/inbound-receiver.ts (a worker: bench/lib/worker-client.ts).
import type { ReceiverOptions } from "./inbound-receiver.js";
import { RecordingWorker, type WorkerRecords } from "./lib/worker-client.js";

export interface Records extends WorkerRecords {
  /** SSE event ids (sequence numbers), one per id; -1 where there is none (component). */
  seqs: Float64Array;
  /** What arrived that was not a message of the run: "event presence", "iq type=get", … */
  other: Record<string, number>;
}

/** A raw component or an SSE stream receiving the benchmark's messages. */
export type Receiver = RecordingWorker<Records>;

export function startReceiver(opts: ReceiverOptions): Promise<Receiver> {
  return RecordingWorker.start<Records>(new URL("./inbound-receiver.ts", import.meta.url), opts, `${opts.mode} receiver`);
}
