// PUT and GET /v1/presence (src/http/routes/presence.ts) as a client sees them: the answer of a PUT
// is what was set (unavailable presence carries a status only, RFC 6121 §4.5.1), unavailable for a
// session that never existed makes none, a status names each language once (RFC 5646 §2.1.1,
// RFC 6121 §4.7.2.2), and a contact's presence from her bare JID is listed with resource "" (v1's
// string), its presence event saying null. On Prosody.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { comeOnline } from "../helpers/xmpp-world.js";

describe("PUT and GET /v1/presence", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw");
    gw = await startTestGateway(server, { SESSION_GRACE_SECONDS: "600" });
    juliet = await connectUser(server, "juliet", "pw", "balcony");
    await comeOnline(juliet);
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  async function account() {
    const lp = uniq("romeo");
    await gw.createAccount(lp);
    const token = gw.token(lp, { resource: "phone" });
    const call = (method: string, path: string, body?: unknown) => gw.request(method, path, { token, body });
    const sessions = async () => ((await call("GET", "/v1/sessions")).body.items as { resource: string; available: boolean; show: string | null; priority: number }[]).map((s) => [s.resource, s.available, s.show, s.priority]);
    return { lp, jid: `${lp}@${gw.domain}`, token, call, sessions };
  }

  it("answers an unavailable PUT with what it set: no show, priority 0, the status it sent", async () => {
    const r = await account();
    assert.equal((await r.call("PUT", "/v1/presence", { show: "dnd", priority: 7 })).status, 200);
    const put = await r.call("PUT", "/v1/presence", { type: "unavailable", show: "away", priority: 5, status: { en: "bye" } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body, { resource: "phone", type: "unavailable", show: null, status: { en: "bye" }, priority: 0 });
    assert.deepEqual(await r.sessions(), [["phone", false, null, 0]]);
  });

  it("an unavailable PUT for a session that never existed creates none", async () => {
    const r = await account();
    const put = await r.call("PUT", "/v1/presence?resource=ghost", { type: "unavailable", status: "never here" });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body, { resource: "ghost", type: "unavailable", show: null, status: "never here", priority: 0 });
    assert.deepEqual(await r.sessions(), []);
    // Available presence still makes its session, and unavailable then ends its availability.
    assert.equal((await r.call("PUT", "/v1/presence?resource=desk", {})).status, 200);
    assert.equal((await r.call("PUT", "/v1/presence?resource=desk", { type: "unavailable" })).status, 200);
    assert.deepEqual(await r.sessions(), [["desk", false, null, 0]]);
  });

  it("refuses a language map naming one language twice, in a status, a body or a subject (400, the field named)", async () => {
    const r = await account();
    const cases: [method: string, path: string, body: unknown, field: string][] = [
      ["PUT", "/v1/presence", { status: { en: "a", EN: "b" } }, "body.status"],
      ["POST", "/v1/messages", { to: "juliet@localhost", body: { en: "a", EN: "b" } }, "body.body"],
      ["POST", "/v1/messages", { to: "juliet@localhost", body: "hi", subject: { "pt-BR": "a", "pt-br": "b" } }, "body.subject"],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await r.call(method, path, body);
      assert.equal(res.status, 400, res.text);
      assert.deepEqual([res.body.code, res.body.field], ["validation-failed", field], res.text);
      assert.match(res.body.detail, /names one language twice/, res.text);
    }
    const batch = await r.call("POST", "/v1/messages/batch", { messages: [{ to: "juliet@localhost", body: { de: "a", DE: "b" } }] });
    assert.deepEqual([batch.body.results[0].status, batch.body.results[0].field], [400, "body.messages.0.body"], batch.text);
    assert.deepEqual(await r.sessions(), [], "the refused PUT set nothing");
  });

  it("lists a contact's presence from her bare JID with resource \"\" (v1's string); its presence event says null", async () => {
    const r = await account();
    assert.equal((await r.call("POST", "/v1/roster/juliet@localhost/subscribe")).status, 202);
    await juliet.waitFor((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === r.jid);
    await juliet.send(xml("presence", { to: r.jid, type: "subscribed" }));
    await waitFor(async () => (await r.call("GET", "/v1/presence")).body.items.length === 1, 5000, "her presence after approval (§3.1.5)");
    // Presence from a bare JID (a component or a remote server may send one): as the link hands it over.
    gw.running.link.emit("stanza", xml("presence", { from: "juliet@localhost", to: r.jid }, xml("show", {}, "away")));
    let resources: { resource: string | null; show: string | null }[] = [];
    await waitFor(async () => (resources = (await r.call("GET", "/v1/presence")).body.items[0].resources).length === 2, 5000, "the bare JID's presence stored");
    assert.deepEqual(
      resources.map((x) => [x.resource, x.show]),
      [
        ["", "away"],
        ["balcony", null],
      ],
    );
    const events = (await r.call("GET", "/v1/events?since=0&limit=1000")).body.items as { event: string; data: { from: string; resource: string | null } }[];
    assert.equal(events.find((e) => e.event === "presence" && e.data.from === "juliet@localhost")?.data.resource, null);
  });
  it("a presence change, a stream or a ticket that meets the account's deletion is 2xx or 404 account-not-found, never 500", async () => {
    const answers = new Map<string, number>();
    const count = (what: string, status: number) => answers.set(`${what} ${status}`, (answers.get(`${what} ${status}`) ?? 0) + 1);
    for (let round = 0; round < 10; round++) {
      const a = await account();
      const stream = async (i: number) => {
        const ctl = new AbortController();
        const r = await fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${a.token}`, accept: "text/event-stream", "balcony-resource": `s${i}` }, signal: ctl.signal });
        ctl.abort();
        return r.status;
      };
      const [deleted, ...rest] = await Promise.all([
        gw.request("DELETE", `/v1/accounts/${a.lp}`),
        ...[0, 1, 2, 3].map((i) => gw.request("PUT", "/v1/presence", { token: a.token, headers: { "balcony-resource": `p${i}` }, body: { show: "chat" } }).then((r) => ["presence", r.status] as const)),
        ...[0, 1, 2, 3].map(async (i) => ["stream", await stream(i)] as const),
        ...[0, 1].map((i) => gw.request("POST", "/v1/events/tickets", { token: a.token, headers: { "balcony-resource": `t${i}` }, body: {} }).then((r) => ["ticket", r.status] as const)),
      ]);
      assert.equal((deleted as { status: number }).status, 204);
      for (const [what, status] of rest as (readonly [string, number])[]) count(what, status);
    }
    const seen = [...answers.keys()].sort();
    assert.deepEqual(seen.filter((k) => !/ (200|201|404)$/.test(k)), [], `answers: ${JSON.stringify([...answers])}`);
    // The race was met: some requests came after the deletion (404), and the rest before it.
    assert.ok(seen.some((k) => k.endsWith(" 404")), `no request met the deletion: ${JSON.stringify([...answers])}`);
  });
});
