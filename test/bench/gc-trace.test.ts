// bench/lib/gc-trace.ts: V8's --trace-gc lines (copied from a gateway under bench/streams.ts, Node 20) tallied by kind.
import { it } from "node:test";
import assert from "node:assert/strict";
import { formatGcTally, tallyGcTrace } from "../../bench/lib/gc-trace.js";

const TRACE = `
[18032:0x65e9fa0]    48008 ms: Scavenge 144.1 (185.2) -> 130.9 (154.2) MB, 6.53 / 0.00 ms  (average mu = 0.940, current mu = 0.001) task; 
{"level":40,"msg":"a gateway log line in between"}
[18032:0x65e9fa0]    48706 ms: Memory reducer: started GC #1
[18032:0x65e9fa0]    48885 ms: Mark-Compact (reduce) 130.9 (154.2) -> 130.4 (137.2) MB, 54.69 / 0.01 ms  (+ 111.5 ms in 398 steps since start of marking, biggest step 8.2 ms, walltime since start of marking 179 ms) (average mu = 0.989, current mu = 0.993) finalize incremental marking via task; GC in old space requested
[18032:0x65e9fa0]    49609 ms: Mark-Compact (reduce) 130.7 (137.2) -> 130.2 (136.9) MB, 10.78 / 0.01 ms  (+ 88.8 ms in 287 steps since start of marking, biggest step 12.2 ms, walltime since start of marking 123 ms) (average mu = 0.983, current mu = 0.863) finalize incremental marking via task; GC in old space requested
[18032:0x65e9fa0]    53634 ms: Scavenge 131.3 (136.9) -> 130.5 (137.9) MB, 2.14 / 0.00 ms  (average mu = 0.983, current mu = 0.863) allocation failure; 
[18032:0x65e9fa0]    86405 ms: Mark-Compact 134.9 (141.7) -> 130.0 (141.4) MB, 156.44 / 0.00 ms  (average mu = 0.994, current mu = 0.996) testing; GC in old space requested
[18032:0x65e9fa0]   111165 ms: Mark-Compact 151.7 (164.7) -> 119.5 (180.4) MB, 25.39 / 0.01 ms  (+ 37.6 ms in 72 steps since start of marking, biggest step 8.5 ms, walltime since start of marking 218 ms) (average mu = 0.994, current mu = 0.997) finalize incremental marking via stack guard; GC in old space requested
`;

it("tallies memory-reducer, other full and young collections with their main-thread time (pause plus incremental steps)", () => {
  const t = tallyGcTrace(TRACE);
  assert.deepEqual(
    { reducer: t.reducer.count, full: t.full.count, young: t.young.count },
    { reducer: 2, full: 2, young: 2 },
  );
  assert.equal(t.reducer.mainMs.toFixed(2), (54.69 + 111.5 + 10.78 + 88.8).toFixed(2));
  assert.equal(t.full.mainMs.toFixed(2), (156.44 + 25.39 + 37.6).toFixed(2));
  assert.equal(t.young.mainMs.toFixed(2), (6.53 + 2.14).toFixed(2));
  assert.equal(formatGcTally(t), "2 (266 ms) / 2 (219 ms) / 2 (9 ms)");
});

it("counts nothing in a window without collections", () => {
  assert.equal(formatGcTally(tallyGcTrace('{"level":40,"msg":"no collection here"}\n')), "0 (0 ms) / 0 (0 ms) / 0 (0 ms)");
});
