/**
 * The harness's gateway process (scripts/harness/gateway-process.ts): start-up is over when the
 * gateway it started answers, not when anything on its port does. Another process's server there
 * (another test file's, handed the same port) made the harness take it for its own, while the
 * gateway it started failed to bind and exited: the test's requests were answered by another
 * gateway, from another database.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, getOnce, startGatewayProcess } from "../../scripts/harness/gateway-process.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";

describe("the harness's gateway process", () => {
  let server: XmppServer;
  let db: TestDatabase;
  let impostor: Server;
  let port: number;

  before(async () => {
    [server, db] = await Promise.all([startXmppServer("prosody"), createTestDatabase()]);
    port = await freePort();
    // Answers 200 to anything, /healthz and /readyz included, as a running gateway does.
    impostor = createServer((_req, res) => res.end('{"status":"ok","xmpp":"up","database":"up"}'));
    await new Promise<void>((r) => impostor.listen(port, "127.0.0.1", r));
  });
  after(async () => {
    impostor?.close();
    await db?.drop();
    await server?.stop();
  });

  it("a server of another process on the port is not taken for the gateway: the start fails, saying so", async () => {
    assert.equal((await getOnce(`http://127.0.0.1:${port}/healthz`)).status, 200, "the impostor answers");
    for (const waitFor of ["live", "ready"] as const) {
      await assert.rejects(startGatewayProcess(server, db.url, port, {}, { waitFor }), (err: Error) => {
        assert.match(err.message, /exited during start-up \(port \d+ was answered by another process meanwhile\)/);
        assert.match(err.message, /EADDRINUSE/, "the gateway's own words");
        return true;
      });
    }
    // The control: on a port of its own, the same start succeeds.
    const gp = await startGatewayProcess(server, db.url, await freePort());
    try {
      assert.equal((await getOnce(`${gp.url}/readyz`)).status, 200);
    } finally {
      await gp.stop();
    }
  });
});
