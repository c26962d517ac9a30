// `balcony doctor`'s own component connection (src/xmpp/probe.ts) pointed at the XMPP server's
// client port, the likeliest slip in XMPP_SERVICE: the fix it gives must be to change
// XMPP_SERVICE, not to declare a component that is declared already. Prosody's client port
// answers host-unknown ("does not serve"), ejabberd's invalid-namespace (RFC 6120 §4.9.3.10).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { probeFix } from "../../src/cli/doctor-checks.js";
import { probeComponent } from "../../src/xmpp/probe.js";
import { KINDS } from "../helpers/servers.js";

for (const kind of KINDS) {
  describe(`doctor's component probe (${kind})`, () => {
    let server: XmppServer;
    before(async () => {
      server = await startXmppServer(kind);
    });
    after(async () => {
      await server?.stop();
    });

    it("at the client port says to set XMPP_SERVICE to the component port", async () => {
      const service = `xmpp://127.0.0.1:${server.c2sPort}`;
      const probe = await probeComponent({ service, domain: server.componentDomain, secret: server.componentSecret, timeoutMs: 10_000 });
      assert.equal(probe.ok, false);
      assert.ok(!probe.ok);
      const { detail, fix } = probeFix(probe.failure, { service, domain: server.componentDomain }, null);
      assert.match(fix, /set XMPP_SERVICE to the (XMPP server's )?component port/, `${probe.failure}: ${detail}; fix: ${fix}`);
    });

    it("at the component port connects (the same secret and domain)", async () => {
      const probe = await probeComponent({ service: server.componentService, domain: server.componentDomain, secret: server.componentSecret, timeoutMs: 10_000 });
      assert.equal(probe.ok, true, JSON.stringify(probe));
    });
  });
}
