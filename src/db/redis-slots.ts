// Stream caps counted across instances in Redis (REDIS_URL): one sorted set per account whose
// members are open streams scored by their expiry. A stream refreshes its member at every
// heartbeat, so the streams of an instance that died expire by themselves instead of holding the
// account's places for ever. That takes a few heartbeats (45 s by default), and a client whose
// instance died reconnects at once: so each member also names its instance, which keeps a short
// liveness key (LIVE_MS) while it runs, and a full account's members whose instance has no such key
// are dropped before the count. If Redis does not answer, the stream is let through (the cap
// protects the service; it must not take it down) and the failure is logged. A standalone Redis:
// the script reads the liveness keys by name, which Redis Cluster would refuse.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { tooManyStreams, type StreamCap, type StreamSlot } from "../domain/stream-cap.js";

/**
 * An instance's liveness key lives this long without a refresh; it is refreshed 3 times as often,
 * so an instance stalls for over 6 s before others take it for dead (as the link lease's default
 * timeout, 10 s, allows for). A live instance whose places were taken for dead puts them back at
 * its streams' next heartbeats.
 */
export const LIVE_MS = 10_000;
const liveKey = (instance: string) => `balcony:live:${instance}`;

// Drop expired members; when full, drop the members of instances that are gone (no liveness key);
// then count, and add this one if under the cap: atomically. Members are "<instance>/<stream>".
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local instance = string.match(m, '^([^/]+)/')
    if instance and redis.call('EXISTS', 'balcony:live:' .. instance) == 0 then redis.call('ZREM', KEYS[1], m) end
  end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export class RedisStreamSlots implements StreamCap {
  /** This instance, in its members and its liveness key. */
  readonly instance = randomUUID();
  private readonly alive: NodeJS.Timeout;
  private readonly live: () => void;

  constructor(
    private readonly redis: Redis,
    private readonly max: number,
    /** How long a slot lives without a refresh (a few heartbeats). */
    private readonly ttlMs: number,
    private readonly warn: (o: object, m: string) => void,
  ) {
    const live = (this.live = () => void this.redis.set(liveKey(this.instance), "1", "PX", LIVE_MS).catch(() => undefined));
    live();
    // Commands fail while Redis is not connected (no offline queue, src/gateway.ts): the key is set
    // again as soon as it is, or this instance's places would look dead to the others until the next beat.
    this.redis.on("ready", live);
    this.alive = setInterval(live, LIVE_MS / 3);
    this.alive.unref();
  }

  /** Shutting down: the liveness key goes; the streams release their own places as they close. */
  async close(): Promise<void> {
    clearInterval(this.alive);
    this.redis.off("ready", this.live);
    await this.redis.del(liveKey(this.instance)).catch(() => undefined);
  }

  async acquire(accountId: number): Promise<StreamSlot> {
    const key = `balcony:streams:${accountId}`;
    const member = `${this.instance}/${randomUUID()}`;
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
        // Not XX: a place dropped while this instance looked dead (a stall) is taken again.
        if (!released) void this.redis.zadd(key, Date.now() + this.ttlMs, member).catch(() => undefined);
      },
      release: () => {
        if (released) return;
        released = true;
        void this.redis.zrem(key, member).catch(() => undefined);
      },
    };
  }
}
