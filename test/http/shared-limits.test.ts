// Rate limits and stream caps across instances: two gateways on one Postgres count in one Redis
// (REDIS_URL), so an account gets the configured rate in all, not per instance; without Redis each
// instance counts alone (the documented fallback).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startRedis, type RedisServer } from "../../scripts/harness/redis.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("limits shared across instances", () => {
  let server: XmppServer;
  let redis: RedisServer;
  let db: TestDatabase;
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    [server, redis, db] = await Promise.all([startXmppServer(), startRedis(), createTestDatabase()]);
    const env = { REDIS_URL: redis.url, RATE_LIMIT_PER_ACCOUNT: "6", RATE_LIMIT_WINDOW: "30s", MAX_STREAMS_PER_ACCOUNT: "2", XMPP_LINK_MODE: "single" };
    a = await startTestGateway(server, env, db);
    b = await startTestGateway(server, env, db);
    await a.createAccount("shared");
    await a.createAccount("other");
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await db?.drop();
    await redis?.stop();
    await server?.stop();
  });

  it("counts one account's requests on every instance against one limit", async () => {
    const tok = a.token("shared");
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await (i % 2 ? b : a).request("GET", "/v1/sessions", { token: tok })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429, 429], "6 allowed in all, alternating between the instances");
    const other = await b.request("GET", "/v1/sessions", { token: a.token("other") });
    assert.equal(other.status, 200, "another account is not affected");
  });

  it("caps an account's streams across instances, and gives the place back when a stream closes", async () => {
    const tok = a.token("other");
    const first = await a.sse("/v1/events?resource=one", tok);
    const second = await b.sse("/v1/events?resource=two", tok);
    assert.deepEqual([first.status, second.status], [200, 200]);
    const third = await b.sse("/v1/events?resource=three", tok);
    const thirdOnA = await a.sse("/v1/events?resource=three", tok);
    assert.deepEqual([third.status, thirdOnA.status], [429, 429], "two streams in all, whichever instance");
    await first.close();
    let again = await a.sse("/v1/events?resource=three", tok);
    for (let i = 0; again.status === 429 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      again = await a.sse("/v1/events?resource=three", tok);
    }
    assert.equal(again.status, 200, "the closed stream's place is free again");
    await again.close();
    await second.close();
  });
});

describe("limits with Redis unreachable", () => {
  let server: XmppServer;
  let gw: TestGateway;

  before(async () => {
    server = await startXmppServer();
    // Nothing listens on port 1: every Redis command fails. The limits fail open (documented), at once.
    gw = await startTestGateway(server, { REDIS_URL: "redis://127.0.0.1:1", RATE_LIMIT_PER_ACCOUNT: "100" });
    await gw.createAccount("unshared");
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("answers requests and opens streams without waiting for Redis (limits not enforced meanwhile)", async () => {
    const tok = gw.token("unshared");
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      assert.equal((await gw.request("GET", "/v1/sessions", { token: tok })).status, 200);
      times.push(performance.now() - t);
    }
    const t = performance.now();
    const stream = await gw.sse("/v1/events?resource=r", tok);
    times.push(performance.now() - t);
    assert.equal(stream.status, 200);
    await stream.close();
    // Waiting for Redis took about 3 s a request (connect timeout and a retry); a bounded wait now.
    assert.ok(Math.max(...times) < 1000, `answered in ${times.map((x) => x.toFixed(0)).join(", ")} ms`);
  });
});
