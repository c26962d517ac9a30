// An Idempotency-Key's 24 h were measured with two clocks: created_at is stamped by PostgreSQL,
// and the key was judged expired by the gateway's (Date.now()). An instance whose clock ran a few
// seconds ahead of the database's took a retry made inside the 24 h for a new request and sent the
// message again (README: a retry never duplicates). Found by the retention audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Messages } from "../../src/db/messages.js";
import { type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

const SKEW_MS = 10_000;

describe("idempotency key at its 24 h boundary, gateway clock 10 s ahead of the database's", () => {
  let world: XmppWorld<"juliet">;
  let gw: TestGateway;
  let tok: string;
  const realNow = Date.now;
  before(async () => {
    world = await startWorld("prosody", { juliet: "balcony" });
    ({ gw } = world);
    await gw.createAccount("romeo");
    tok = gw.token("romeo");
  });
  after(async () => {
    Date.now = realNow;
    await world?.stop();
  });

  it("a retry 5 s before the key's 24 h are over (by the database that stamped it) replays the first answer", async () => {
    const post = (body: unknown, key: string) => gw.request("POST", "/v1/messages", { token: tok, body, headers: { "idempotency-key": key } });
    const payload = { to: "juliet@localhost", body: "once only" };
    const first = await post(payload, "k-boundary");
    assert.equal(first.status, 202, first.text);
    // The message is 24 h less 5 s old by the database's clock.
    const aged = await gw.running.db.pool.query("UPDATE message SET created_at = localtimestamp - interval '24 hours' + interval '5 seconds' WHERE id = $1", [first.body.id]);
    assert.equal(aged.rowCount, 1);
    // This instance's clock runs 10 s ahead (NTP drift between hosts); PostgreSQL's does not.
    Date.now = () => realNow() + SKEW_MS;
    let retry;
    try {
      retry = await post(payload, "k-boundary");
    } finally {
      Date.now = realNow;
    }
    assert.equal(retry.status, 202, retry.text);
    assert.equal(retry.body.id, first.body.id, `the retry inside the 24 h made a second message ${retry.body.id} (replayed: ${retry.headers.get("idempotent-replayed")})`);
    assert.equal(retry.headers.get("idempotent-replayed"), "true");
    // Nor does the sweep that releases expired keys let this one go early by that instance's clock.
    Date.now = () => realNow() + SKEW_MS;
    try {
      await new Messages(gw.running.db.prisma, gw.running.db.pool).releaseExpiredKeys();
    } finally {
      Date.now = realNow;
    }
    const again = await post(payload, "k-boundary");
    assert.deepEqual([again.body.id, again.headers.get("idempotent-replayed")], [first.body.id, "true"], "a retry after the sweep, still inside the 24 h");
  });

  // The sending audit of stop 65: the item whose key had expired was inserted by a statement of its
  // own after the batch's others, and went out (and was stored) after the items that follow it.
  it("a batch whose first item's key is past its 24 h sends and stores its items in the batch's order", async () => {
    const tag = `exp-${Date.now()}`;
    const first = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: `${tag} first` }, headers: { "idempotency-key": `${tag}-k` } });
    assert.equal(first.status, 202, first.text);
    await world.users.juliet.waitFor((s) => s.is("message") && s.attrs.id === first.body.id, 10_000);
    const aged = await gw.running.db.pool.query("UPDATE message SET created_at = localtimestamp - interval '25 hours' WHERE id = $1", [first.body.id]);
    assert.equal(aged.rowCount, 1);
    const start = world.users.juliet.stanzas.length;
    const bodies = ["first", "second", "third"].map((b) => `${tag} ${b}`);
    const batch = await gw.request("POST", "/v1/messages/batch", { token: tok, body: { messages: bodies.map((body, i) => ({ to: "juliet@localhost", body, ...(i === 0 ? { idempotencyKey: `${tag}-k` } : {}) })) } });
    assert.equal(batch.status, 200, batch.text);
    const ids = (batch.body.results as { id: string }[]).map((r) => r.id);
    assert.equal(ids.length, 3);
    assert.notEqual(ids[0], first.body.id, "past its 24 h, the key makes a new message");
    await world.users.juliet.waitFor((s) => world.users.juliet.stanzas.indexOf(s) >= start && s.is("message") && s.getChildText("body") === bodies[2], 10_000);
    const wire = world.users.juliet.stanzas.slice(start).filter((s) => s.is("message") && s.getChildText("body")?.startsWith(tag)).map((s) => s.getChildText("body"));
    assert.deepEqual(wire, bodies, "sent in the batch's order");
    const history = await gw.request("GET", "/v1/messages?with=juliet@localhost&limit=10", { token: tok });
    const stored = (history.body.items as { id: string }[]).map((m) => m.id).filter((id) => ids.includes(id)).reverse();
    assert.deepEqual(stored, ids, "stored in the batch's order");
  });
});
