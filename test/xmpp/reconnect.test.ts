// The component link's reconnect backoff with the default XMPP_RECONNECT_MAX: after an outage of
// the usual length of an XMPP server restart plus some margin (20 s), the link is back within a
// few seconds of the server, not after the next step of a long exponential backoff (the cap was
// 30 s: the link came back 7-12 s after the server). The outage is a relay in front of Prosody's
// component port that refuses connections (the backoff is ours, so one server kind is enough).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { loadConfig } from "../../src/config.js";
import { XmppLink } from "../../src/xmpp/link.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

const OUTAGE_MS = 20_000;
/** What "back within a few seconds" means: the cap, plus a connect and handshake. */
const BACK_WITHIN_MS = 6_000;

describe("component link reconnect with the default backoff cap", { timeout: 60_000 }, () => {
  let server: XmppServer;
  let gate: TcpRelay;
  let link: XmppLink;

  before(async () => {
    server = await startXmppServer("prosody");
    gate = new TcpRelay(server.componentPort);
    const port = await gate.listen();
    const { reconnectMaxMs, maxStanzaBytes } = loadConfig({ JWT_SECRET: "x".repeat(32), XMPP_SECRET: server.componentSecret }).xmpp;
    const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    link = new XmppLink({ service: `xmpp://127.0.0.1:${port}`, domain: server.componentDomain, secret: server.componentSecret, reconnectMaxMs, maxStanzaBytes, log: quiet });
    await link.start();
    await waitFor(() => link.online, 5000, "the link online");
  });
  after(async () => {
    await link?.stop();
    gate?.close();
    await server?.stop();
  });

  it(`is back within ${BACK_WITHIN_MS / 1000} s of the server after a ${OUTAGE_MS / 1000} s outage`, async () => {
    gate.cut();
    await waitFor(() => !link.online, 5000, "the link down");
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    assert.equal(link.online, false, "no connection got through while the server was away");
    gate.down = false;
    const reopened = Date.now();
    await waitFor(() => link.online, 40_000, "the link back");
    const ms = Date.now() - reopened;
    console.log(`[reconnect] link back ${ms} ms after the server, after a ${OUTAGE_MS} ms outage`);
    assert.ok(ms <= BACK_WITHIN_MS, `the link came back ${ms} ms after the server (at most ${BACK_WITHIN_MS})`);
  });
});
