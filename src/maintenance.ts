// The periodic purges (events past EVENT_RETENTION, stale sessions, expired keys and tickets...):
// all of them every interval, on the shared cadence. A run still going (a large table, a short
// MAINTENANCE_INTERVAL) is not started again on top of itself: the same DELETEs would queue up and
// hold the pool's connections (the retention audit).
import { cadence } from "./cadence.js";

/** Runs `jobs` every `intervalMs` (100 ms at least), a run only once the one before it ended; returns its stop. */
export function maintenance(intervalMs: number, jobs: readonly (() => Promise<unknown>)[]): () => void {
  let running = false;
  return cadence.every(Math.max(100, intervalMs), () => {
    if (running) return;
    running = true;
    // A job that fails is tried again at the next run; the others are not held back by it.
    void Promise.allSettled(jobs.map((job) => job())).then(() => (running = false));
  });
}
