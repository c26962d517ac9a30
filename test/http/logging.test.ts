// Structured logs with request logging and debug level on: tokens and secrets never appear,
// whatever the request (valid token, bad token, errors, token minting).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/logger.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { JWT_SECRET, startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("logging", () => {
  let server: XmppServer;
  let gw: TestGateway;
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });

  before(async () => {
    server = await startXmppServer();
    gw = await startTestGateway(server, { LOG_LEVEL: "trace", LOG_REQUESTS: "true" }, undefined, createLogger("trace", sink));
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("writes JSON request logs that contain no token, JWT secret or component secret", async () => {
    await gw.createAccount("romeo");
    const tok = gw.token("romeo");
    const minted = await gw.request("POST", "/v1/tokens", { body: { account: "romeo" } });
    assert.equal(minted.status, 201);
    await gw.request("GET", "/v1/sessions", { token: tok });
    await gw.request("GET", "/v1/sessions", { token: `${tok}x` });
    await gw.request("POST", "/v1/messages", { token: tok, body: { to: "bad jid@@", body: "x" } });
    await gw.request("GET", "/v1/messages/not-a-uuid", { token: tok, headers: { cookie: `session=${tok}` } });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(lines.length > 10, `request logs were written (${lines.length})`);
    for (const l of lines) JSON.parse(l); // structured: every line is JSON
    const all = lines.join("\n");
    assert.match(all, /"url":"\/v1\/sessions"/, "requests are logged");
    for (const [what, secret] of [
      ["admin token", gw.adminToken],
      ["user token", tok],
      ["minted token", minted.body.token as string],
      ["JWT secret", JWT_SECRET],
      ["component secret", server.componentSecret],
      ["token signature", tok.split(".")[2]!],
    ] as const) {
      assert.ok(!all.includes(secret), `${what} appears in the logs`);
    }
  });
});
