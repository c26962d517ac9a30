// A note to self (found by the conversations audit of stop 64): a message an account sends to its
// own JID goes out over the link, and its XMPP server routes it back to the component. Stored again
// as received, it was twice in the history and counted unread. The account sent it: its outbound
// row is the copy its sessions see (RFC 6121 §8.5.3), as of any message it sends: the echo is dropped.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { accountDriver } from "../helpers/account-driver.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;

for (const kind of KINDS) {
  describe(`a note to self (${kind})`, () => {
    let server: XmppServer | undefined;
    let gw: TestGateway | undefined;
    before(async () => {
      server = await startXmppServer(kind);
      gw = await startTestGateway(server);
    });
    after(async () => {
      await gw?.stop();
      await server?.stop();
    });

    for (const addressee of ["bare", "full"] as const) {
      it(`to its own ${addressee} JID: stored once, as sent, and not unread`, async () => {
        const r = await accountDriver(gw!, { waitMs: WAIT });
        const other = await accountDriver(gw!, { prefix: "juliet", waitMs: WAIT });
        const id = await r.send({ to: addressee === "bare" ? r.jid : `${r.jid}/phone`, body: "buy milk" });
        // The sentinel: a message to another account of the gateway takes the same way back, after the echo.
        const sentinel = await r.send({ to: other.jid, body: "sentinel" });
        await other.until("the sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
        await waitFor(async () => (await r.view(sentinel)).status !== "queued", WAIT, "the sentinel sent");
        const history = await r.history(r.jid);
        assert.deepEqual(history.map((m) => [m.id, m.direction]), [[id, "out"]], "one copy, the one sent");
        const evs = await r.events();
        assert.deepEqual(evs.filter((e) => e.event === "message" && e.data.body === "buy milk"), [], "no message received: it was sent");
        const c = await r.call("GET", "/v1/conversations");
        const self = (c.body.items as { with: string; unread: number }[]).filter((x) => x.with === r.jid);
        assert.deepEqual(self.map((x) => x.unread), [0]);
      });
    }
  });
}
