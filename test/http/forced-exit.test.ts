// src/serve.ts ends a close that hangs 10 s after the drain (exit 1), and says what the close was
// waiting for: an operator whose instance took 15 s to stop learns which part held it. Here a
// request whose body never finishes keeps the HTTP server's close waiting (Node's requestTimeout
// is 300 s), past the drain (SHUTDOWN_DRAIN 1 s) and the 10 s after it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import jwt from "jsonwebtoken";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, JWT_SECRET, startGatewayProcess } from "../../scripts/harness/gateway-process.js";

describe("a close that hangs", () => {
  let server: XmppServer;
  let db: TestDatabase;
  before(async () => {
    server = await startXmppServer();
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
    await server?.stop();
  });

  it("exits 1 10 s after the drain, naming what it waited for", async () => {
    const gp = await startGatewayProcess(server, db.url, await freePort(), { SHUTDOWN_DRAIN: "1s", LOG_LEVEL: "info", AUTO_PROVISION: "true" });
    const token = jwt.sign({ sub: "romeo" }, JWT_SECRET, { expiresIn: "1h" });
    // Half a body: the request stays in flight until the client sends the rest, which it never does.
    const req = request(`${gp.url}/v1/messages`, { method: "POST", agent: false, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": "100" } });
    req.on("error", () => {});
    req.flushHeaders();
    req.write('{"to":"juliet@localhost",');
    await new Promise((r) => setTimeout(r, 200));
    const signalled = Date.now();
    const exit = await gp.stop("SIGTERM");
    const took = Date.now() - signalled;
    req.destroy();
    assert.equal(exit, "1", gp.output());
    assert.ok(took >= 11_000 && took < 20_000, `exited ${took} ms after the signal: the drain (1 s) and 10 s more`);
    const forced = gp.output().split("\n").filter((l) => l.includes("did not finish")).map((l) => JSON.parse(l) as { waitingFor?: string; level: number });
    assert.deepEqual(forced.map((e) => [e.level, e.waitingFor]), [[50, "requests in flight"]], gp.output());
  });
});
