// bench/lib/loop-stalls.ts: loop-probe records (event-loop gaps, collections) set against a run's
// slowest messages, on made-up records whose answers are known.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { summarizeStalls } from "../../bench/lib/loop-stalls.js";

describe("summarizeStalls", () => {
  const records = [
    "start 900.00",
    "gap 990.00 8.00 1.00", // before the span: not counted
    "gap 1010.00 6.00 3.00", // over the first slow message
    "gap 1500.00 10.00 9.00", // over nothing slow
    "gap 1695.00 10.00 2.00", // began before the third slow message was written, ended after
    "gc 1103.00 2.50 1", // over the second slow message
    "gc 1300.00 1.50 1",
    "gc 2500.00 4.00 1", // after the span
    "",
  ].join("\n");
  const windows = {
    span: [1000, 2000] as [number, number],
    // write → arrival of the messages at or over p99
    slow: [
      [1005, 1012],
      [1100, 1104],
      [1700, 1712],
    ] as [number, number][],
  };

  it("counts the gaps and collections inside the run's span, and the slow messages each was in flight during", () => {
    const s = summarizeStalls(records, windows);
    assert.deepEqual(
      { loaded: s.loaded, gaps: s.gaps, gapMsMax: s.gapMsMax, gcs: s.gcs, gcMs: s.gcMs, slow: s.slow, slowDuringGap: s.slowDuringGap, slowDuringGc: s.slowDuringGc },
      { loaded: true, gaps: 3, gapMsMax: 10, gcs: 2, gcMs: 4, slow: 3, slowDuringGap: 2, slowDuringGc: 1 },
    );
    // 3 + 9 + 2 ms of CPU in 6 + 10 + 10 ms of gaps.
    assert.equal(s.gapOnCpu, 14 / 26);
  });

  it("says when the probe never wrote (not loaded), and reads no gap as none", () => {
    const s = summarizeStalls("", windows);
    assert.equal(s.loaded, false);
    assert.equal(s.gaps, 0);
    assert.ok(Number.isNaN(s.gapOnCpu));
    assert.equal(s.slowDuringGap, 0);
  });
});
