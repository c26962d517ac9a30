// The process's one clock for periodic work (beats, polls, sweeps). An idle gateway wakes only for
// such work, and on this kind of machine (a VM) a wake-up costs 0.2-0.3 ms of CPU whatever it then
// does: each timer of its own was a wake-up of its own. Here a task of period P runs at the
// multiples of P on one monotonic clock, and one timer serves every task, so tasks whose periods
// divide one another (1 s, 2 s, 5 s) fall due together and share a wake-up.
// Any layer may use it (.dependency-cruiser.cjs): it is a timer, no I/O.
import { performance } from "node:perf_hooks";

interface Task {
  readonly periodMs: number;
  readonly run: () => void;
  due: number;
}

/**
 * How long before its due time a task may be found and still run in this wake-up rather than one
 * of its own: Node truncates a timer's delay to whole milliseconds and counts it from the loop's
 * whole millisecond, so a timer fires up to 2 ms before the time it was set for.
 */
const SLACK_MS = 2;

/** The first multiple of `periodMs` after `now`. */
export function nextOnGrid(now: number, periodMs: number): number {
  return (Math.floor(now / periodMs) + 1) * periodMs;
}

/** The one timer a Cadence keeps armed: Node's, unref'd; tests give their own, with their own clock. */
export interface CadenceTimer {
  set(fire: () => void, delayMs: number): unknown;
  clear(handle: unknown): void;
}

const nodeTimer: CadenceTimer = {
  set: (fire, delayMs) => setTimeout(fire, delayMs).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class Cadence {
  private readonly tasks = new Set<Task>();
  private timer: unknown = null;
  private armedFor = Infinity;
  private fired = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly timers: CadenceTimer = nodeTimer,
  ) {}

  /**
   * Runs `run` every `periodMs` (at the multiples of it) until the returned function is called.
   * Like an unref'd setInterval: it keeps no process alive. `run` must not throw (each caller
   * catches its own errors, as with a timer); one that does cannot stop the others.
   */
  every(periodMs: number, run: () => void): () => void {
    if (!(periodMs >= 1)) throw new RangeError(`a period of at least 1 ms, not ${periodMs}`);
    // Not a grid point within the slack from now: a wake-up that came that early (see SLACK_MS)
    // may have served it already, and this task would have a wake-up of its own there.
    const task: Task = { periodMs, run, due: nextOnGrid(this.now() + SLACK_MS, periodMs) };
    this.tasks.add(task);
    this.arm();
    return () => {
      this.tasks.delete(task);
      this.arm();
    };
  }

  /** How many tasks are scheduled (tests). */
  get size(): number {
    return this.tasks.size;
  }

  /** How many times its timer has fired: the wake-ups it cost (tests). */
  get wakeups(): number {
    return this.fired;
  }

  private arm(): void {
    let due = Infinity;
    for (const t of this.tasks) due = Math.min(due, t.due);
    if (due === this.armedFor) return;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.armedFor = due;
    if (due === Infinity) return;
    this.timer = this.timers.set(() => this.fire(), Math.max(0, due - this.now()));
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    this.fired++;
    const now = this.now();
    const due = [...this.tasks].filter((t) => t.due <= now + SLACK_MS);
    // The next due times first, and the timer armed for them, so a task that throws stops nothing.
    for (const t of due) t.due = nextOnGrid(Math.max(now, t.due), t.periodMs);
    this.arm();
    let failure: unknown = null;
    for (const t of due) {
      if (!this.tasks.has(t)) continue; // stopped by a task that ran before it
      try {
        t.run();
      } catch (err) {
        failure ??= err;
      }
    }
    // As a timer's callback would: an uncaught error, after every due task has run.
    if (failure !== null) throw failure;
  }
}

/** The gateway's clock: every periodic task of the process on it shares its wake-ups. */
export const cadence = new Cadence();

/**
 * `p`'s outcome, or `late` once `ms` pass without one (`p` goes on; what it brings later is
 * dropped), a failure being `late` too: for waits on a part that may hang (a PostgreSQL that keeps
 * its connections but answers nothing) where an answer must still come (a probe, a shutdown).
 */
export function atMost<T>(p: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), ms)));
  return Promise.race([p.catch(() => late), timeout]).finally(() => clearTimeout(timer));
}
