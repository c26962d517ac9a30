import { createPublicKey } from "node:crypto";
import { DURATION_SETTINGS, durationMs, RETRY_DELAY_BOUNDS } from "./domain/duration.js";
import { DEFAULT_RETRY_SCHEDULE_MS } from "./domain/webhooks.js";
import { databaseUrlProblem, hostProblem, redisUrlProblem } from "./domain/endpoints.js";
import { parseAllowList, type AllowList } from "./domain/webhook-target.js";
import { parseTrustProxy, type TrustProxy } from "./domain/trusted-proxies.js";

// The only module that reads process.env. Every setting is validated at start-up and a bad one stops the process with a message naming the variable.

export interface Config {
  host: string;
  port: number;
  /** Absent: the service starts an embedded PostgreSQL with its data under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** DATA_DIR unset or the default written out, as .env.example has it (the default may then move, see src/db/embedded.ts; the ops audit of stop 65). */
  dataDirIsDefault: boolean;
  /** Port of the embedded PostgreSQL (used only without DATABASE_URL). */
  embeddedPgPort: number;
  dbPoolMax: number;
  xmpp: {
    service: string;
    domain: string;
    secret: string;
    /** Cap of the exponential reconnect backoff, in milliseconds. */
    reconnectMaxMs: number;
    /** Largest stanza Balcony writes: the server closes a component stream over its own limit. */
    maxStanzaBytes: number;
    /**
     * single: one instance holds the component link at a time (Prosody accepts one connection per
     * component domain), elected through Postgres; all: every instance holds one (ejabberd).
     */
    linkMode: "single" | "all";
    /** How long a link holder keeps the lease while its link is down before letting another instance try. */
    linkDownGraceMs: number;
    /**
     * How long an instance may go without a sign of life (given at least four times within it) before the others treat
     * it as hung: a link holder before a standby replaces it; a notification listener before another instance ends it
     * (src/db/notify.ts); with XMPP_LINK_MODE=all, a drain step beyond the confirmation wait (src/db/outbox.ts).
     */
    linkLeaseTimeoutMs: number;
  };
  jwt: {
    secret: string | undefined;
    publicKey: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
  };
  autoProvision: boolean;
  deletionRevokesTokens: boolean; // a token issued before its localpart's latest deletion is refused
  /** Serve the demo web page at /demo (static files; it needs a token like any client). */
  demoPage: boolean;
  sessionGraceSeconds: number;
  /** How long a joined room is quiet before it is asked whether the account is still in it (XEP-0410 self-ping); 0: never. */
  roomSelfPingMs: number;
  eventRetentionMs: number;
  /** How often expired events and idempotency keys are purged. */
  maintenanceIntervalMs: number;
  sseHeartbeatMs: number;
  sseRetryMs: number;
  bodyLimitBytes: number;
  /** Largest body of POST /v1/messages/batch (up to 1,000 messages). */
  batchBodyLimitBytes: number;
  /** Requests per window per client IP (before auth) and per account (after); 0 turns one off. */
  rateLimit: { windowMs: number; perIp: number; perAccount: number };
  /** Proxies whose X-Forwarded-For names the client (src/domain/trusted-proxies.ts). */
  trustProxy: TrustProxy;
  /** Open event streams per account: on one instance, or across instances with REDIS_URL. */
  maxStreamsPerAccount: number;
  maxTextChars: number;
  /** Redis for rate limits and stream caps counted across instances; absent: per instance. */
  redisUrl: string | undefined;
  logLevel: LogLevel;
  /** LOG_FORMAT: json (default, for collectors) or pretty (for a person at a terminal). */
  logFormat: "json" | "pretty";
  logRequests: boolean;
  shutdownDrainMs: number;
  webhooks: {
    /** Delays between attempts of one event (WEBHOOK_RETRY_SCHEDULE); after the last, it is failed. */
    retryScheduleMs: number[];
    /** Private, loopback... targets allowed anyway (WEBHOOK_ALLOW_PRIVATE). */
    allowPrivate: AllowList;
    /** An attempt without a 2xx status within this is a failure (WEBHOOK_TIMEOUT, 10 s); a body still coming then is cut. */
    timeoutMs: number;
    /** An endpoint failing (no success) for this long is disabled (WEBHOOK_DISABLE_AFTER, 5 days). */
    disableAfterMs: number;
    /** Requests in flight to all endpoints from one instance (WEBHOOK_CONCURRENCY); each endpoint has one. */
    concurrency: number;
  };
}

/** pino's levels: anything else would make pino throw at start-up instead of a configuration error. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Record<string, string | undefined>;

/**
 * The one algorithm JWT_PUBLIC_KEY verifies, by its key: RS256 for RSA, ES256 for EC. ES256 is
 * ECDSA on P-256 (RFC 7518 §3.4): a key on another curve (P-384, P-521) would be taken and then
 * verify no token ever, so it stops the start like any other bad value, as does a non-key.
 */
