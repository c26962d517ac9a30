// A cap on open event streams per account on this instance (MAX_STREAMS_PER_ACCOUNT), so one
// account cannot hold all of an instance's connections.
import { AppError } from "../domain/errors.js";

export class StreamSlots {
  private readonly open = new Map<number, number>();

  constructor(private readonly max: number) {}

  /** Takes a slot or refuses with 429; returns the function that gives it back (idempotent). */
  acquire(accountId: number): () => void {
    const n = this.open.get(accountId) ?? 0;
    if (n >= this.max) throw new AppError("too-many-streams", `at most ${this.max} event streams per account; close one first`, { retryAfter: 5 });
    this.open.set(accountId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(accountId) ?? 1) - 1;
      if (left <= 0) this.open.delete(accountId);
      else this.open.set(accountId, left);
    };
  }
}
