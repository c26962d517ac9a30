// PUT and GET /v1/presence (src/http/routes/presence.ts) as a client sees them: the answer of a PUT
// is what was set (unavailable presence carries a status only, RFC 6121 §4.5.1), and unavailable for
// a session that never existed makes none. On Prosody.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, uniq, type TestGateway } from "../helpers/gateway.js";

describe("PUT and GET /v1/presence", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw");
    gw = await startTestGateway(server, { SESSION_GRACE_SECONDS: "600" });
    juliet = await connectUser(server, "juliet", "pw", "balcony");
    await juliet.send(xml("iq", { type: "get", id: "roster" }, xml("query", { xmlns: "jabber:iq:roster" })));
    await juliet.waitFor((s) => s.attrs.id === "roster");
    await juliet.sendPresence();
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
});
