// The main thread's side of bench/rooms-occupant.ts (a worker: bench/lib/worker-client.ts),
// recording as bench/inbound-receiver.ts does (bench/rooms.ts uses that one for the SSE side).
import type { Records } from "./inbound-receiver-client.js";
import { RecordingWorker } from "./lib/worker-client.js";
import type { OccupantOptions } from "./rooms-occupant.js";

/** A logged-in XMPP user in every room of the benchmark. */
export type Occupant = RecordingWorker<Records>;

/** Logs in and enters every room; resolves once it is in all of them. */
export function startOccupant(opts: OccupantOptions): Promise<Occupant> {
  return RecordingWorker.start<Records>(new URL("./rooms-occupant.ts", import.meta.url), opts, "room occupant", 60_000);
}
