// PostgreSQL hung: it keeps the gateway's connections open and answers nothing (a network
// partition, a stopped server). Found by the ops audit of stop 65: /readyz gave no answer at all
// (API.md Operations: 503 naming the part that is down), so a load balancer's check timed out
// instead of reading "down". The gateway reaches PostgreSQL through a relay that holds every answer.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, getOnce, startGatewayProcess } from "../../scripts/harness/gateway-process.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

describe("PostgreSQL hung", () => {
  let server: XmppServer;
  let db: TestDatabase;
  before(async () => {
    server = await startXmppServer("prosody");
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
    await server?.stop();
  });

  it("/readyz answers 503 database down within a few seconds; /healthz 200", async () => {
    const relay = new TcpRelay(Number(new URL(db.url).port || 5432));
    const url = new URL(db.url);
    url.port = String(await relay.listen());
    const gp = await startGatewayProcess(server, url.toString(), await freePort(), { SHUTDOWN_DRAIN: "0" });
    try {
      assert.equal((await getOnce(`${gp.url}/readyz`)).status, 200);
      relay.hold(true);
      assert.equal((await getOnce(`${gp.url}/healthz`, 5000)).status, 200, "liveness does not depend on the database");
      const t0 = Date.now();
      const r = await getOnce(`${gp.url}/readyz`, 10_000);
      const took = Date.now() - t0;
      assert.equal(r.status, 503, `/readyz: ${r.status === 0 ? "no answer" : r.status} after ${took} ms ${r.text}`);
      assert.match(r.text, /"database":"down"/);
      assert.ok(took < 5000, `answered after ${took} ms`);
    } finally {
      relay.close();
      await gp.stop("SIGKILL");
    }
  });
});
