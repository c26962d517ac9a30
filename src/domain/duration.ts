// Durations as settings and options spell them: a number of seconds, or a number with a unit.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The longest delay a Node.js timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires after
 * 1 ms instead, with a TimeoutOverflowWarning. Every setting that ends up in a timer stays below it.
 */
export const TIMER_MAX_MS = 2 ** 31 - 1;

/** Milliseconds of "3600" (seconds), "500ms", "90s", "15m", "12h" or "7d"; null when it is none of these. */
export function durationMs(raw: string): number | null {
  const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] ?? "s"]! : null;
}

/**
 * Each duration setting's [default, least, greatest] (README "Configuration"): src/config.ts
 * stops the start on a value outside them. Least: above 0 where 0 makes the gateway spin (a
 * reconnect or heartbeat loop) or fail every time (a webhook timeout); short test settings pass.
 * Greatest: what the value ends up in still takes it (a Node timer at most TIMER_MAX_MS,
 * idle_in_transaction_session_timeout an int of ms, the int4 delay of a webhook retry).
 */
export const DURATION_SETTINGS = {
  XMPP_RECONNECT_MAX: ["5s", "10ms", "5m"], // 0: a reconnect loop with no pause
  XMPP_LINK_DOWN_GRACE: ["10s", "0ms", "1h"],
  XMPP_LINK_LEASE_TIMEOUT: ["10s", "2s", "1h"], // instances prove they are alive every livenessBeatMs(it)
  ROOM_SELF_PING: ["15m", "1ms", "24d"], // and 0: never
  EVENT_RETENTION: ["7d", "1ms", "3650d"],
  MAINTENANCE_INTERVAL: ["10m", "1ms", "1d"], // src/gateway.ts runs it at most every 100 ms
  SSE_HEARTBEAT: ["15s", "1ms", "24d"], // API.md promises one at least every 15 s: above that is the operator's choice
  SSE_RETRY: ["2s", "0ms", "1d"],
  RATE_LIMIT_WINDOW: ["10s", "1ms", "1d"],
  WEBHOOK_TIMEOUT: ["10s", "1ms", "10m"], // 0: every attempt fails at once
  WEBHOOK_DISABLE_AFTER: ["5d", "1ms", "3650d"],
  SHUTDOWN_DRAIN: ["5s", "0ms", "10m"], // 0: no drain; src/serve.ts forces the exit 10 s after it
} as const satisfies Record<string, readonly [string, string, string]>;

/**
 * How often an instance proves it is alive (the link lease's beat, the listener's) against a
 * timeout of `timeoutMs` (XMPP_LINK_LEASE_TIMEOUT): at least four times within it, in whole seconds
 * from a timeout of 4 s up (2 s at the default 10 s), so the beats share their wake-ups with the
 * other periodic work (src/cadence.ts); every second, as they were, cost an idle gateway two
 * statements a second. A beat delayed by a stall of the event loop of up to the timeout less one
 * period still comes in time.
 */
export function livenessBeatMs(timeoutMs: number): number {
  const quarter = timeoutMs / 4;
  return quarter >= 1000 ? Math.floor(quarter / 1000) * 1000 : Math.max(1, Math.floor(quarter));
}

/** Each delay of WEBHOOK_RETRY_SCHEDULE (lengthened by up to 20%, an int4 of ms, and a timer's). */
export const RETRY_DELAY_BOUNDS = ["0ms", "7d"] as const;
