// The ranges of settings (src/config.ts, src/domain/duration.ts DURATION_SETTINGS): a value outside
// its range stops the start with a ConfigError naming the variable (exit code 2), instead of a
// gateway that spins (a purge every millisecond, a tight reconnect loop), fails every time (each
// webhook attempt timing out, each drain refused by PostgreSQL) or never reaches its database.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../../src/config.js";
import { DURATION_SETTINGS, durationMs, RETRY_DELAY_BOUNDS, TIMER_MAX_MS } from "../../src/domain/duration.js";
import { RETRY_AFTER_MAX_MS } from "../../src/domain/webhooks.js";
import { CONFIRM_TIMEOUT_MS } from "../../src/services/ports.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const load = (extra: Record<string, string>) => loadConfig({ JWT_SECRET: "x".repeat(32), XMPP_SECRET: "s", ...extra });
/** PostgreSQL's integer settings (idle_in_transaction_session_timeout) and int4 columns. */
const PG_INT_MAX = 2 ** 31 - 1;

/** `extra` must stop loadConfig with a ConfigError naming `variable` (and matching `detail`). */
function refused(extra: Record<string, string>, variable: string, detail?: RegExp): void {
  assert.throws(
    () => load(extra),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError for ${JSON.stringify(extra)}, got ${String(err)}`);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^${variable}: `));
      if (detail) assert.match(err.message, detail);
      return true;
    },
    JSON.stringify(extra),
  );
}

/** Which field of the configuration each duration setting becomes. */
const FIELD: Record<keyof typeof DURATION_SETTINGS, (c: ReturnType<typeof load>) => number> = {
  XMPP_RECONNECT_MAX: (c) => c.xmpp.reconnectMaxMs,
  XMPP_LINK_DOWN_GRACE: (c) => c.xmpp.linkDownGraceMs,
  XMPP_LINK_LEASE_TIMEOUT: (c) => c.xmpp.linkLeaseTimeoutMs,
  ROOM_SELF_PING: (c) => c.roomSelfPingMs,
  EVENT_RETENTION: (c) => c.eventRetentionMs,
  MAINTENANCE_INTERVAL: (c) => c.maintenanceIntervalMs,
  SSE_HEARTBEAT: (c) => c.sseHeartbeatMs,
  SSE_RETRY: (c) => c.sseRetryMs,
  RATE_LIMIT_WINDOW: (c) => c.rateLimit.windowMs,
  WEBHOOK_TIMEOUT: (c) => c.webhooks.timeoutMs,
  WEBHOOK_DISABLE_AFTER: (c) => c.webhooks.disableAfterMs,
  SHUTDOWN_DRAIN: (c) => c.shutdownDrainMs,
};

async function startServer(extra: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", JWT_SECRET: "x".repeat(32), XMPP_SECRET: "s",
    // Nowhere: should it get past the configuration, it must not start an embedded PostgreSQL.
    DATABASE_URL: "postgres://127.0.0.1:1/none", ...extra };
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { code, stderr };
}

