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
 * stops the start on a value outside them. Least: what keeps the gateway from spinning (a reconnect, heartbeat or purge loop)
 * or failing every time (a webhook timeout of 0). Greatest: what the value ends up in still takes
 * it (a Node timer at most TIMER_MAX_MS, idle_in_transaction_session_timeout an int of ms, the
 * int4 delay of a webhook retry), and API.md's heartbeat "at least every 15 s".
 */
export const DURATION_SETTINGS = {
  XMPP_RECONNECT_MAX: ["5s", "250ms", "5m"], // the backoff's first step is 250 ms
  XMPP_LINK_DOWN_GRACE: ["10s", "1s", "1h"], // the holder looks every second
  XMPP_LINK_LEASE_TIMEOUT: ["10s", "2s", "1h"], // instances prove they are alive every second
  ROOM_SELF_PING: ["15m", "1s", "24d"], // and 0: never
  EVENT_RETENTION: ["7d", "100ms", "3650d"],
  MAINTENANCE_INTERVAL: ["10m", "100ms", "1d"],
  SSE_HEARTBEAT: ["15s", "100ms", "15s"],
  SSE_RETRY: ["2s", "100ms", "10m"],
  RATE_LIMIT_WINDOW: ["10s", "100ms", "1d"],
  WEBHOOK_TIMEOUT: ["10s", "100ms", "10m"],
  WEBHOOK_DISABLE_AFTER: ["5d", "100ms", "3650d"],
} as const satisfies Record<string, readonly [string, string, string]>;

/** Each delay of WEBHOOK_RETRY_SCHEDULE (lengthened by up to 20%, an int4 of ms, and a timer's). */
export const RETRY_DELAY_BOUNDS = ["0ms", "7d"] as const;
