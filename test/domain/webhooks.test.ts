// The pure webhook rules of src/domain/webhooks.ts, without a server: the retry schedule and its
// jitter (retryDelay), how long a failure keeps an endpoint's failure streak going (longestRetryGapMs,
// failureStreakHoldMs), which URLs may be a target (urlProblem), the stable webhook-id of a delivery
// (deliveryId), which event types a webhook may subscribe to (WEBHOOK_EVENT_TYPES); and the
// WEBHOOK_* settings as src/config.ts reads them (there is no other config test file to hold them).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/config.js";
import { EVENT_TYPES } from "../../src/domain/events.js";
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  RETRY_AFTER_MAX_MS,
  WEBHOOK_EVENT_TYPES,
  WEBHOOK_URL_MAX,
  deliveryId,
  failureStreakHoldMs,
  laterRetry,
  longestRetryGapMs,
  retryAfterMs,
  retryDelay,
  signingSecrets,
  urlProblem,
} from "../../src/domain/webhooks.js";

/** The largest double below 1: the highest value Math.random() can return. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;

describe("retryDelay", () => {
  it("keeps the documented default schedule (API.md: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)", () => {
    const s = 1000;
    assert.deepEqual(DEFAULT_RETRY_SCHEDULE_MS, [5 * s, 300 * s, 1800 * s, 7200 * s, 18000 * s, 36000 * s, 36000 * s]);
  });

  // `failed` counts attempts made so far: after the first failure, the first delay applies.
  for (const [index, base] of DEFAULT_RETRY_SCHEDULE_MS.entries()) {
    for (const random of [0, 0.5, 0.999, ALMOST_ONE]) {
      it(`after failure ${index + 1} with random ${random}, waits within [1, 1.2) x ${base} ms (never less than scheduled)`, () => {
        const delay = retryDelay(DEFAULT_RETRY_SCHEDULE_MS, index + 1, random);
        assert.notEqual(delay, null);
        assert.ok(delay! >= base, `${delay} >= ${base}`);
        assert.ok(delay! < 1.2 * base, `${delay} < ${1.2 * base}`);
        assert.ok(Number.isInteger(delay), `${delay} is whole milliseconds`);
      });
    }
  }

  it("gives up (null) once the default schedule is used up", () => {
    const n = DEFAULT_RETRY_SCHEDULE_MS.length;
    assert.notEqual(retryDelay(DEFAULT_RETRY_SCHEDULE_MS, n, 0.5), null, "the last entry is still a delay");
    assert.equal(retryDelay(DEFAULT_RETRY_SCHEDULE_MS, n + 1, 0), null);
    assert.equal(retryDelay(DEFAULT_RETRY_SCHEDULE_MS, n + 1, ALMOST_ONE), null);
    assert.equal(retryDelay(DEFAULT_RETRY_SCHEDULE_MS, n + 10, 0.5), null);
  });

  it("follows a custom schedule (WEBHOOK_RETRY_SCHEDULE) and ends after it", () => {
    const schedule = [1000, 2000, 4000];
    for (const [index, base] of schedule.entries()) {
      for (const random of [0, 0.5, ALMOST_ONE]) {
        const delay = retryDelay(schedule, index + 1, random);
        assert.notEqual(delay, null, `failure ${index + 1}`);
        assert.ok(delay! >= base && delay! < 1.2 * base, `failure ${index + 1}, random ${random}: ${delay} within [1, 1.2) x ${base}`);
      }
    }
    assert.equal(retryDelay(schedule, 4, 0.5), null);
    // A short schedule (one retry) ends after one.
    assert.notEqual(retryDelay([300], 1, 0.5), null);
    assert.equal(retryDelay([300], 2, 0.5), null);
    assert.equal(retryDelay([], 1, 0.5), null, "an empty schedule never retries");
  });

  it("jitters: the delay grows with random, so endpoints that failed together do not retry together", () => {
    const base = DEFAULT_RETRY_SCHEDULE_MS[1]!;
    const randoms = [0, 0.1, 0.25, 0.5, 0.75, 0.9, ALMOST_ONE];
    const delays = randoms.map((r) => retryDelay(DEFAULT_RETRY_SCHEDULE_MS, 2, r)!);
    assert.equal(new Set(delays).size, randoms.length, `distinct delays: ${delays.join(", ")}`);
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! > delays[i - 1]!, `increasing: ${delays.join(", ")}`);
    // The jitter spans most of the +20 % band, not a sliver of it.
    assert.ok(delays.at(-1)! - delays[0]! > 0.19 * base, `spread ${delays.at(-1)! - delays[0]!} of ${0.2 * base}`);
  });

  // WEBHOOK_RETRY_SCHEDULE=1s promises a second between attempts: a receiver measuring the gaps
  // must never see a shorter one, whatever the jitter drew.
  it("never retries before the scheduled delay, for any random and any small schedule", () => {
    const early: string[] = [];
    for (const base of [1, 2, 3, 4, 5, 7, 10, 99, 200, 300, 1000, 1001]) {
      for (let i = 0; i <= 1000; i++) {
        const random = i === 1000 ? ALMOST_ONE : i / 1000;
        const delay = retryDelay([base], 1, random)!;
        if (delay < base) early.push(`base ${base}, random ${random}: ${delay}`);
      }
    }
    assert.deepEqual(early.slice(0, 5), []);
  });
});

describe("Retry-After (retryAfterMs, laterRetry)", () => {
  const now = Date.parse("2026-12-03T20:00:00Z");
  it("reads delay-seconds and an HTTP-date (RFC 9110 §10.2.3); nothing else", () => {
    assert.equal(retryAfterMs("120", now), 120_000);
    assert.equal(retryAfterMs(" 0 ", now), 0);
    assert.equal(retryAfterMs("Thu, 03 Dec 2026 20:01:30 GMT", now), 90_000);
    assert.equal(retryAfterMs("Thu, 03 Dec 2026 19:00:00 GMT", now), 0, "a date in the past: now");
    for (const bad of [undefined, "", "soon", "-5", "1.5"]) assert.equal(retryAfterMs(bad, now), null, String(bad));
  });
  it("waits at least the schedule's delay and at most a day; no Retry-After, or the schedule used up, changes nothing", () => {
    assert.equal(laterRetry(5_000, 60_000), 60_000);
    assert.equal(laterRetry(5_000, 1_000), 5_000, "never sooner than the schedule");
    assert.equal(laterRetry(5_000, 10 * RETRY_AFTER_MAX_MS), RETRY_AFTER_MAX_MS);
    assert.equal(laterRetry(5_000, null), 5_000);
    assert.equal(laterRetry(null, 60_000), null, "no attempt added");
  });
});

describe("failure streaks (longestRetryGapMs, failureStreakHoldMs)", () => {
  it("the longest gap is the largest delay at the most jitter retryDelay draws, and no gap it draws is longer", () => {
    // The default's 10 h at +20 %, in whole milliseconds below 12 h.
    assert.equal(longestRetryGapMs(DEFAULT_RETRY_SCHEDULE_MS), 12 * 3_600_000 - 1);
    for (const schedule of [DEFAULT_RETRY_SCHEDULE_MS, [1000, 2000, 4000], [4000, 300], [0, 1000], [7]]) {
      const longest = longestRetryGapMs(schedule);
      const drawn = schedule.flatMap((_, i) => [0, 0.5, 0.999, ALMOST_ONE].map((r) => retryDelay(schedule, i + 1, r)!));
      assert.equal(Math.max(...drawn), longest, `schedule ${schedule.join(",")}`);
    }
    assert.equal(longestRetryGapMs([0]), 0);
    assert.equal(longestRetryGapMs([]), 0, "an empty schedule leaves no gap");
  });
  it("a failure holds the streak for that gap, or its own retry's wait if longer (a Retry-After), and the allowance for lateness", () => {
    assert.equal(failureStreakHoldMs([300, 300], 0, 7000), 359 + 7000, "a failure for good: the schedule's longest gap");
    assert.equal(failureStreakHoldMs([300, 300], 300, 7000), 359 + 7000);
    assert.equal(failureStreakHoldMs([300, 300], 9000, 7000), 9000 + 7000, "a Retry-After longer than the schedule");
    assert.equal(failureStreakHoldMs([0], 0, 25_000), 25_000, "retries at once: only the allowance");
  });
});

describe("urlProblem", () => {
  const accepted = [
    "https://example.com",
    "http://example.com/",
    "https://example.com:8443/hooks/balcony",
    "http://127.0.0.1:9000/receiver/a",
    "https://example.com/path/to/hook?token=abc&x=1",
    "https://example.com:443/?q=%20encoded",
    "http://[::1]:8080/x?y=1",
    "https://[2001:db8::1]/hook",
    "http://[::ffff:127.0.0.1]/",
    "HTTPS://Example.COM/Case",
    "https://münchen.example/webhook",
    "https://example.com/\u{1F339}",
  ];
  for (const url of accepted) it(`accepts ${url}`, () => assert.equal(urlProblem(url), null));

  const refused: [string, RegExp][] = [
    ["ftp://example.com/hook", /http or https/],
    ["file:///etc/passwd", /http or https/],
    ["ws://example.com/socket", /http or https/],
    ["javascript:alert(1)", /http or https/],
    ["gopher://127.0.0.1:6379/_INFO", /http or https/],
    ["data:text/plain,hello", /http or https/],
    ["/relative/path", /absolute/],
    ["relative/path", /absolute/],
    ["//example.com/protocol-relative", /absolute/],
    ["example.com/hook", /absolute/],
    ["", /absolute/],
    ["http://", /absolute/],
    ["https://user:pass@example.com/hook", /credentials/],
    ["https://user@example.com/hook", /credentials/],
    ["https://:pass@example.com/hook", /credentials/],
    ["https://example.com/hook#section", /fragment/],
    ["https://example.com/hook?x=1#frag", /fragment/],
    // An empty fragment is still a fragment (RFC 3986 §3.5): the stored URL would carry a "#".
    ["https://example.com/hook#", /fragment/],
    // RFC 3986 §2: never in a URI as such (the parser would drop or encode them; a NUL cannot be stored).
    ["https://example.com/\u0000hook", /control character/],
    ["https://example.com/a\u0001", /control character/],
    ["https://example.com/a\u0085", /control character/],
    ["https://example.com/a b", /white space/],
    ["https://example.com/a\tb", /white space/],
    ["https://example.com/a\nb", /white space/],
    [" https://example.com/", /white space/],
    ["https://example.com/\ud800", /lone surrogate/],
    ["https://example.com/\udc00x", /lone surrogate/],
  ];
  for (const [url, why] of refused) it(`refuses ${JSON.stringify(url)}`, () => assert.match(urlProblem(url) ?? "(accepted)", why));

  it(`accepts exactly ${WEBHOOK_URL_MAX} characters and refuses one more`, () => {
    assert.equal(WEBHOOK_URL_MAX, 2048);
    const prefix = "https://example.com/";
    const longest = prefix + "a".repeat(WEBHOOK_URL_MAX - prefix.length);
    assert.equal(longest.length, 2048);
    assert.equal(urlProblem(longest), null);
    assert.match(urlProblem(longest + "a") ?? "(accepted)", /longer than 2048/);
    assert.match(urlProblem(prefix + "a".repeat(10_000)) ?? "(accepted)", /longer than 2048/);
  });
});

describe("deliveryId", () => {
  const hook = "6f1c3e52-8a0b-4c1e-9d2f-0a1b2c3d4e5f";
  const other = "0b7e2f1a-3c4d-4e5f-8a9b-1c2d3e4f5a6b";

  it("is msg_ + the webhook uuid without dashes + account id + sequence number (API context)", () => {
    assert.equal(deliveryId(hook, 7, 42), "msg_6f1c3e528a0b4c1e9d2f0a1b2c3d4e5f_7_42");
  });

  it("is the same for the same endpoint, account and event (every attempt carries it)", () => {
    assert.equal(deliveryId(hook, 7, 42), deliveryId(hook, 7, 42));
  });

  it("differs per endpoint, per account and per event", () => {
    const ids = [
      deliveryId(hook, 7, 42),
      deliveryId(other, 7, 42),
      deliveryId(hook, 8, 42),
      deliveryId(hook, 7, 43),
      // The separators keep (1, 23) and (12, 3) apart.
      deliveryId(hook, 1, 23),
      deliveryId(hook, 12, 3),
    ];
    assert.equal(new Set(ids).size, ids.length, ids.join("\n"));
  });

  it("uses only characters Standard Webhooks receivers put in headers and logs safely", () => {
    assert.match(deliveryId(hook, 123456, 9_007_199_254_740_991), /^msg_[0-9a-f]{32}_\d+_\d+$/);
  });
});

describe("WEBHOOK_EVENT_TYPES", () => {
  it('is every event type API.md lists, "resync" included (accepted, though it never fires for a webhook)', () => {
    assert.ok(EVENT_TYPES.includes("resync"), "the catalogue has resync");
    assert.ok(WEBHOOK_EVENT_TYPES.includes("resync"));
    assert.deepEqual([...WEBHOOK_EVENT_TYPES].sort(), [...EVENT_TYPES].sort());
    assert.ok(WEBHOOK_EVENT_TYPES.includes("message") && WEBHOOK_EVENT_TYPES.includes("roster"), "the types the integration tests use");
  });
});

describe("WEBHOOK_* settings (src/config.ts)", () => {
  /** The least environment loadConfig accepts, plus the variables under test. */
  const load = (extra: Record<string, string>) => loadConfig({ JWT_SECRET: "x".repeat(32), XMPP_SECRET: "s", ...extra });

  /** Runs `f`, which must throw a ConfigError naming `variable`. */
  function configError(f: () => unknown, variable: string): void {
    assert.throws(f, (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^${variable}: `));
      return true;
    });
  }

  it("defaults: the documented schedule, no private targets, 10 s timeout, disabled after 5 days, 32 in flight", () => {
    const w = load({}).webhooks;
    assert.deepEqual(w.retryScheduleMs, DEFAULT_RETRY_SCHEDULE_MS);
    assert.deepEqual(w.allowPrivate, []);
    assert.equal(w.timeoutMs, 10_000);
    assert.equal(w.disableAfterMs, 5 * 86_400_000);
    assert.equal(w.concurrency, 32);
    // Empty counts as unset, like every other variable.
    assert.deepEqual(load({ WEBHOOK_RETRY_SCHEDULE: "" }).webhooks.retryScheduleMs, DEFAULT_RETRY_SCHEDULE_MS);
  });

  it('WEBHOOK_RETRY_SCHEDULE "1s,2s,4s" is [1000, 2000, 4000]; units and spaces are understood', () => {
    assert.deepEqual(load({ WEBHOOK_RETRY_SCHEDULE: "1s,2s,4s" }).webhooks.retryScheduleMs, [1000, 2000, 4000]);
    assert.deepEqual(load({ WEBHOOK_RETRY_SCHEDULE: "300ms,300ms" }).webhooks.retryScheduleMs, [300, 300]);
    assert.deepEqual(load({ WEBHOOK_RETRY_SCHEDULE: "5, 5m , 1h,1d" }).webhooks.retryScheduleMs, [5000, 300_000, 3_600_000, 86_400_000]);
  });

  for (const bad of ["1s,x,4s", "1s,,2s", "1.5s", "-1s", "1s;2s", "10 minutes"]) {
    it(`WEBHOOK_RETRY_SCHEDULE ${JSON.stringify(bad)} is a ConfigError naming the variable`, () => {
      configError(() => load({ WEBHOOK_RETRY_SCHEDULE: bad }), "WEBHOOK_RETRY_SCHEDULE");
    });
  }

  it("WEBHOOK_RETRY_SCHEDULE takes up to 20 retries", () => {
    assert.equal(load({ WEBHOOK_RETRY_SCHEDULE: Array(20).fill("1s").join(",") }).webhooks.retryScheduleMs.length, 20);
    configError(() => load({ WEBHOOK_RETRY_SCHEDULE: Array(21).fill("1s").join(",") }), "WEBHOOK_RETRY_SCHEDULE");
  });

  it("WEBHOOK_ALLOW_PRIVATE: true, or addresses and CIDRs", () => {
    assert.equal(load({ WEBHOOK_ALLOW_PRIVATE: "true" }).webhooks.allowPrivate, "all");
    const list = load({ WEBHOOK_ALLOW_PRIVATE: "127.0.0.1, 10.0.0.0/8,::1" }).webhooks.allowPrivate;
    assert.ok(Array.isArray(list));
    assert.deepEqual(
      list.map(([addr, bits]) => `${addr.toString()}/${bits}`),
      ["127.0.0.1/32", "10.0.0.0/8", "::1/128"],
    );
  });

  for (const bad of ["10.0.0.0/33", "foo", "127.0.0.1,nope", "1.2.3"]) {
    it(`WEBHOOK_ALLOW_PRIVATE ${JSON.stringify(bad)} is a ConfigError naming the variable`, () => {
      configError(() => load({ WEBHOOK_ALLOW_PRIVATE: bad }), "WEBHOOK_ALLOW_PRIVATE");
    });
  }

  it("WEBHOOK_TIMEOUT, WEBHOOK_DISABLE_AFTER and WEBHOOK_CONCURRENCY parse", () => {
    const w = load({ WEBHOOK_TIMEOUT: "2500ms", WEBHOOK_DISABLE_AFTER: "36h", WEBHOOK_CONCURRENCY: "4" }).webhooks;
    assert.equal(w.timeoutMs, 2500);
    assert.equal(w.disableAfterMs, 36 * 3_600_000);
    assert.equal(w.concurrency, 4);
    // A bare number is seconds.
    assert.equal(load({ WEBHOOK_TIMEOUT: "3" }).webhooks.timeoutMs, 3000);
    assert.equal(load({ WEBHOOK_DISABLE_AFTER: "2d" }).webhooks.disableAfterMs, 2 * 86_400_000);
  });

  it("bad WEBHOOK_TIMEOUT, WEBHOOK_DISABLE_AFTER and WEBHOOK_CONCURRENCY are ConfigErrors naming each", () => {
    configError(() => load({ WEBHOOK_TIMEOUT: "soon" }), "WEBHOOK_TIMEOUT");
    configError(() => load({ WEBHOOK_DISABLE_AFTER: "5 days" }), "WEBHOOK_DISABLE_AFTER");
    configError(() => load({ WEBHOOK_CONCURRENCY: "many" }), "WEBHOOK_CONCURRENCY");
    configError(() => load({ WEBHOOK_CONCURRENCY: "0" }), "WEBHOOK_CONCURRENCY");
    configError(() => load({ WEBHOOK_CONCURRENCY: "1001" }), "WEBHOOK_CONCURRENCY");
  });
});

describe("signingSecrets", () => {
  it("signs with the current secret, the previous and the older ones whose overlap is not over, each once", () => {
    const now = 1_000_000;
    const w = { secret: "s3", previousSecret: "s2", previousSecretUntil: new Date(now + 10), olderSecrets: [{ secret: "s0", until: now - 1 }, { secret: "s1", until: now + 5 }, { secret: "s2", until: now + 10 }] };
    assert.deepEqual(signingSecrets(w, now), ["s3", "s2", "s1"]);
    assert.deepEqual(signingSecrets({ ...w, previousSecretUntil: new Date(now) }, now), ["s3", "s1"]);
    assert.deepEqual(signingSecrets({ ...w, previousSecret: null, previousSecretUntil: null, olderSecrets: [] }, now), ["s3"]);
  });
});
