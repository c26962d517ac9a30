// The XMPP server stops reading the component link (a stalled server: its socket's window fills)
// while HTTP clients keep posting (the load audit). What the gateway buffers for the link stays
// bounded (src/services/ports.ts LINK_BACKLOG_BYTES: the messages are durable in PostgreSQL and
// wait there; they were 28 MiB in the socket's buffer, growing with every post), and everything is
// delivered once, in order, when the server reads again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";

describe("a stalled XMPP server", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let relay: TcpRelay;
  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw-juliet");
    relay = new TcpRelay(Number(new URL(server.componentService).port));
    const port = await relay.listen();
    gw = await startTestGateway(server, { XMPP_SERVICE: `xmpp://127.0.0.1:${port}` });
    juliet = await connectUser(server, "juliet", "pw-juliet", "stall");
    await juliet.sendPresence();
  });
  after(async () => {
    await juliet?.stop();
    relay?.close();
    await gw?.stop();
    await server?.stop();
  });

  it("bounded link buffer while the server reads nothing; every message delivered in order after", async () => {
    await gw.createAccount("romeo");
    const token = gw.token("romeo");
    const start = juliet.stanzas.length;
    relay.stall(true);
    const pad = "y".repeat(8000);
    const want: string[] = [];
    for (let b = 0; b < 10; b++) {
      const msgs = Array.from({ length: 400 }, (_, i) => ({ to: "juliet@localhost", body: `s${String(b * 400 + i).padStart(5, "0")} ${pad}` }));
      want.push(...msgs.map((m) => m.body.slice(0, 6)));
      const r = await gw.request("POST", "/v1/messages/batch", { token, body: { messages: msgs } });
      assert.equal(r.status, 200, r.text.slice(0, 200));
    }
    await sleep(1000);
    const buffered = gw.running.link.xmpp.socket?.writableLength ?? 0;
    assert.ok(gw.running.link.online, "the link stayed up: the bound is not a reconnect's");
    relay.stall(false);
    const bodies = () => juliet.stanzas.slice(start).filter((s) => s.is("message") && String(s.attrs.from).startsWith("romeo@")).map((s) => s.getChildText("body")!.slice(0, 6));
    await waitFor(() => new Set(bodies()).size >= want.length, 120_000, "all delivered").catch((e: unknown) => {
      throw new Error(`${String(e)}: ${new Set(bodies()).size}/${want.length}`);
    });
    const seen = new Set<string>();
    const first = bodies().filter((b) => !seen.has(b) && seen.add(b));
    assert.deepEqual(first, want, "first copies in order");
    assert.equal(bodies().length, first.length, "none twice");
    // The bound, and one batch more written before it was reached (an HTTP batch of 400 x 8 KB at once).
    assert.ok(buffered < 8 * 1048576, `${(buffered / 1048576).toFixed(1)} MiB buffered for a link that reads nothing`);
  });
});
