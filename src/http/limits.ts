// Protective limits: request rates per client IP (before authentication, so token guessing is
// throttled too) and per account (after it), with 429 + Retry-After (the cap on open event
// streams is src/domain/stream-cap.ts). Counted in Redis across instances when REDIS_URL is set;
// otherwise per instance (in memory): behind N instances an account gets up to N times the rate.
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { AppError } from "../domain/errors.js";
import { isApiRequest } from "./context.js";

type Limiter = ReturnType<FastifyInstance["createRateLimit"]>;

/** A hook that counts the request under `key` and refuses it with 429 once over the limit. */
function limitHook(check: Limiter, what: string) {
  return async (req: FastifyRequest) => {
    const r = await check(req);
    if (r.isAllowed || !r.isExceeded) return;
    const retryAfter = Math.max(1, r.ttlInSeconds);
    throw new AppError("rate-limited", `more than ${r.max} requests ${what}; retry after ${retryAfter} s`, { retryAfter });
  };
}

/** Registers the per-IP limit; call `accountRateLimit` after the auth hook for the other. */
export async function registerRateLimits(app: FastifyInstance, limits: Config["rateLimit"], redis: Redis | null): Promise<void> {
  // With Redis, every instance counts in the same place; if Redis fails, requests are let through.
  await app.register(rateLimit, { global: false, ...(redis ? { redis, skipOnError: true, nameSpace: "balcony:rate:" } : {}) });
  if (limits.perIp > 0) {
    const check = app.createRateLimit({ max: limits.perIp, timeWindow: limits.windowMs, keyGenerator: (req) => `ip:${req.ip}`, allowList: (req) => !isApiRequest(req) });
    app.addHook("onRequest", limitHook(check, "from this address"));
  }
}

export function accountRateLimit(app: FastifyInstance, limits: Config["rateLimit"]): void {
  if (limits.perAccount <= 0) return;
  const check = app.createRateLimit({
    max: limits.perAccount,
    timeWindow: limits.windowMs,
    keyGenerator: (req) => `account:${req.principal?.localpart ?? ""}`,
    allowList: (req) => !req.principal,
  });
  app.addHook("onRequest", limitHook(check, "for this account"));
}