describe("duration settings: each within its range", () => {
  it("the values the audit found harmful are refused, each naming its variable", () => {
    refused({ MAINTENANCE_INTERVAL: "30d" }, "MAINTENANCE_INTERVAL", /must be between 1ms and 1d, got "30d"/); // a timer past 2^31-1 ms: a purge every 1 ms
    refused({ XMPP_LINK_MODE: "all", XMPP_LINK_LEASE_TIMEOUT: "30d" }, "XMPP_LINK_LEASE_TIMEOUT"); // idle_in_transaction_session_timeout out of range
    refused({ XMPP_RECONNECT_MAX: "0" }, "XMPP_RECONNECT_MAX"); // a tight reconnect loop
    refused({ SSE_HEARTBEAT: "0" }, "SSE_HEARTBEAT"); // a heartbeat every few ms
    refused({ SSE_HEARTBEAT: "30d" }, "SSE_HEARTBEAT", /and 24d/); // a timer past 2^31-1 ms
    refused({ WEBHOOK_TIMEOUT: "0" }, "WEBHOOK_TIMEOUT"); // every attempt times out
    refused({ WEBHOOK_RETRY_SCHEDULE: "1s,8d,1m" }, "WEBHOOK_RETRY_SCHEDULE", /between 0ms and 7d each, got "8d"/);
    assert.deepEqual(load({ WEBHOOK_RETRY_SCHEDULE: "0,1s" }).webhooks.retryScheduleMs, [0, 1000], "a first retry at once");
    refused({ WEBHOOK_RETRY_SCHEDULE: "1s,30d" }, "WEBHOOK_RETRY_SCHEDULE");
    refused({ ROOM_SELF_PING: "30d" }, "ROOM_SELF_PING", /\(or 0: never\)/);
    // Digits beyond a double's range are Infinity, not a duration.
    for (const name of Object.keys(DURATION_SETTINGS)) refused({ [name]: `${"9".repeat(400)}d` }, name);
  });

  for (const [name, [fallback, least, greatest]] of Object.entries(DURATION_SETTINGS) as [keyof typeof DURATION_SETTINGS, readonly [string, string, string]][]) {
    it(`${name}: ${least} to ${greatest} (default ${fallback}), both ends taken, 1 ms beyond either refused; the greatest fits where it goes`, () => {
      const [lo, hi] = [durationMs(least)!, durationMs(greatest)!];
      assert.equal(FIELD[name](load({})), durationMs(fallback), "the default");
      assert.equal(FIELD[name](load({ [name]: least })), lo);
      assert.equal(FIELD[name](load({ [name]: greatest })), hi);
      refused({ [name]: `${hi + 1}ms` }, name, new RegExp(`must be between ${least} and ${greatest}`));
      // Below the least: refused, but for ROOM_SELF_PING, whose 0 is "never" (below).
      if (lo > 0 && !(name === "ROOM_SELF_PING" && lo === 1)) refused({ [name]: `${lo - 1}ms` }, name, new RegExp(`must be between ${least} and ${greatest}`));
      // Ages compared in SQL (a float8 of ms, an interval) become no timer; every other one may.
      if (name === "EVENT_RETENTION" || name === "WEBHOOK_DISABLE_AFTER") assert.ok(!Number.isNaN(new Date(Date.now() - hi).getTime()));
      else assert.ok(hi <= TIMER_MAX_MS, `${greatest} fits a Node timer`);
    });
  }

  it("what the settings end up in takes their greatest values: PostgreSQL's setting, a retry's int4 delay, timers", () => {
    const c = load({ XMPP_LINK_LEASE_TIMEOUT: "1h", WEBHOOK_TIMEOUT: "10m", WEBHOOK_RETRY_SCHEDULE: `1s,${RETRY_DELAY_BOUNDS[1]}` });
    // src/services/link-control.ts drainIdleLimitMs, set as idle_in_transaction_session_timeout (src/db/outbox.ts).
    assert.ok(CONFIRM_TIMEOUT_MS + c.xmpp.linkLeaseTimeoutMs <= PG_INT_MAX);
    // A retry's delay, with up to 20% jitter (src/domain/webhooks.ts retryDelay), is an int4 and a timer (webhook-dispatch wakeIn).
    assert.ok(Math.ceil((Math.max(...c.webhooks.retryScheduleMs) * 6) / 5) <= Math.min(PG_INT_MAX, TIMER_MAX_MS));
    assert.ok(RETRY_AFTER_MAX_MS <= TIMER_MAX_MS);
    // The webhook lease (src/services/webhook-dispatch.ts): two attempts and 5 s.
    assert.ok(2 * c.webhooks.timeoutMs + 5000 <= TIMER_MAX_MS);
    // Out of range before: a 30-day lease timeout made every drain fail.
    refused({ XMPP_LINK_LEASE_TIMEOUT: "25d" }, "XMPP_LINK_LEASE_TIMEOUT");
  });

  it("ROOM_SELF_PING 0 is never, in any unit; the values test suites, benchmarks and scripts use are all in range", () => {
    for (const off of ["0", "0s", "0ms", "0m"]) assert.equal(load({ ROOM_SELF_PING: off }).roomSelfPingMs, 0, off);
    refused({ ROOM_SELF_PING: "25d" }, "ROOM_SELF_PING");
    // Grepped from test/, scripts/ and bench/: each must stay valid.
    const used: Record<string, string[]> = {
      XMPP_RECONNECT_MAX: ["500ms", "1s", "2s", "5s"],
      XMPP_LINK_DOWN_GRACE: ["10s", "300s"],
      XMPP_LINK_LEASE_TIMEOUT: ["2s", "3s", "10s"],
      ROOM_SELF_PING: ["1s", "15m"],
      EVENT_RETENTION: ["2s", "3s", "8s", "3600s", "7d"],
      MAINTENANCE_INTERVAL: ["300ms", "500ms", "1s", "1h", "10m"],
      SSE_HEARTBEAT: ["300ms", "1s", "5s", "15s"],
      SSE_RETRY: ["500ms", "700ms", "1500ms", "2s"],
      RATE_LIMIT_WINDOW: ["10s", "30s"],
      WEBHOOK_TIMEOUT: ["1s", "2500ms", "3", "3s", "5s", "10s"],
      WEBHOOK_DISABLE_AFTER: ["5", "8s", "30s", "36h", "2d", "5d"],
      WEBHOOK_RETRY_SCHEDULE: ["200ms,200ms", "300ms,300ms", "1s,2s,4s", "60s", "5, 5m , 1h,1d", "5s,5m,30m,2h,5h,10h,10h"],
      SHUTDOWN_DRAIN: ["", "0", "1s", "20s"],
    };
    // And short or long ones another harness may choose (a fast test, a quiet stream).
    Object.assign(used, { SSE_HEARTBEAT: [...used.SSE_HEARTBEAT!, "50ms", "30s", "60s"], SSE_RETRY: [...used.SSE_RETRY!, "0", "50ms"], XMPP_RECONNECT_MAX: [...used.XMPP_RECONNECT_MAX!, "100ms"], XMPP_LINK_DOWN_GRACE: ["0", ...used.XMPP_LINK_DOWN_GRACE!], EVENT_RETENTION: ["1s", "500ms", ...used.EVENT_RETENTION!], WEBHOOK_TIMEOUT: ["200ms", ...used.WEBHOOK_TIMEOUT!], ROOM_SELF_PING: ["200ms", ...used.ROOM_SELF_PING!], RATE_LIMIT_WINDOW: ["500ms", ...used.RATE_LIMIT_WINDOW!] });
    for (const [name, values] of Object.entries(used)) for (const v of values) assert.doesNotThrow(() => load({ [name]: v }), `${name}=${v}`);
  });

  it("an out-of-range one stops src/server.ts with exit code 2 and `configuration error: MAINTENANCE_INTERVAL: …`, no timer warning", async () => {
    const { code, stderr } = await startServer({ MAINTENANCE_INTERVAL: "30d" });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /configuration error: MAINTENANCE_INTERVAL: must be between 1ms and 1d, got "30d"/);
    assert.doesNotMatch(stderr, /TimeoutOverflowWarning/);
  });
});

