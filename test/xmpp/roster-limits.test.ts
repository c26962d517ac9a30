// The roster's bounds (src/domain/roster-limits.ts), end to end: an account over HTTP and a real
// user on a real server. The rows that fill a roster or the strangers' requests are inserted
// straight into PostgreSQL (10,000 requests over HTTP would take the test's time, not the limit's).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { MAX_CONTACT_RESOURCES, MAX_PENDING_REQUESTS, MAX_ROSTER_ITEMS } from "../../src/domain/roster-limits.js";
import { startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { gatewaySentinel, receivedFrom } from "../helpers/sentinel.js";

for (const kind of ["prosody", "ejabberd"] as XmppServerKind[]) {
  describe(`roster limits (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;
    const JULIET = "juliet@localhost";

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      gw = await startTestGateway(server);
      juliet = await connectUser(server, "juliet", "pw", "balcony");
      // An interested resource (RFC 6121 §2.1.6): Prosody forwards her subscription answers only then.
      await juliet.send(xml("iq", { type: "get", id: "roster-1" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await juliet.waitFor((s: XmlElement) => s.attrs.id === "roster-1");
      await juliet.sendPresence();
    });
    after(async () => {
      await juliet?.stop();
      await gw?.stop();
      await server?.stop();
    });

    async function account(prefix: string) {
      const lp = uniq(prefix);
      await gw.createAccount(lp);
      const token = gw.token(lp, { resource: "phone" });
      const id = (await gw.running.db.pool.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [lp])).rows[0]!.id;
      const call = (method: string, path: string, body?: unknown) => gw.request(method, path, { token, body });
      return { jid: `${lp}@${gw.domain}`, id, call };
    }
    /** `n` contacts (in the roster) or strangers' requests (not), named filler-<i>@example.org. */
    async function fill(accountId: number, n: number, inRoster: boolean): Promise<void> {
      await gw.running.db.pool.query(
        `INSERT INTO roster_item (account_id, jid, groups, in_roster, pending_in, pending_in_at)
         SELECT $1, 'filler-' || g || '@example.org', '{}', $3, NOT $3, CASE WHEN $3 THEN NULL ELSE now() END FROM generate_series(1, $2) g`,
        [accountId, n, inRoster],
      );
    }
    /** What Juliet received from `from` since `start`, up to a sentinel through the gateway sent now. */
    async function receivedSince(from: string, start: number): Promise<string[]> {
      const end = await gatewaySentinel(juliet, gw.domain);
      return receivedFrom(juliet, from, start, end).map((s) => s.toString());
    }
    const refused = (r: { status: number; body: { code?: string } }, what: string) => {
      assert.equal(r.status, 409, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, "too-many-contacts", what);
    };

    it(`holds at most ${MAX_ROSTER_ITEMS} contacts: a new one is 409 too-many-contacts and sends nothing; an item already there still changes, and a removal makes room`, async () => {
      const r = await account("full");
      await fill(r.id, MAX_ROSTER_ITEMS - 1, true);
      const last = await r.call("PUT", "/v1/roster/last@example.org", { name: "the last place" });
      assert.equal(last.status, 201, last.text);
      // Juliet asks for the account's presence: her request waits outside the roster.
      await juliet.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.some((i: { jid: string }) => i.jid === JULIET), 5000, "Juliet's request");
      const start = juliet.stanzas.length;
      refused(await r.call("PUT", "/v1/roster/one-more@example.org"), "PUT of a new contact");
      refused(await r.call("POST", `/v1/roster/${JULIET}/subscribe`), "subscribe");
      refused(await r.call("POST", `/v1/roster/${JULIET}/approve`), "approving her request");
      refused(await r.call("POST", "/v1/roster/stranger@example.org/approve"), "a pre-approval");
      assert.deepEqual(await receivedSince(r.jid, start), [], "nothing reached Juliet");
      const requests = (await r.call("GET", "/v1/subscription-requests")).body.items as { jid: string }[];
      assert.deepEqual(requests.map((i) => i.jid), [JULIET], "her request still waits");
      const renamed = await r.call("PUT", "/v1/roster/filler-7@example.org", { name: "renamed" });
      assert.equal(renamed.status, 200, renamed.text);
      const roster = (await r.call("GET", "/v1/roster")).body.items as { jid: string }[];
      assert.equal(roster.length, MAX_ROSTER_ITEMS);
      assert.ok(!roster.some((i) => i.jid === "one-more@example.org" || i.jid === JULIET));

      assert.equal((await r.call("DELETE", "/v1/roster/filler-1@example.org")).status, 204);
      const approved = await r.call("POST", `/v1/roster/${JULIET}/approve`);
      assert.equal(approved.status, 200, approved.text);
      assert.equal(approved.body.subscription, "from");
      await juliet.waitFor((s: XmlElement) => s.is("presence") && s.attrs.from === r.jid && s.attrs.type === "subscribed");
    });

    it(`keeps at most ${MAX_PENDING_REQUESTS} strangers' requests: one more is answered resource-constraint (wait) and not kept, until the account answers one`, async () => {
      const r = await account("spammed");
      await fill(r.id, MAX_PENDING_REQUESTS, false);
      const start = juliet.stanzas.length;
      const id = uniq("sub-");
      await juliet.send(xml("presence", { to: r.jid, type: "subscribe", id }));
      const error = await juliet.waitFor((s: XmlElement) => s.is("presence") && s.attrs.type === "error" && s.attrs.id === id);
      assert.equal(error.attrs.from, r.jid);
      const condition = error.getChild("error");
      assert.equal(condition?.attrs.type, "wait");
      assert.ok(condition?.getChild("resource-constraint", "urn:ietf:params:xml:ns:xmpp-stanzas"), error.toString());
      assert.match(condition?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? "", /at most 1,000 subscription requests/);
      const requests = (await r.call("GET", "/v1/subscription-requests")).body.items as { jid: string }[];
      assert.equal(requests.length, MAX_PENDING_REQUESTS);
      assert.ok(!requests.some((i) => i.jid === JULIET), "her request is not kept");
      const events = (await r.call("GET", "/v1/events?since=0&limit=1000")).body.items as { event: string; data: { jid?: string } }[];
      assert.ok(!events.some((e) => e.event === "subscription" && e.data.jid === JULIET), "nor delivered");
      assert.deepEqual((await receivedSince(r.jid, start)).filter((s) => !s.includes('type="error"')), [], "and nothing else came back");

      // A denial frees a place: her next request is kept.
      assert.equal((await r.call("POST", "/v1/roster/filler-1@example.org/deny")).status, 200);
      await juliet.send(xml("presence", { to: r.jid, type: "subscribe" }));
      await waitFor(async () => (await r.call("GET", "/v1/subscription-requests")).body.items.some((i: { jid: string }) => i.jid === JULIET), 5000, "her request kept");
    });

    it(`keeps at most ${MAX_CONTACT_RESOURCES} resources of a contact's presence: a new one removes the least recently updated`, async () => {
      const r = await account("watcher");
      // The account is subscribed to Juliet's presence (RFC 6121 §4.4), and has 100 of her resources
      // (filler-<i>, updated i seconds ago): one more may come from her server at any time.
      await gw.running.db.pool.query("INSERT INTO roster_item (account_id, jid, groups, in_roster, subscription) VALUES ($1, $2, '{}', true, 'to')", [r.id, JULIET]);
      await gw.running.db.pool.query(
        `INSERT INTO contact_presence (account_id, jid, resource, updated_at)
         SELECT $1, $2, 'filler-' || g, now() - make_interval(secs => g) FROM generate_series(1, $3) g`,
        [r.id, JULIET, MAX_CONTACT_RESOURCES],
      );
      await juliet.send(xml("presence", { to: r.jid }, xml("status", {}, "on the balcony")));
      const resources = async () => ((await r.call("GET", "/v1/presence")).body.items as { jid: string; resources: { resource: string }[] }[]).find((i) => i.jid === JULIET)?.resources.map((x) => x.resource) ?? [];
      await waitFor(async () => (await resources()).includes("balcony"), 5000, "her presence from the new resource");
      const kept = await resources();
      assert.equal(kept.length, MAX_CONTACT_RESOURCES, kept.join(" "));
      assert.ok(!kept.includes(`filler-${MAX_CONTACT_RESOURCES}`), "the least recently updated went");
      assert.ok(kept.includes(`filler-${MAX_CONTACT_RESOURCES - 1}`) && kept.includes("filler-1"));
      // A resource already kept changes in place: nothing more goes.
      await juliet.send(xml("presence", { to: r.jid }, xml("show", {}, "away")));
      await waitFor(async () => ((await r.call("GET", "/v1/presence")).body.items as { jid: string; resources: { resource: string; show: string | null }[] }[]).find((i) => i.jid === JULIET)?.resources.some((x) => x.resource === "balcony" && x.show === "away") ?? false, 5000, "her change");
      assert.deepEqual((await resources()).sort(), [...kept].sort());
    });
  });
}
