// Stream caps counted across instances in Redis (REDIS_URL): one sorted set per account whose
// members are open streams scored by their expiry. A stream refreshes its member at every
// heartbeat, so the streams of an instance that died expire by themselves instead of holding the
// account's places for ever. If Redis does not answer, the stream is let through (the cap
// protects the service; it must not take it down) and the failure is logged.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { tooManyStreams, type StreamCap, type StreamSlot } from "../domain/stream-cap.js";

// Drop expired members, count, and add this one if under the cap: atomically.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export class RedisStreamSlots implements StreamCap {
  constructor(
    private readonly redis: Redis,
    private readonly max: number,
    /** How long a slot lives without a refresh (a few heartbeats). */
    private readonly ttlMs: number,
    private readonly warn: (o: object, m: string) => void,
  ) {}

  async acquire(accountId: number): Promise<StreamSlot> {
    const key = `balcony:streams:${accountId}`;
    const member = randomUUID();
    const now = Date.now();
    try {
      const ok = await this.redis.eval(ACQUIRE, 1, key, now, now + this.ttlMs, this.max, member, this.ttlMs);
      if (ok !== 1) throw tooManyStreams(this.max);
    } catch (err) {
      if (err instanceof Error && err.name === "AppError") throw err;
      this.warn({ err: String(err) }, "Redis unreachable: stream cap not enforced for this stream");
    }
    let released = false;
    return {
      refresh: () => {
        if (!released) void this.redis.zadd(key, "XX", Date.now() + this.ttlMs, member).catch(() => undefined);
      },
      release: () => {
        if (released) return;
        released = true;
        void this.redis.zrem(key, member).catch(() => undefined);
      },
    };
  }
}
