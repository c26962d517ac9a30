// Whether Redis (REDIS_URL) answers, for /readyz: a PING on the connection the limits use. Never
// waits long: without a connection (no offline queue, src/gateway.ts) it is "down" at once, and a
// Redis that takes over PROBE_MS to answer a PING is "down" too (a stopped or hung server).
import type { Redis } from "ioredis";

export const PROBE_MS = 200;

export function redisProbe(redis: Redis, timeoutMs = PROBE_MS): () => Promise<"up" | "down"> {
  return async () => {
    if (redis.status !== "ready") return "down";
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"down">((resolve) => (timer = setTimeout(() => resolve("down"), timeoutMs)));
    const pong = redis.ping().then(
      (r): "up" | "down" => (r === "PONG" ? "up" : "down"),
      (): "down" => "down",
    );
    try {
      return await Promise.race([pong, late]);
    } finally {
      clearTimeout(timer);
    }
  };
}
