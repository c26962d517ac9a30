// /readyz and Redis (REDIS_URL): it says whether Redis answers, beside the database and the link,
// and stays 200 while Redis is down, stopped or hung: the limits counted there fail open (README,
// "Configuration"), so the instance still serves and a load balancer must not take it out.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startRedis, type RedisServer } from "../../scripts/harness/redis.js";
import { freePort } from "../../scripts/harness/gateway-process.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

describe("/readyz reports Redis without depending on it", () => {
  let server: XmppServer;
  let redis: RedisServer;
  let relay: TcpRelay;
  let gw: TestGateway;
  let closed: TestGateway;

  before(async () => {
    [server, redis] = await Promise.all([startXmppServer(), startRedis()]);
    // Through a relay, so that the test can hold Redis's answers (a hung Redis).
    relay = new TcpRelay(Number(new URL(redis.url).port));
    const port = await relay.listen();
    gw = await startTestGateway(server, { REDIS_URL: `redis://127.0.0.1:${port}` });
    // Nothing listens there: the gateway starts and is ready all the same. On the same database,
    // a standby of the first (Prosody takes one connection per component).
    closed = await startTestGateway(server, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, gw.db);
  });
  after(async () => {
    await closed?.stop();
    await gw?.stop(); // and its database, which the standby shared
    relay?.close();
    await redis?.stop();
    await server?.stop();
  });

  const readyz = async (g: TestGateway) => {
    const t = performance.now();
    const r = await g.request("GET", "/readyz", { token: null });
    return { status: r.status, body: r.body as Record<string, string>, ms: performance.now() - t };
  };

  it("a Redis that answers: redis up", async () => {
    const r = await readyz(gw);
    assert.deepEqual([r.status, r.body], [200, { status: "ready", database: "up", xmpp: "up", redis: "up" }]);
  });

  it("nothing at REDIS_URL: redis down, and still 200 ready", async () => {
    const r = await readyz(closed);
    assert.deepEqual([r.status, r.body], [200, { status: "ready", database: "up", xmpp: "standby", redis: "down" }]);
    assert.ok(r.ms < 1000, `answered in ${r.ms.toFixed(0)} ms`);
  });

  it("a hung Redis: down within the probe's bound, still 200; API requests wait at most the command timeout; up again once it answers", async () => {
    await gw.createAccount("hung");
    const sessions = async () => {
      const t = performance.now();
      const r = await gw.request("GET", "/v1/sessions", { token: gw.token("hung") });
      return { status: r.status, ms: performance.now() - t };
    };
    assert.equal((await sessions()).status, 200);
    relay.hold(true);
    const held = await readyz(gw);
    assert.deepEqual([held.status, held.body.status, held.body.redis], [200, "ready", "down"]);
    assert.ok(held.ms < 1500, `answered in ${held.ms.toFixed(0)} ms, not held with Redis`);
    // The rate limits counted in Redis fail open once its command times out (they waited for ever).
    const api = await sessions();
    assert.equal(api.status, 200, "served, the limit failing open");
    assert.ok(api.ms < 2000, `answered in ${api.ms.toFixed(0)} ms, not held with Redis`);
    relay.hold(false);
    await waitFor(async () => (await readyz(gw)).body.redis === "up", 5000, "redis up again");
  });

  it("Redis stopped: down, still 200", async () => {
    await redis.stop();
    await waitFor(async () => (await readyz(gw)).body.redis === "down", 5000, "redis down");
    const r = await readyz(gw);
    assert.deepEqual([r.status, r.body], [200, { status: "ready", database: "up", xmpp: "up", redis: "down" }]);
  });
});
