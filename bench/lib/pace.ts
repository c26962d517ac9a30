// An open-loop schedule for benchmarks that build each request or stanza at the moment it goes out
// (e.g. to carry its own send time): event i fires at t0 + i/rate whatever became of the earlier
// ones, so a stalled system under test cannot slow the arrivals down and hide its queue.
import { now, sleep } from "./util.js";

/**
 * Calls fire(i, start) for i in [0, n) at t0 + i × 1000/rate (start: when it actually fires);
 * fire must not block. Sleeps between events (no busy wait: the load generator shares the cores
 * with what it measures), so an event may fire ~1 ms late; returns the worst lateness (ms).
 */
export async function openLoop(n: number, rate: number, fire: (i: number, start: number) => void, aborted: () => boolean): Promise<number> {
  const interval = 1000 / rate;
  const t0 = now() + 5;
  let maxLag = 0;
  let i = 0;
  while (i < n && !aborted()) {
    for (let t = now(); i < n && t0 + i * interval <= t; i++, t = now()) {
      maxLag = Math.max(maxLag, t - (t0 + i * interval));
      fire(i, t);
    }
    if (i < n) await sleep(Math.max(0, t0 + i * interval - now()));
  }
  return maxLag;
}
