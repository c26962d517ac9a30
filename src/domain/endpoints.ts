// Where the gateway connects and listens: the checks of DATABASE_URL, REDIS_URL and HOST
// (src/config.ts makes what they return a ConfigError naming the variable). The URLs' messages never
// echo them: a URL may hold a password.
import { isIP } from "node:net";

/**
 * A URL as node-postgres reads it (pg-connection-string: a WHATWG URL, an empty host allowed for a
 * socket given as ?host=).
 */
export function databaseUrlProblem(v: string): string | null {
  if (/^postgres(ql)?:\/\//i.test(v) && (URL.canParse(v) || URL.canParse(v.replace("@/", "@localhost/")))) return null;
  return "must be a postgresql:// (or postgres://) URL, such as postgresql://user:password@host:5432/balcony";
}

/**
 * What ioredis connects to (its README, "Connect to Redis"): a redis:// URL, rediss:// for TLS, its
 * path a database number; or a Unix socket's absolute path, which that README documents too (ioredis
 * has no unix: scheme). ioredis would take any other string for a host name ("notaurl" is then
 * tried for ever while the limits fail open). The scheme in lower case: ioredis turns TLS on only
 * for "rediss://" as written, so "REDISS://" would connect in plain text.
 */
export function redisUrlProblem(v: string): string | null {
  if (/^\/[^/?]/.test(v)) return null;
  const u = /^rediss?:\/\//.test(v) && URL.canParse(v) ? new URL(v) : null;
  if (u && u.hostname !== "" && u.port !== "0" && /^(\/\d*)?$/.test(u.pathname)) return null;
  if (/^rediss?:\/\//i.test(v)) {
    return "a redis:// or rediss:// URL needs its scheme in lower case (ioredis turns TLS on only for rediss:// as written), a host, a port between 1 and 65535 and no path but a database number, e.g. redis://:password@host:6379/0";
  }
  return "must be a redis:// (or rediss://, with TLS) URL such as redis://:password@host:6379/0, or a Unix socket's absolute path such as /run/redis/redis.sock";
}

/**
 * A DNS name's labels (RFC 1123 §2.1: letters, digits and hyphens, 63 at most, no hyphen at an end),
 * and underscores too: resolvers take them, and container service names (Docker Compose) have them.
 */
const HOST_NAME = /^(?=.{1,253}\.?$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/**
 * HOST, what the HTTP listener binds: an IP address or a host name. Checked at start-up, so that
 * nonsense stops the start before the migrations, not at the listen after them; whether the address
 * is this machine's (or the name resolves) shows only at the listen (src/http/listen-error.ts).
 */
export function hostProblem(v: string): string | null {
  if (isIP(v) !== 0) return null;
  // RFC 1123 §2.1: a name is never all-numeric dotted (999.1.1.1 is a bad address, not a name).
  if (HOST_NAME.test(v) && !/(^|\.)\d+\.?$/.test(v)) return null;
  const bracketed = /^\[(.*)\]$/.exec(v);
  const hint = bracketed && isIP(bracketed[1]!) === 6 ? ` (an IPv6 address without brackets: ${bracketed[1]})` : "";
  return `must be an IP address (127.0.0.1, ::1; 0.0.0.0 or :: for every address) or a host name${hint}, got "${v}"`;
}
