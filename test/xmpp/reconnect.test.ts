// The component link's reconnect backoff with the default XMPP_RECONNECT_MAX: after an outage of
// the length of an XMPP server restart plus some margin, the link is back within a few seconds of
// the server, not after the next step of a long exponential backoff. The outage is a relay in front
// of Prosody's component port that refuses connections (the backoff is ours, so one server kind is
// enough). Its length is chosen so the old 30 s cap always fails: attempts 250 ms doubling, each
// 75-100% of its step, put the sixth at most 15.75 s and the seventh at least 23.6 s after the
// cut, so a server back at 16.5 s waited at least 7.1 s; with a 5 s cap, at most 5 s.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { loadConfig } from "../../src/config.js";
import { XmppLink } from "../../src/xmpp/link.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";

const OUTAGE_MS = 16_500;
/** What "back within a few seconds" means: the 5 s cap, plus a connect and handshake on a busy machine. */
const BACK_WITHIN_MS = 6_500;

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
