// The sessions an account may have (src/domain/session-limits.ts MAX_SESSIONS, trigger
// session_room), end to end: an account over HTTP, and a real user subscribed to its presence on a
// real server. The bound is the gateway's own, whatever the server: Prosody alone. The sessions
// that fill the account's place are rows inserted straight into PostgreSQL.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { MAX_SESSIONS } from "../../src/domain/session-limits.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

describe("session limits (prosody)", () => {
  let world: XmppWorld<"juliet">;
  let gw: TestGateway;
  let juliet: XmppUser;
  const JULIET = "juliet@localhost";

  before(async () => {
    // An interested resource (RFC 6121 §2.1.6): Prosody forwards her subscription answers only then.
    world = await startWorld("prosody", { juliet: "balcony" }, { roster: true });
    ({ gw, users: { juliet } } = world);
  });
  after(async () => {
    await world?.stop();
  });

  async function account(prefix: string) {
    const lp = uniq(prefix);
    await gw.createAccount(lp);
    const token = gw.token(lp);
    const id = (await gw.running.db.pool.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [lp])).rows[0]!.id;
    const call = (method: string, path: string, body?: unknown) => gw.request(method, path, { token, body });
    const resources = async () => (await gw.running.db.pool.query<{ resource: string }>("SELECT resource FROM session WHERE account_id = $1 ORDER BY resource", [id])).rows.map((r) => r.resource);
    return { jid: `${lp}@${gw.domain}`, id, token, call, resources };
  }
  /**
   * `n` sessions, filler-<i>: available ones seen now (the grace sweep leaves them be), gone ones
   * (unavailable, no stream) filler-<i> last seen i seconds ago.
   */
  const fill = (accountId: number, n: number, available: boolean) =>
    gw.running.db.pool.query(
      `INSERT INTO session (account_id, resource, available, last_seen_at)
       SELECT $1, 'filler-' || g, $3, now() - make_interval(secs => CASE WHEN $3 THEN 0 ELSE g END) FROM generate_series(1, $2) g`,
      [accountId, n, available],
    );
  /** What Juliet received from `from` since `start`, up to a sentinel through the gateway sent now. */
  async function receivedSince(from: string, start: number): Promise<string[]> {
    const end = await gatewaySentinel(juliet, gw.domain);
    return receivedFrom(juliet, from, start, end).map((s) => s.toString());
  }
  const presenceFrom = (full: string, type?: string) => (s: XmlElement) => s.is("presence") && s.attrs.from === full && s.attrs.type === type;

  it(`has at most ${MAX_SESSIONS} available sessions: one more PUT /v1/presence is 409 too-many-sessions and sends nothing; those available still change, and one gone makes room`, async () => {
    const a = await account("busy");
    // Juliet is subscribed to the account's presence (RFC 6121 §3.1): she hears each session's.
    await juliet.send(xml("presence", { to: a.jid, type: "subscribe" }));
    await waitFor(async () => (await a.call("GET", "/v1/subscription-requests")).body.items.some((i: { jid: string }) => i.jid === JULIET), 5000, "Juliet's request");
    assert.equal((await a.call("POST", `/v1/roster/${JULIET}/approve`)).status, 200);
    await juliet.waitFor(presenceFrom(a.jid, "subscribed"));

    await fill(a.id, MAX_SESSIONS - 1, true);
    const last = await a.call("PUT", "/v1/presence?resource=last", { status: "the last place" });
    assert.equal(last.status, 200, last.text);
    await juliet.waitFor(presenceFrom(`${a.jid}/last`));

    const start = juliet.stanzas.length;
    const more = await a.call("PUT", "/v1/presence?resource=one-more", { show: "chat" });
    assert.equal(more.status, 409, more.text);
    assert.equal(more.body.code, "too-many-sessions");
    assert.match(more.body.detail, new RegExp(`at most ${MAX_SESSIONS} available sessions`));
    const changed = await a.call("PUT", "/v1/presence?resource=last", { show: "away" });
    assert.equal(changed.status, 200, changed.text);
    const heard = await receivedSince(a.jid, start);
    assert.equal(heard.length, 1, heard.join("\n"));
    assert.match(heard[0]!, /from="[^"]+\/last"/);
    assert.match(heard[0]!, /<show>away<\/show>/);
    assert.ok(!(await a.resources()).includes("one-more"), "no session made");

    // A session going unavailable makes room for another.
    assert.equal((await a.call("PUT", "/v1/presence?resource=filler-1", { type: "unavailable" })).status, 200);
    const now = await a.call("PUT", "/v1/presence?resource=one-more", { show: "chat" });
    assert.equal(now.status, 200, now.text);
    await juliet.waitFor(presenceFrom(`${a.jid}/one-more`));
  });

  it(`keeps at most ${MAX_SESSIONS} sessions: a new one, by stream or presence, removes the least recently seen gone ones, never a live one`, async () => {
    const a = await account("many");
    await fill(a.id, MAX_SESSIONS, false);
    // The two least recently seen turn live (seen now, so the grace sweep leaves them be): one
    // available, one with a stream open. Both are kept.
    await gw.running.db.pool.query(`UPDATE session SET available = true, last_seen_at = now() WHERE account_id = $1 AND resource = 'filler-${MAX_SESSIONS}'`, [a.id]);
    await gw.running.db.pool.query(`UPDATE session SET streams = 1, last_seen_at = now() WHERE account_id = $1 AND resource = 'filler-${MAX_SESSIONS - 1}'`, [a.id]);

    const stream = await gw.sse("/v1/events?resource=fresh", a.token);
    try {
      assert.equal(stream.status, 200);
      let rows = await a.resources();
      assert.equal(rows.length, MAX_SESSIONS, rows.join(" "));
      assert.ok(rows.includes("fresh"));
      assert.ok(!rows.includes(`filler-${MAX_SESSIONS - 2}`), "the least recently seen gone session went");
      for (const kept of [MAX_SESSIONS, MAX_SESSIONS - 1, MAX_SESSIONS - 3, 1]) assert.ok(rows.includes(`filler-${kept}`), `filler-${kept} kept`);

      const set = await a.call("PUT", "/v1/presence?resource=set", {});
      assert.equal(set.status, 200, set.text);
      rows = await a.resources();
      assert.equal(rows.length, MAX_SESSIONS, rows.join(" "));
      assert.ok(rows.includes("set") && rows.includes("fresh"));
      assert.ok(!rows.includes(`filler-${MAX_SESSIONS - 3}`), "then the next least recently seen");
      assert.ok(rows.includes(`filler-${MAX_SESSIONS - 4}`));

      // A session already there, gone or not, takes no one's place when it comes back.
      const back = await gw.sse(`/v1/events?resource=filler-1`, a.token);
      assert.equal(back.status, 200);
      await back.close();
      assert.deepEqual(await a.resources(), rows);
      const listed = (await a.call("GET", "/v1/sessions")).body.items as { resource: string }[];
      assert.equal(listed.length, MAX_SESSIONS);
    } finally {
      await stream.close();
    }
  });
});