describe("DATABASE_URL: a postgresql:// URL", () => {
  it("takes the URLs node-postgres reads (both schemes, a port, a socket directory as ?host=); refuses anything else with a ConfigError naming DATABASE_URL, without echoing it (it may hold the password)", () => {
    for (const url of [
      "postgresql://postgres@127.0.0.1:5432/postgres",
      "postgres://balcony:s%40cret@db.example:6543/balcony?sslmode=require",
      "POSTGRESQL://db/balcony",
      "postgresql:///balcony?host=/var/run/postgresql",
      "postgresql://balcony@/balcony?host=/var/run/postgresql",
    ])
      assert.equal(load({ DATABASE_URL: url }).databaseUrl, url, url);
    assert.equal(load({}).databaseUrl, undefined, "unset: the embedded PostgreSQL");
    for (const bad of ["garbage", "mysql://u:hunter2@h/db", "http://h/db", "127.0.0.1:5432/balcony", "postgresql://u:hunter2@h:99999/db", "postgresql//u@h/db"]) {
      refused({ DATABASE_URL: bad }, "DATABASE_URL", /must be a postgresql:\/\/ \(or postgres:\/\/\) URL/);
      assert.throws(() => load({ DATABASE_URL: bad }), (err: Error) => !err.message.includes(bad) && !err.message.includes("hunter2"));
    }
  });

  it("a bad one stops src/server.ts with exit code 2 naming DATABASE_URL, not a DNS error and a stack", async () => {
    const { code, stderr } = await startServer({ DATABASE_URL: "garbage" });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^balcony: configuration error: DATABASE_URL: must be a postgresql:\/\//);
    assert.doesNotMatch(stderr, /ENOTFOUND|\n\s+at /);
  });
});

