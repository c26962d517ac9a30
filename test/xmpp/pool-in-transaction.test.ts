// A transaction never waits for a second pool connection (the concurrency audit), end to end on
// Prosody and ejabberd. An inbound batch that takes the account's lock (a subscription request)
// and then read something on a connection of its own (a session for a message to a full JID,
// an account or blocklist the cache missed) waited for the pool, while the account's HTTP
// requests held every other connection, waiting on that lock: nothing moved until the pool's
// 5 s connect timeout, and most of them failed 503. (test/db/in-transaction-reads.test.ts pins
// the reads themselves, on a pool of one connection.)
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver } from "../helpers/account-driver.js";
import { type TestGateway } from "../helpers/gateway.js";
import { gatewaySentinel } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

const JULIET = "juliet@localhost";
/** Below the pool's 5 s connect timeout, with room for a slow machine. */
const SLOWEST_MS = 4_000;

type Answer = { what: string; status: number; ms: number };

for (const kind of KINDS) {
  describe(`no transaction waits for the pool (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let gw: TestGateway;
    let juliet: XmppUser;
    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { roster: true });
      gw = world.gw;
      ({ juliet } = world.users);
    });
    after(() => world?.stop());

    const timed = (what: string, t0: number, p: Promise<{ status: number }>): Promise<Answer> => p.then((r) => ({ what, status: r.status, ms: Date.now() - t0 }));

    it("stores a subscription request and messages to a full JID while 30 roster changes of the account run: none fails or waits for the pool", async () => {
      const r = await accountDriver(gw, { resource: "res1" });
      assert.equal((await r.call("PUT", "/v1/presence", { type: "available" })).status, 200);
      const bodies: string[] = [];
      const t0 = Date.now();
      const answers: Promise<Answer>[] = [];
      for (let i = 0; i < 30; i++) {
        answers.push(timed("roster", t0, r.call("PUT", `/v1/roster/${encodeURIComponent(`c${i}@localhost`)}`, { name: `c${i}` })));
        if (i % 3 === 2) {
          bodies.push(`to-full-${i}`);
          void juliet.send(xml("presence", { to: r.jid, type: "subscribe" }));
          void juliet.send(xml("message", { to: `${r.jid}/res1`, type: "chat", id: `to-full-${i}` }, xml("body", {}, `to-full-${i}`)));
        }
      }
      const res = await Promise.all(answers);
      assert.deepEqual(res.filter((a) => a.status !== 201), [], "every roster change made");
      assert.ok(Math.max(...res.map((a) => a.ms)) < SLOWEST_MS, `no answer waited for the pool: ${JSON.stringify(res.map((a) => a.ms))}`);
      await gatewaySentinel(juliet, gw.domain, 15_000);
      const stored = (await r.history(JULIET)).map((m) => m.body);
      assert.deepEqual(bodies.filter((b) => !stored.includes(b)), [], "every message stored");
    });
  });
}
