// The cap on open event streams per account (MAX_STREAMS_PER_ACCOUNT), so one account cannot hold
// all the connections: counted on one instance (src/services/stream-slots.ts) or across instances
// in Redis (src/db/redis-slots.ts).
import { AppError } from "./errors.js";

/** One open stream's place under the cap. */
export interface StreamSlot {
  /** The stream is still there (heartbeat): keeps a shared place from expiring. */
  refresh(): void;
  /** Gives the place back (idempotent). */
  release(): void;
}

export interface StreamCap {
  /** Takes a place for a new stream of the account, or refuses with 429 too-many-streams. */
  acquire(accountId: number): Promise<StreamSlot>;
}

export const tooManyStreams = (max: number) => new AppError("too-many-streams", `at most ${max} event streams per account; close one first`, { retryAfter: 5 });
