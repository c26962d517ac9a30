// The stream cap counted across instances (MAX_STREAMS_PER_ACCOUNT with REDIS_URL) when the
// instance serving a browser dies: a real Chromium's EventSource, through HAProxy, at its account's
// cap, on an instance that is SIGKILLed. The dead instance's place still counts for a while
// (src/db/redis-slots.ts LIVE_MS), and the reconnect comes sooner (SSE_RETRY): it must be told to
// come back (200, retry:), not refused with a 429, on which an EventSource gives up for good
// (HTML §9.2.3). It reopens on the surviving instance and goes on from where it was.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser } from "playwright-core";
import { api, createAccount } from "../../scripts/harness/cluster.js";
import { startRedis, type RedisServer } from "../../scripts/harness/redis.js";
import { startTestbed, sleep, type Testbed } from "./helpers.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
declare const window: { es: { readyState: number } } & Record<string, unknown>;
declare const EventSource: new (url: string) => { readyState: number; onopen: () => void; addEventListener(t: string, f: (e: { lastEventId: string }) => void): void };

async function streamsOn(bed: Testbed, i: number): Promise<number> {
  const r = await fetch(`${bed.cluster.instances[i]!.url}/metrics`, { signal: AbortSignal.timeout(2000) });
  return Number(/^balcony_event_streams (\d+)/m.exec(await r.text())?.[1] ?? 0);
}

describe("an EventSource at its account's stream cap when its instance dies (Redis-counted cap, HAProxy, Chromium)", () => {
  let redis: RedisServer;
  let bed: Testbed;
  let browser: Browser;
  before(async () => {
    redis = await startRedis();
    bed = await startTestbed("prosody", { size: 2, env: { SSE_RETRY: "1s", MAX_STREAMS_PER_ACCOUNT: "1", REDIS_URL: redis.url } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser?.close();
    await bed?.stop();
    await redis?.stop();
  });

  it("reopens on the other instance, with the events after its last", async () => {
    const token = await createAccount(bed.lb, "capped");
    const t = await api(bed.lb, "POST", "/v1/events/tickets", { token, body: { ttlSeconds: 600 }, headers: { "balcony-resource": "web" } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const page = await browser.newPage();
    await page.goto(`${bed.lb}/healthz`);
    await page.evaluate((ticket: string) => {
      window.opened = false;
      window.ids = [];
      const es = new EventSource(`/v1/events?ticket=${encodeURIComponent(ticket)}`);
      window.es = es;
      es.onopen = () => (window.opened = true);
      es.addEventListener("roster", (e) => (window.ids as string[]).push(e.lastEventId));
    }, t.body.ticket as string);
    await page.waitForFunction(() => window.opened, undefined, { timeout: 10_000 });
    const add = async (jid: string) => assert.equal((await api(bed.lb, "PUT", `/v1/roster/${jid}`, { token, body: {} })).status, 201);
    await add("one@localhost");
    await page.waitForFunction(() => (window.ids as string[]).length === 1, undefined, { timeout: 10_000 });

    let serving = -1;
    for (let k = 0; k < 50 && serving < 0; k++) {
      if ((await streamsOn(bed, 0)) === 1) serving = 0;
      else if ((await streamsOn(bed, 1)) === 1) serving = 1;
      else await sleep(100);
    }
    assert.ok(serving >= 0, "one instance serves the stream");
    await bed.cluster.kill(serving, "SIGKILL");
    await add("two@localhost");
    // Reconnects after a second (SSE_RETRY), then every 5 s while told to come back (each of those
    // an open too, of a stream that ends at once); the dead instance's place is free within LIVE_MS (10 s).
    await page.waitForFunction(() => (window.ids as string[]).length === 2 || window.es.readyState === 2, undefined, { timeout: 30_000 });
    assert.notEqual(await page.evaluate(() => window.es.readyState), 2, "the EventSource was not closed for good");
    const ids = (await page.evaluate(() => window.ids)) as string[];
    assert.equal(Number(ids[1]), Number(ids[0]) + 1, `the event after its last, once: ${ids}`);
    assert.equal(await streamsOn(bed, 1 - serving), 1, "the survivor serves it");
    await page.close();
  });
});
