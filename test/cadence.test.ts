// The process's clock for periodic work (src/cadence.ts): tasks whose periods divide one another
// share wake-ups, whenever they were started.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { atMost, Cadence, nextOnGrid, type CadenceTimer } from "../src/cadence.js";
import { livenessBeatMs } from "../src/domain/duration.js";

/** A timer on the test's own clock: it fires only when the test moves the clock (runUntil). */
class FakeTimer implements CadenceTimer {
  now = 0;
  private pending: { fire: () => void; at: number } | null = null;

  set(fire: () => void, delayMs: number): unknown {
    return (this.pending = { fire, at: this.now + delayMs });
  }

  clear(handle: unknown): void {
    if (handle === this.pending) this.pending = null;
  }

  /** Moves the clock to `t`, firing the timer on the way, each time `earlyMs` before its time. */
  runUntil(t: number, earlyMs = 0): void {
    for (let p = this.pending; p && p.at - earlyMs <= t; p = this.pending) {
      this.now = Math.max(this.now, p.at - earlyMs);
      this.pending = null;
      p.fire();
    }
    this.now = t;
  }
}

describe("cadence", () => {
  it("runs tasks of periods that divide one another in the wake-ups of the shortest, started at different times", async () => {
    const clock = new Cadence();
    const runs = { p10: 0, p20: 0, p40: 0 };
    const stops = [clock.every(10, () => runs.p10++)];
    await sleep(7);
    stops.push(clock.every(20, () => runs.p20++));
    await sleep(13);
    stops.push(clock.every(40, () => runs.p40++));
    await sleep(400);
    stops.forEach((stop) => stop());
    assert.ok(runs.p40 >= 3 && runs.p20 > runs.p40 && runs.p10 > runs.p20, JSON.stringify(runs));
    // Every run of the longer periods fell in a wake-up of the 10 ms task: none had its own.
    assert.equal(clock.wakeups, runs.p10, JSON.stringify({ ...runs, wakeups: clock.wakeups }));
    assert.equal(clock.size, 0);
  });

  it("gives a task started just after an early wake-up the next shared one, not one of its own", () => {
    // A timer fires up to 2 ms before its time (Node truncates its delay and counts from the
    // loop's whole millisecond), and that wake-up runs what falls due within that slack. A task
    // started in the slack after it must not be given the grid point it has just served. The
    // clock and its timer are the test's here, so the early wake-up is certain.
    const timer = new FakeTimer();
    const clock = new Cadence(() => timer.now, timer);
    const runs = { p10: 0, p20: 0 };
    timer.now = 95;
    const stops = [clock.every(10, () => runs.p10++)]; // due at 100
    timer.runUntil(98.5, 1.5); // ... whose wake-up comes 1.5 ms early
    assert.deepEqual({ ...runs, wakeups: clock.wakeups }, { p10: 1, p20: 0, wakeups: 1 });
    timer.runUntil(99.5);
    stops.push(clock.every(20, () => runs.p20++)); // 100 was served: due at 120, with the 10 ms task
    timer.runUntil(125);
    stops.forEach((stop) => stop());
    assert.deepEqual({ ...runs, wakeups: clock.wakeups }, { p10: 3, p20: 1, wakeups: 3 });
  });

  it("stops a task, and the others run on", async () => {
    const clock = new Cadence();
    let a = 0;
    let b = 0;
    const stopA = clock.every(5, () => a++);
    const stopB = clock.every(5, () => b++);
    await sleep(40);
    stopA();
    const [aThen, bThen] = [a, b];
    await sleep(40);
    stopB();
    assert.ok(aThen > 0, "ran before the stop");
    assert.equal(a, aThen, "no run after the stop");
    assert.ok(b > bThen, "the other went on");
  });

  it("puts a due time on the next multiple of the period", () => {
    assert.equal(nextOnGrid(0, 1000), 1000);
    assert.equal(nextOnGrid(999.5, 1000), 1000);
    assert.equal(nextOnGrid(1000, 1000), 2000);
    assert.equal(nextOnGrid(4321, 2000), 6000);
    assert.throws(() => new Cadence().every(0, () => undefined), RangeError);
  });

  it("beats at least four times within the lease timeout, in whole seconds from 4 s", () => {
    assert.equal(livenessBeatMs(10_000), 2000);
    assert.equal(livenessBeatMs(4000), 1000);
    assert.equal(livenessBeatMs(7000), 1000);
    assert.equal(livenessBeatMs(3000), 750);
    assert.equal(livenessBeatMs(2000), 500);
    assert.equal(livenessBeatMs(3_600_000), 900_000);
  });
});

describe("atMost", () => {
  it("an answer in time, a failure or no answer within the time (then the fallback)", async () => {
    assert.equal(await atMost(sleep(5).then(() => "answer"), 1000, "late"), "answer");
    assert.equal(await atMost(Promise.reject(new Error("down")), 1000, "late"), "late");
    const t = performance.now();
    assert.equal(await atMost(new Promise<string>(() => undefined), 50, "late"), "late");
    const took = performance.now() - t;
    assert.ok(took >= 45 && took < 1000, `${took} ms`);
  });
});
