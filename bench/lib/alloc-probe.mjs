// Loaded into the gateway with --import by `bench/inbound.ts --alloc` (bench/lib/gateway.ts): V8's
// sampling heap profiler between two SIGUSR2s, counting the objects the collector has already
// freed too, so that it tells what was allocated (what the young generation's collections cost
// comes from), not what lived. The second SIGUSR2 writes the profile (a .heapprofile, as Chrome's
// DevTools read it) to BENCH_ALLOC_FILE. Sampling costs CPU of its own (a stack walk every
// SAMPLE_BYTES on average): a run's latencies with it are not comparable with runs without. Plain
// JavaScript, as bench/lib/loop-probe.mjs; nothing of it is in the gateway.
import { renameSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import process from "node:process";

const SAMPLE_BYTES = 4096;
const file = process.env.BENCH_ALLOC_FILE;
if (file) {
  const session = new Session();
  session.connect();
  let sampling = false;
  const write = (text) => {
    // Whole or not at all: the bench reads the file once it exists.
    writeFileSync(`${file}.part`, text);
    renameSync(`${file}.part`, file);
  };
  process.on("SIGUSR2", () => {
    sampling = !sampling;
    if (sampling) {
      session.post("HeapProfiler.startSampling", { samplingInterval: SAMPLE_BYTES, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }, (err) => {
        if (err) write(JSON.stringify({ error: String(err) }));
      });
    } else {
      session.post("HeapProfiler.stopSampling", (err, r) => write(JSON.stringify(err ? { error: String(err) } : r.profile)));
    }
  });
}
