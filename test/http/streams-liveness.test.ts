// Sessions of open streams are kept alive by one batched UPDATE per heartbeat interval (not one per
// stream): a session whose stream stays open outlives the expiry window (SESSION_GRACE_SECONDS, and
// 3 heartbeats for streams counted on an instance that died), one whose stream closed goes unavailable.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";

describe("batched session liveness", () => {
  let server: XmppServer;
  let gw: TestGateway;

  before(async () => {
    server = await startXmppServer("prosody");
    // Expiry after 3 s without a stream, or 3 s untouched with one (max(grace, 3 heartbeats)); sweeps every second.
    gw = await startTestGateway(server, { SSE_HEARTBEAT: "1s", SESSION_GRACE_SECONDS: "3" });
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("an open stream keeps its session available across the expiry window; a closed one expires", async () => {
    await gw.createAccount("vigil");
    const tok = gw.token("vigil");
    const sessions = async () => (await gw.request("GET", "/v1/sessions", { token: tok })).body.items as { resource: string; available: boolean; streams: number; lastSeenAt: string }[];
    const streams = await Promise.all(["kept", "dropped", "kept2"].map((r) => gw.sse(`/v1/events?resource=${r}`, tok)));
    for (const r of ["kept", "dropped", "kept2"]) assert.equal((await gw.request("PUT", `/v1/presence?resource=${r}`, { token: tok, body: { type: "available" } })).status, 200);
    await streams[1]!.close();
    await waitFor(async () => (await sessions()).find((s) => s.resource === "dropped")?.available === false, 10_000, "the closed session to expire");
    // Three times the window: without a heartbeat write, the open sessions would have expired by now.
    await new Promise((r) => setTimeout(r, 9000));
    const now = await sessions();
    for (const r of ["kept", "kept2"]) {
      const s = now.find((x) => x.resource === r)!;
      assert.equal(s.available, true, `${r} is still available`);
      assert.equal(s.streams, 1);
      assert.ok(Date.now() - Date.parse(s.lastSeenAt) < 2500, `${r} was seen within the last heartbeats (${s.lastSeenAt})`);
    }
    assert.equal(now.find((x) => x.resource === "dropped")?.streams, 0);
    await Promise.all([streams[0]!.close(), streams[2]!.close()]);
  });
});
