// One invalid session resourcepart (a control character) has one problem code wherever a request
// names it. Found by the roster API audit of stop 65: PUT /v1/presence?resource= answered
// invalid-text (its query schema checked it as text first), the Balcony-Resource header and
// DELETE /v1/sessions/{resource} invalid-jid (API.md Errors: a stable, machine-readable code).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { accountDriver } from "../helpers/account-driver.js";

describe("a bad resourcepart has one problem code", () => {
  let server: XmppServer;
  let gw: TestGateway;
  before(async () => {
    server = await startXmppServer("prosody");
    gw = await startTestGateway(server);
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("in the query, a header and the path: 400 invalid-jid naming where", async () => {
    const r = await accountDriver(gw);
    const q = await gw.request("PUT", "/v1/presence?resource=%07", { token: r.token, body: {} });
    const h = await gw.request("PUT", "/v1/presence", { token: r.token, body: {}, headers: { "balcony-resource": "%07" } });
    const d = await gw.request("DELETE", "/v1/sessions/%07", { token: r.token });
    assert.deepEqual(
      [q, h, d].map((x) => [x.status, x.body.code, x.body.field]),
      [
        [400, "invalid-jid", "querystring.resource"],
        [400, "invalid-jid", "headers.balcony-resource"],
        [400, "invalid-jid", "params.resource"],
      ],
    );
    // A good one in the query is still taken.
    const ok = await gw.request("PUT", "/v1/presence?resource=desk", { token: r.token, body: {} });
    assert.deepEqual([ok.status, ok.body.resource], [200, "desk"]);
  });
});
