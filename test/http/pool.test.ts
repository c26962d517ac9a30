// The bounded PostgreSQL pool under load: with DB_POOL_MAX=2, 200 concurrent requests (message
// posts and roster reads for several accounts) all get an answer within a bound, each a 2xx or a
// 503 database-unavailable with Retry-After (the pool's acquire timeout), never a 500; and
// Postgres never sees more connections from the gateway than the pool, the LISTEN connection and
// the link lease's connection.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

const POOL_MAX = 2;
/** The pool, the NOTIFY listener, the link lease's own connection. */
const CONNECTION_BOUND = POOL_MAX + 1 + 1;
const REQUESTS = 200;
const ACCOUNTS = 5;
/** No request may take longer than this (the pool's acquire timeout is 5 s). */
const REQUEST_BOUND_MS = 30_000;

describe("bounded database pool under load", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let watcher: pg.Client;

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw-juliet");
    gw = await startTestGateway(server, { DB_POOL_MAX: String(POOL_MAX) });
    for (let i = 0; i < ACCOUNTS; i++) await gw.createAccount(`load${i}`);
    watcher = new pg.Client({ connectionString: gw.db.url });
    await watcher.connect();
  });
  after(async () => {
    await watcher?.end();
    await gw?.stop();
    await server?.stop();
  });

  /** Connections to the test database other than the watcher's own: all of them are the gateway's. */
  const gatewayConnections = async () =>
    Number((await watcher.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [gw.db.name])).rows[0].n);

  it(`answers ${REQUESTS} concurrent requests with 2xx or 503, and holds at most ${CONNECTION_BOUND} connections`, async () => {
    const samples: number[] = [await gatewayConnections()];
    let loading = true;
    const polling = (async () => {
      while (loading) {
        samples.push(await gatewayConnections());
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const started = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const account = `load${i % ACCOUNTS}`;
        const post = i % 2 === 0;
        const t0 = Date.now();
        const res = await fetch(`${gw.url}${post ? "/v1/messages" : "/v1/roster"}`, {
          method: post ? "POST" : "GET",
          headers: { authorization: `Bearer ${gw.token(account)}`, ...(post ? { "content-type": "application/json" } : {}) },
          body: post ? JSON.stringify({ to: "juliet@localhost", body: `load ${i}` }) : undefined,
          signal: AbortSignal.timeout(REQUEST_BOUND_MS),
        });
        const text = await res.text();
        return { i, post, status: res.status, text, retryAfter: res.headers.get("retry-after"), ms: Date.now() - t0 };
      }),
    );
    const elapsed = Date.now() - started;
    loading = false;
    await polling;

    assert.equal(outcomes.length, REQUESTS);
    const byStatus = new Map<number, number>();
    for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    const bad = outcomes.filter((o) => !(o.status === (o.post ? 202 : 200) || o.status === 503));
    assert.deepEqual(bad.map((o) => `#${o.i} ${o.status} ${o.text.slice(0, 200)}`), [], "only 2xx or 503");
    for (const o of outcomes.filter((x) => x.status === 503)) {
      assert.equal(JSON.parse(o.text).code, "database-unavailable", o.text);
      assert.ok(Number(o.retryAfter) >= 1, `503 without Retry-After: ${o.retryAfter}`);
    }
    const accepted = outcomes.filter((o) => o.status < 300).length;
    assert.ok(accepted > 0, "some requests were served");

    const max = Math.max(...samples);
    console.log(`pool: ${REQUESTS} requests in ${elapsed} ms, statuses ${JSON.stringify([...byStatus])}, slowest ${Math.max(...outcomes.map((o) => o.ms))} ms; ${samples.length} samples of pg_stat_activity, max ${max} connections`);
    assert.ok(samples.length >= 5, `sampled pg_stat_activity only ${samples.length} times`);
    assert.ok(max >= POOL_MAX, `the load never filled the pool (max ${max}): the bound was not exercised`);
    assert.ok(max <= CONNECTION_BOUND, `the gateway held ${max} connections to Postgres; at most ${CONNECTION_BOUND} expected`);

    // Every accepted message is stored: the pool served them, not just answered.
    let stored = 0;
    for (let a = 0; a < ACCOUNTS; a++) {
      const h = await gw.request("GET", "/v1/messages?with=juliet@localhost&limit=100", { token: gw.token(`load${a}`) });
      assert.equal(h.status, 200, h.text);
      stored += h.body.items.length;
    }
    assert.equal(stored, outcomes.filter((o) => o.post && o.status === 202).length);
  });
});