describe("REDIS_URL: a redis:// or rediss:// URL, or a socket path (what ioredis connects to)", () => {
  it("takes redis:// and rediss:// URLs with a host, a port and a database number, and a Unix socket's path; refuses anything else naming REDIS_URL, without echoing it", () => {
    for (const url of ["redis://127.0.0.1:6379", "rediss://:s%40cret@redis.example:6380/4", "redis://user:pw@[::1]:6379/", "redis://redis.example?family=6", "/run/redis/redis.sock"])
      assert.equal(load({ REDIS_URL: url }).redisUrl, url, url);
    assert.equal(load({}).redisUrl, undefined, "unset: limits per instance");
    // ioredis takes a bare word for a host name; "unix:" is no scheme of its.
    for (const bad of ["notaurl", "127.0.0.1:6379", "http://u:hunter2@h:6379", "unix:/run/redis/redis.sock", "//h:6379"]) {
      refused({ REDIS_URL: bad }, "REDIS_URL", /must be a redis:\/\/ \(or rediss:\/\/, with TLS\) URL/);
      assert.throws(() => load({ REDIS_URL: bad }), (err: Error) => !err.message.includes(bad) && !err.message.includes("hunter2"));
    }
    // ioredis would connect to REDISS:// without TLS, to redis:// at 127.0.0.1, and SELECT "abc".
    for (const bad of ["REDISS://u:hunter2@h:6380", "redis://", "redis://:hunter2@/0", "redis://h:0", "redis://h:99999", "redis://h/abc", "redis://h/0/1"]) {
      refused({ REDIS_URL: bad }, "REDIS_URL", /needs its scheme in lower case .* a host, a port between 1 and 65535 and no path but a database number/);
      assert.throws(() => load({ REDIS_URL: bad }), (err: Error) => !err.message.includes("hunter2"));
    }
  });

  it("a bad one stops src/server.ts with exit code 2 naming REDIS_URL, before anything starts", async () => {
    const { code, stderr } = await startServer({ REDIS_URL: "notaurl" });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^balcony: configuration error: REDIS_URL: must be a redis:\/\//);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });
});

describe("HOST: an IP address or a host name", () => {
  it("takes addresses (IPv4, IPv6, with a zone) and names, unset is 127.0.0.1; refuses what no listener could bind, naming HOST (whether the address is this machine's shows at the listen: test/scripts/listen-errors.test.ts)", () => {
    for (const host of ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1%lo", "203.0.113.7", "localhost", "gw.example.com", "gw.example.com.", "my-host", "balcony_gateway_1"]) assert.equal(load({ HOST: host }).host, host);
    assert.equal(load({}).host, "127.0.0.1");
    assert.equal(load({ HOST: "" }).host, "127.0.0.1", "empty: the default, as before");
    for (const bad of ["not..valid", "999.1.1.1", "1.2.3", "-bad-", "*", "host:8080", "http://127.0.0.1", " 127.0.0.1", `${"x".repeat(64)}.example`]) refused({ HOST: bad }, "HOST", /must be an IP address .* or a host name, got/);
    refused({ HOST: "[::1]" }, "HOST", /an IPv6 address without brackets: ::1/);
  });
});

describe("XMPP_SERVICE: the port between 1 and 65535", () => {
  it("takes 1, 65535 and no port; refuses 0, 65536 and 99999 naming XMPP_SERVICE", () => {
    for (const ok of ["xmpp://127.0.0.1:1", "xmpp://xmpp.example:65535", "xmpp://xmpp.example"]) assert.equal(load({ XMPP_SERVICE: ok }).xmpp.service, ok);
    for (const port of ["0", "65536", "99999", "123456789012345678901234567890"]) refused({ XMPP_SERVICE: `xmpp://127.0.0.1:${port}` }, "XMPP_SERVICE", /port must be between 1 and 65535/);
  });
});

describe("README's Configuration table: every variable, its default and its range, as src/config.ts has them", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  /** The table's rows by variable (a row naming two, `HOST`, `PORT`, is both's). */
  const rows = new Map<string, string>();
  for (const line of readme.split("\n")) {
    const m = /^\| ((?:`[A-Z_]+`(?:, )?)+) \|/.exec(line);
    if (m) for (const v of m[1]!.match(/[A-Z_]+/g)!) rows.set(v, line);
  }
  /** Integer settings: [default, least, greatest] (src/config.ts int()). */
  const INTEGERS: Record<string, [number, number, number]> = {
    PORT: [8080, 0, 65535],
    EMBEDDED_PG_PORT: [54329, 1, 65535],
    DB_POOL_MAX: [10, 1, 200],
    MAX_STANZA_BYTES: [262144, 4096, 64 * 1024 * 1024],
    SESSION_GRACE_SECONDS: [60, 0, 86400],
    BODY_LIMIT_BYTES: [262144, 1024, 64 * 1024 * 1024],
    BATCH_BODY_LIMIT_BYTES: [4194304, 1024, 256 * 1024 * 1024],
    RATE_LIMIT_PER_IP: [20000, 0, 100_000_000],
    RATE_LIMIT_PER_ACCOUNT: [5000, 0, 100_000_000],
    MAX_STREAMS_PER_ACCOUNT: [20, 1, 10_000],
    MESSAGE_MAX_CHARS: [65536, 1, 10 * 1024 * 1024],
    WEBHOOK_CONCURRENCY: [32, 1, 1000],
  };

  it("lists every variable src/config.ts reads", () => {
    const source = readFileSync(new URL("../../src/config.ts", import.meta.url), "utf8");
    const read = new Set([...source.matchAll(/\(env, "([A-Z_]+)"/g)].map((m) => m[1]!).concat(Object.keys(DURATION_SETTINGS), ["JWT_SECRET", "JWT_PUBLIC_KEY", "WEBHOOK_ALLOW_PRIVATE", "TRUST_PROXY", "WEBHOOK_RETRY_SCHEDULE"]));
    for (const v of read) assert.ok(rows.has(v), `${v} has no row in README's Configuration table`);
    for (const v of Object.keys(INTEGERS)) assert.ok(read.has(v), `${v} is not read by src/config.ts`);
  });

  for (const [name, [fallback, least, greatest]] of Object.entries(INTEGERS)) {
    it(`${name}: default ${fallback}, ${least} to ${greatest}, in the table and in src/config.ts`, () => {
      const row = rows.get(name)!;
      assert.ok(row.includes(`\`${fallback}\``), `README's ${name} row gives no default ${fallback}: ${row}`);
      assert.ok(row.includes(`\`${least}\`${name === "PORT" ? " (any free port)" : ""} to \`${greatest}\``), `README's ${name} row gives no range ${least} to ${greatest}: ${row}`);
      // Both ends are taken (a listener or a pool is not started here: only the configuration).
      for (const v of [least, greatest]) assert.doesNotThrow(() => load({ [name]: String(v) }), `${name}=${v}`);
      refused({ [name]: String(least - 1) }, name, /must be between/);
      refused({ [name]: String(greatest + 1) }, name, /must be between/);
    });
  }

  for (const [name, [fallback, least, greatest]] of Object.entries(DURATION_SETTINGS)) {
    it(`${name}: default ${fallback}, ${least} to ${greatest}, in the table`, () => {
      const row = rows.get(name)!;
      const shown = (d: string) => (d === "0ms" ? "0" : d);
      assert.ok(row.includes(`| \`${fallback}\` |`), `README's ${name} row gives no default ${fallback}: ${row}`);
      assert.ok(row.includes(`\`${shown(least)}\` to \`${greatest}\``), `README's ${name} row gives no range ${shown(least)} to ${greatest}: ${row}`);
    });
  }
});

// The ops audit of stop 65: .env.example's DATA_DIR=./data, copied into a .env, turned off the move
// of the embedded PostgreSQL's data out of a checkout the postgres user cannot enter.
describe("DATA_DIR", () => {
  it("unset or the default written out is the default; any other folder is the operator's", () => {
    const example = /^DATA_DIR=(.*)$/m.exec(readFileSync(`${ROOT}.env.example`, "utf8"))![1]!;
    for (const dir of [undefined, example, "./data", "data", "./data/"]) assert.equal(load(dir === undefined ? {} : { DATA_DIR: dir }).dataDirIsDefault, true, String(dir));
    for (const dir of ["/srv/balcony", "./data2", "../data"]) assert.equal(load({ DATA_DIR: dir }).dataDirIsDefault, false, dir);
  });
});
