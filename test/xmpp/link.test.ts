// The component link's barrier (XmppLink.barrier): a ping from our domain to our own domain that
// the link answers and matches itself, with no iq handlers registered (so nothing else could
// answer it). Against Prosody and ejabberd, through a relay that can hold back what the server
// sends, so a barrier can be caught in flight.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { XmppLink } from "../../src/xmpp/link.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { KINDS } from "../helpers/servers.js";

const quiet = { info: () => undefined, warn: () => undefined };

for (const kind of KINDS) {
  describe(`component link barrier (${kind})`, { timeout: 60_000 }, () => {
    let server: XmppServer;
    let relay: TcpRelay;
    let link: XmppLink;
    let juliet: XmppUser;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      relay = new TcpRelay(server.componentPort);
      const port = await relay.listen();
      link = new XmppLink({ service: `xmpp://127.0.0.1:${port}`, domain: server.componentDomain, secret: server.componentSecret, reconnectMaxMs: 500, maxStanzaBytes: 65_536, log: quiet });
      await link.start();
      await waitFor(() => link.online, 5000, "the link online");
      juliet = await connectUser(server, "juliet", "pw", "x");
      await juliet.sendPresence();
    });
    after(async () => {
      await juliet?.stop();
      await link?.stop();
      relay?.close();
      await server?.stop();
    });

    const to = () => `juliet@${server.userDomain}/x`;
    const message = (body: string) => xml("message", { from: `romeo@${server.componentDomain}`, to: to(), type: "chat" }, xml("body", {}, body)).toString();

    it("confirms what was written before it, answering its own ping (no iq handler is registered)", async () => {
      assert.equal(link.write([message("before the barrier")]), true);
      assert.equal(await link.barrier(5000), true);
      // Routed before the barrier came back: Juliet has it, or is about to (her own stream is separate).
      await juliet.waitFor((s) => s.getChildText("body") === "before the barrier");
    });

    it("many concurrent barriers each come back, with no listener leak warning", async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
      process.on("warning", onWarning);
      try {
        const results = await Promise.all(Array.from({ length: 50 }, () => link.barrier(5000)));
        assert.equal(results.length, 50);
        assert.ok(results.every((ok) => ok), `${results.filter((ok) => !ok).length} of 50 barriers failed`);
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(warnings.filter((w) => w.includes("MaxListeners")), []);
      } finally {
        process.off("warning", onWarning);
      }
    });

    it("is false when the ping does not come back in time, and the next one is confirmed on its own", async () => {
      relay.hold(true);
      try {
        assert.equal(await link.barrier(300), false);
      } finally {
        relay.hold(false);
      }
      // The late ping and answer arrive now and are dropped; the next barrier is its own.
      assert.equal(await link.barrier(5000), true);
    });

    it("closes a connection whose server went silent and connects again; a server that answers keeps it (checkAlive)", async () => {
      const socket = link.xmpp.socket;
      // Answered: the same connection stays.
      link.checkAlive(0, 5000);
      await waitFor(async () => (await link.barrier(5000)) && link.xmpp.socket === socket, 5000, "a probe answered");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(link.online, true);
      assert.equal(link.xmpp.socket, socket, "the connection that answered is kept");
      // Silent (what the server sends is held, the connection open): closed once the probe goes unanswered.
      relay.hold(true);
      const offline = new Promise<void>((resolve) => link.once("offline", () => resolve()));
      try {
        link.checkAlive(0, 300);
        const late = new Promise<string>((resolve) => setTimeout(() => resolve("still online 5 s later"), 5000).unref());
        assert.equal(await Promise.race([offline.then(() => "closed"), late]), "closed");
      } finally {
        relay.hold(false);
      }
      await waitFor(() => link.online && link.xmpp.socket !== socket, 10_000, "connected again on a new connection");
      assert.equal(link.write([message("after the silent connection")]), true);
      await juliet.waitFor((s) => s.getChildText("body") === "after the silent connection");
    });

    // Last: it leaves the link stopped.
    it("a barrier in flight is false as soon as the link stops, not at its timeout", async () => {
      relay.hold(true);
      const started = Date.now();
      const pending = link.barrier(20_000);
      await link.stop();
      assert.equal(await pending, false);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      assert.equal(await link.barrier(5000), false, "a stopped link confirms nothing");
    });
  });
}
