// GET /v1/roster's ETag is "<ver>", a version counted per account, on one URL for every account.
// Found by the roster API audit of stop 65: with no Vary: Authorization and no Cache-Control, a
// browser's cache kept the roster by URL, revalidated it with If-None-Match under the next
// account's token, got 304 (that account's roster was at the same version), and showed account A's
// roster to account B (RFC 9110 §12.5.5; RFC 9111 §4). Vary: Authorization alone does not stop it:
// Chromium revalidates a cached answer whose Vary does not match with its validators all the same.
// Now nothing is stored (no-store); a client keeps the ETag itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromium, type Browser } from "playwright-core";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, uniq, type TestGateway } from "../helpers/gateway.js";

describe("GET /v1/roster validators across accounts", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let browser: Browser;
  before(async () => {
    server = await startXmppServer("prosody");
    gw = await startTestGateway(server);
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await server?.stop();
  });

  async function two() {
    const a = uniq("alice"), b = uniq("bob");
    await gw.createAccount(a);
    await gw.createAccount(b);
    const ta = gw.token(a), tb = gw.token(b);
    assert.equal((await gw.request("PUT", "/v1/roster/tybalt@localhost", { token: ta, body: { name: "Tybalt" } })).status, 201);
    assert.equal((await gw.request("PUT", "/v1/roster/juliet@localhost", { token: tb, body: { name: "Juliet" } })).status, 201);
    return { ta, tb };
  }

  it("varies on the credential and is not stored, on 200 and 304", async () => {
    const { ta, tb } = await two();
    const ra = await gw.request("GET", "/v1/roster", { token: ta });
    const rb = await gw.request("GET", "/v1/roster", { token: tb, headers: { "if-none-match": ra.headers.get("etag")! } });
    const again = await gw.request("GET", "/v1/roster", { token: ta, headers: { "if-none-match": ra.headers.get("etag")! } });
    assert.deepEqual([ra.status, again.status], [200, 304]);
    for (const r of [ra, rb, again]) {
      assert.equal(r.headers.get("vary"), "accept-encoding, authorization");
      assert.equal(r.headers.get("cache-control"), "no-store");
    }
  });

  it("a browser that switches account is shown each account's own roster", async () => {
    const { ta, tb } = await two();
    const page = await browser.newPage();
    await page.goto(`${gw.url}/healthz`);
    const read = (token: string) => page.evaluate(async (t) => {
      const r = await fetch("/v1/roster", { headers: { authorization: `Bearer ${t}` } });
      return { status: r.status, body: await r.json() } as { status: number; body: { items: { jid: string }[] } };
    }, token);
    const a = await read(ta);
    assert.deepEqual(a.body.items.map((i) => i.jid), ["tybalt@localhost"]);
    const b = await read(tb);
    assert.deepEqual(b.body.items.map((i) => i.jid), ["juliet@localhost"], "Bob's roster, not Alice's");
    // A page that keeps the ETag itself still gets its 304.
    const kept = await page.evaluate(async (t) => {
      const first = await fetch("/v1/roster", { headers: { authorization: `Bearer ${t}` } });
      const again = await fetch("/v1/roster", { headers: { authorization: `Bearer ${t}`, "if-none-match": first.headers.get("etag") ?? "" } });
      return [first.status, again.status];
    }, tb);
    assert.deepEqual(kept, [200, 304]);
    await page.close();
  });
});
