// src/maintenance.ts: the periodic purges run every interval, but a run still going is not started
// again on top of itself (found by the retention audit of stop 64: six DELETEs a period, each run
// whatever the one before was doing).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { maintenance } from "../src/maintenance.js";

describe("maintenance", () => {
  it("runs every job each interval, a run only once the one before it ended, and goes on after a job fails", async () => {
    let running = 0;
    let most = 0;
    const starts: number[] = [];
    let failed = 0;
    const slow = async () => {
      starts.push(performance.now());
      most = Math.max(most, ++running);
      await sleep(350); // over three intervals
      running--;
    };
    const failing = async () => {
      failed++;
      throw new Error("a purge that fails");
    };
    const stop = maintenance(100, [slow, failing]);
    await sleep(1300);
    stop();
    await sleep(400);
    assert.equal(most, 1, "never two runs at once");
    assert.ok(starts.length >= 2 && starts.length <= 4, `runs: ${starts.length}`);
    assert.ok(starts.slice(1).every((t, i) => t - starts[i]! >= 340), `each run after the one before ended: ${starts.map((t) => Math.round(t - starts[0]!)).join(", ")} ms`);
    assert.equal(failed, starts.length, "the failing job ran in every run");
  });
});
