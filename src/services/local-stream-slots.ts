// The per-account cap on open event streams, counted on this instance alone: without REDIS_URL,
// behind N instances an account may hold up to N times MAX_STREAMS_PER_ACCOUNT streams (with it,
// src/db/redis-slots.ts counts across instances).
import { tooManyStreams, type StreamCap, type StreamSlot } from "../domain/stream-cap.js";

export class StreamSlots implements StreamCap {
  private readonly open = new Map<number, number>();

  constructor(private readonly max: number) {}

  async acquire(accountId: number): Promise<StreamSlot> {
    const n = this.open.get(accountId) ?? 0;
    if (n >= this.max) throw tooManyStreams(this.max);
    this.open.set(accountId, n + 1);
    let released = false;
    return {
      refresh: () => undefined,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.open.get(accountId) ?? 1) - 1;
        if (left <= 0) this.open.delete(accountId);
        else this.open.set(accountId, left);
      },
    };
  }
}