export function publicKeyAlgorithm(pem: string): "RS256" | "ES256" {
  let key;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError("JWT_PUBLIC_KEY", `is not a PEM public key (${(err as Error).message})`);
  }
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "RS256";
  if (type !== "ec") throw new ConfigError("JWT_PUBLIC_KEY", `unsupported key type ${type ?? "unknown"}: use an RSA key (RS256) or an EC key on P-256 (ES256)`);
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== "prime256v1") throw new ConfigError("JWT_PUBLIC_KEY", `an EC key must be on P-256 (prime256v1) for ES256, got ${curve ?? "an unnamed curve"}`);
  return "ES256";
}

function str(env: Env, name: string, fallback?: string): string {
  const v = env[name];
  if (v === undefined || v === "") {
    if (fallback === undefined) throw new ConfigError(name, "is required");
    return fallback;
  }
  return v;
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = str(env, name, fallback);
  if (!(values as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${values.join(", ")}, got "${raw}"`);
  return raw as T;
}

/** Durations: a number of seconds, or a number with a unit (ms, s, m, h, d), e.g. "7d". */
export function parseDuration(name: string, raw: string): number {
  const ms = durationMs(raw);
  if (ms === null) throw new ConfigError(name, `must be a duration such as 3600, 90s, 15m, 12h or 7d, got "${raw}"`);
  return ms;
}

function within(name: string, raw: string, ms: number, [least, greatest]: readonly [string, string], extra = ""): number {
  if (ms < durationMs(least)! || ms > durationMs(greatest)!) throw new ConfigError(name, `must be between ${least} and ${greatest}${extra}, got "${raw.trim()}"`);
  return ms;
}

function duration(env: Env, name: keyof typeof DURATION_SETTINGS, zeroIsOff = false): number {
  const [fallback, least, greatest] = DURATION_SETTINGS[name];
  const raw = str(env, name, fallback);
  const ms = parseDuration(name, raw);
  return zeroIsOff && ms === 0 ? 0 : within(name, raw, ms, [least, greatest], zeroIsOff ? " (or 0: never)" : "");
}

function retrySchedule(env: Env): number[] {
  const raw = optional(env, "WEBHOOK_RETRY_SCHEDULE");
  if (raw === undefined) return DEFAULT_RETRY_SCHEDULE_MS;
  const delays = raw.split(",").map((d) => within("WEBHOOK_RETRY_SCHEDULE", d, parseDuration("WEBHOOK_RETRY_SCHEDULE", d), RETRY_DELAY_BOUNDS, " each"));
  if (delays.length > 20) throw new ConfigError("WEBHOOK_RETRY_SCHEDULE", "has more than 20 retries");
  return delays;
}

function allowList(env: Env): AllowList {
  try {
    return parseAllowList(optional(env, "WEBHOOK_ALLOW_PRIVATE"));
  } catch (err) {
    throw new ConfigError("WEBHOOK_ALLOW_PRIVATE", `${(err as Error).message} (expected true, or comma-separated addresses and CIDRs)`);
  }
}

function trustProxy(env: Env): TrustProxy {
  try {
    return parseTrustProxy(optional(env, "TRUST_PROXY"));
  } catch (err) {
    throw new ConfigError("TRUST_PROXY", `${(err as Error).message} (expected true, or comma-separated addresses, CIDRs, loopback, linklocal, uniquelocal)`);
  }
}

function service(env: Env): string {
  const v = str(env, "XMPP_SERVICE", "xmpp://127.0.0.1:5347");
  const m = /^xmpp:\/\/[^/:]+(?::(\d+))?$/.exec(v);
  if (!m) throw new ConfigError("XMPP_SERVICE", `must look like xmpp://host:port, got "${v}"`);
  if (m[1] !== undefined && !(Number(m[1]) >= 1 && Number(m[1]) <= 65535)) throw new ConfigError("XMPP_SERVICE", `the port must be between 1 and 65535, got "${v}"`);
  return v;
}

/** An optional setting, checked by `problem` (src/domain/endpoints.ts): what it returns is the ConfigError's message. */
function checked(env: Env, name: string, problem: (v: string) => string | null): string | undefined {
  const v = optional(env, name);
  const wrong = v === undefined ? null : problem(v);
  if (wrong !== null) throw new ConfigError(name, wrong);
  return v;
}

function domain(env: Env): string {
  const v = str(env, "XMPP_DOMAIN", "gw.localhost").toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(v)) {
    throw new ConfigError("XMPP_DOMAIN", `must be a DNS domain name, got "${v}"`);
  }
  return v;
}

/**
 * `fallback`: values for variables the environment leaves unset, for tools that never use them
 * (e.g. `balcony token` needs no XMPP_SECRET); the environment still wins.
 */
export function loadConfig(env: Env = process.env, fallback: Env = {}): Config {
  for (const [name, value] of Object.entries(fallback)) if (env[name] === undefined || env[name] === "") env = { ...env, [name]: value };
  const jwt = {
    secret: optional(env, "JWT_SECRET"),
    publicKey: optional(env, "JWT_PUBLIC_KEY")?.replace(/\\n/g, "\n"),
    issuer: optional(env, "JWT_ISSUER"),
    audience: optional(env, "JWT_AUDIENCE"),
  };
  if (!jwt.secret && !jwt.publicKey) throw new ConfigError("JWT_SECRET", "JWT_SECRET or JWT_PUBLIC_KEY is required");
  if (jwt.secret && Buffer.byteLength(jwt.secret) < 32) throw new ConfigError("JWT_SECRET", "must be at least 32 bytes");
  if (jwt.publicKey) publicKeyAlgorithm(jwt.publicKey);
  return {
    host: checked(env, "HOST", hostProblem) ?? "127.0.0.1",
    port: int(env, "PORT", 8080, 0, 65535),
    databaseUrl: checked(env, "DATABASE_URL", databaseUrlProblem),
    dataDir: str(env, "DATA_DIR", "./data"),
    dataDirIsDefault: !env.DATA_DIR || ["data", "./data"].includes(env.DATA_DIR.replace(/\/+$/, "")),
    embeddedPgPort: int(env, "EMBEDDED_PG_PORT", 54329, 1, 65535),
    dbPoolMax: int(env, "DB_POOL_MAX", 10, 1, 200),
    xmpp: {
      service: service(env),
      domain: domain(env),
      secret: str(env, "XMPP_SECRET"),
      // An XMPP server restart takes seconds: a longer cap only leaves the link down after it is back.
      reconnectMaxMs: duration(env, "XMPP_RECONNECT_MAX"),
      // Prosody's default component_stanza_size_limit is 512 KiB; stay well below it.
      maxStanzaBytes: int(env, "MAX_STANZA_BYTES", 256 * 1024, 4096, 64 * 1024 * 1024),
      linkMode: oneOf(env, "XMPP_LINK_MODE", ["single", "all"] as const, "single"),
      linkDownGraceMs: duration(env, "XMPP_LINK_DOWN_GRACE"),
      linkLeaseTimeoutMs: duration(env, "XMPP_LINK_LEASE_TIMEOUT"),
    },
    jwt,
    autoProvision: bool(env, "AUTO_PROVISION", false),
    deletionRevokesTokens: bool(env, "DELETION_REVOKES_TOKENS", false),
    demoPage: bool(env, "DEMO_PAGE", true),
    sessionGraceSeconds: int(env, "SESSION_GRACE_SECONDS", 60, 0, 86_400),
    // XEP-0410 §3.2 suggests self-pinging a room after 15 minutes of silence; 0 turns it off.
    roomSelfPingMs: duration(env, "ROOM_SELF_PING", true),
    eventRetentionMs: duration(env, "EVENT_RETENTION"),
    maintenanceIntervalMs: duration(env, "MAINTENANCE_INTERVAL"),
    sseHeartbeatMs: duration(env, "SSE_HEARTBEAT"),
    sseRetryMs: duration(env, "SSE_RETRY"),
    bodyLimitBytes: int(env, "BODY_LIMIT_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    batchBodyLimitBytes: int(env, "BATCH_BODY_LIMIT_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    rateLimit: {
      windowMs: duration(env, "RATE_LIMIT_WINDOW"),
      perIp: int(env, "RATE_LIMIT_PER_IP", 20_000, 0, 100_000_000),
      perAccount: int(env, "RATE_LIMIT_PER_ACCOUNT", 5_000, 0, 100_000_000),
    },
    trustProxy: trustProxy(env),
    maxStreamsPerAccount: int(env, "MAX_STREAMS_PER_ACCOUNT", 20, 1, 10_000),
    maxTextChars: int(env, "MESSAGE_MAX_CHARS", 64 * 1024, 1, 10 * 1024 * 1024),
    redisUrl: checked(env, "REDIS_URL", redisUrlProblem),
    logLevel: oneOf(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: oneOf(env, "LOG_FORMAT", ["json", "pretty"] as const, "json"),
    logRequests: bool(env, "LOG_REQUESTS", false),
    shutdownDrainMs: duration(env, "SHUTDOWN_DRAIN"), // after SIGTERM, connections already open are served this long at most (src/http/drain.ts)
    webhooks: {
      retryScheduleMs: retrySchedule(env),
      allowPrivate: allowList(env),
      timeoutMs: duration(env, "WEBHOOK_TIMEOUT"),
      disableAfterMs: duration(env, "WEBHOOK_DISABLE_AFTER"),
      concurrency: int(env, "WEBHOOK_CONCURRENCY", 32, 1, 1000),
    },
  };
}
