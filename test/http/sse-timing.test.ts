// The heartbeat timer's period (src/http/sse.ts): timers fire late, never early, so a round of
// slices must end before the interval it promises ("at least every 15 s", API.md).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tickMs } from "../../src/http/sse.js";

const SLICES = 16;

describe("tickMs", () => {
  it("ends a round of slices at least 500 ms (or a tenth) before the interval, and not much earlier", () => {
    for (const [interval, margin] of [
      [15_000, 500],
      [30_000, 500],
      [1_000, 100],
      [300, 30],
    ] as const) {
      const round = SLICES * tickMs(interval);
      assert.ok(round <= interval - margin, `${interval} ms: a round takes ${round} ms`);
      assert.ok(round > interval - margin - SLICES, `${interval} ms: a round takes ${round} ms, needlessly short`);
    }
  });

  it("never asks for a period under 1 ms", () => {
    assert.equal(tickMs(1), 1);
  });
});
