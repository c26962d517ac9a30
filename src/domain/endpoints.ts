// Where the gateway connects: the checks of DATABASE_URL and REDIS_URL (src/config.ts makes what
// they return a ConfigError naming the variable). Neither message echoes the value: a URL may hold
// a password.

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
