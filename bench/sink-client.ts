// The main thread's side of the receiving XMPP user (bench/sink.ts, a worker:
// bench/lib/worker-client.ts). It records stanza ids (or body texts) and arrival times.
import { RecordingWorker, type WorkerRecords } from "./lib/worker-client.js";
import type { SinkOptions } from "./sink.js";

export type SinkWorker = RecordingWorker<WorkerRecords>;

/** Starts the worker and waits for its login (its full JID is then `jid`). */
export function startSink(opts: SinkOptions): Promise<SinkWorker> {
  return RecordingWorker.start<WorkerRecords>(new URL("./sink.ts", import.meta.url), opts, "sink user");
}
