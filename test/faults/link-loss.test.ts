// XMPP link loss: the XMPP server restarts, or stays away longer than the reconnect backoff cap,
// while clients keep posting. Posts are accepted meanwhile (queued), /readyz says 503, and after
// the link returns every accepted message reaches the user, in order, none lost. On Prosody and
// ejabberd.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { holdReconnect, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { FAULT_KINDS } from "../helpers/servers.js";
import { comeOnline } from "../helpers/xmpp-world.js";


for (const kind of FAULT_KINDS) {
  describe(`XMPP link loss (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    const sessions: XmppUser[] = [];

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      // A 2 s backoff cap lets Juliet log in again before the gateway's link returns, so what she
      // receives is live delivery in the gateway's order, not the server's offline-message flush.
      gw = await startTestGateway(server, { XMPP_RECONNECT_MAX: "2s" });
      await gw.createAccount("romeo");
    });
    after(async () => {
      for (const s of sessions) await s.stop();
      await gw?.stop();
      await server?.stop();
    });

    /** Juliet, logged in and available; messages that arrived while she was away come as offline messages. */
    async function julietOnline(resource: string): Promise<XmppUser> {
      const u = await connectUser(server, "juliet", "pw", resource);
      sessions.push(u);
      await comeOnline(u);
      return u;
    }
    const received = (): XmlElement[] => sessions.flatMap((s) => s.stanzas.filter((st) => st.is("message") && st.attrs.from?.startsWith(`romeo@${gw.domain}`) && !!st.getChildText("body")));

    async function readyzUntil(status: number, ms: number): Promise<boolean> {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if ((await gw.request("GET", "/readyz", { token: null })).status === status) return true;
        await new Promise((r) => setTimeout(r, 25));
      }
      return false;
    }

    /** Checks delivery: every body at least once, one id per body, first arrivals in post order. */
    function checkDelivery(prefix: string, posted: { body: string; id: string }[], exactlyOnce: boolean): { dupes: number } {
      const got = received().filter((m) => m.getChildText("body")!.startsWith(prefix));
      const firstSeen: string[] = [];
      const idsByBody = new Map<string, Set<string>>();
      for (const m of got) {
        const body = m.getChildText("body")!;
        if (!idsByBody.has(body)) firstSeen.push(body);
        idsByBody.set(body, (idsByBody.get(body) ?? new Set()).add(m.attrs.id!));
      }
      for (const p of posted) assert.deepEqual([...(idsByBody.get(p.body) ?? [])], [p.id], `${p.body}: delivered with its own id, and only that id`);
      assert.deepEqual(firstSeen, posted.map((p) => p.body), "in order, none lost");
      if (exactlyOnce) assert.equal(got.length, posted.length, "each exactly once");
      return { dupes: got.length - posted.length };
    }

    /**
     * Keeps the gateway from reconnecting until Juliet is back. Otherwise, under load, the link can
     * return first and ejabberd stores the first messages offline while Juliet's new session is
     * becoming available: its offline flush can miss one (a race inside the server: the message
     * then waits in the spool for her next login), and the test would measure the server's offline
     * storage instead of the gateway's delivery. That path has its own test: offline-storage.test.ts.
     */
    const holdGatewayLink = () => holdReconnect(gw);

    /** For a failure message: the posts not received, with their status as the gateway reports it. */
    async function missing(posted: { body: string; id: string }[], tok: string): Promise<string> {
      const got = new Set(received().map((m) => m.getChildText("body")));
      const lost = posted.filter((p) => !got.has(p.body));
      const statuses = await Promise.all(lost.slice(0, 10).map(async (p) => `${p.body}=${(await gw.request("GET", `/v1/messages/${p.id}`, { token: tok })).body.status}`));
      const online = sessions.map((s) => `${s.jid}:${s.stanzas.length} stanzas`).join(", ");
      return `${lost.length} of ${posted.length} (${statuses.join(" ")}); sessions ${online}`;
    }

    it("keeps accepting during a server restart in the middle of a stream of posts, then delivers everything in order", async () => {
      await julietOnline("a");
      const tok = gw.token("romeo");
      const posted: { body: string; id: string; whileDown: boolean }[] = [];
      let restarting: Promise<void> | null = null;
      let sawDown = false;
      for (let i = 0; i < 150; i++) {
        if (i === 40) {
          const release = holdGatewayLink();
          restarting = server.restart().then(async () => {
            await julietOnline("b");
            release();
          });
          sawDown = await readyzUntil(503, 5000);
        }
        const body = `r-${String(i).padStart(3, "0")}`;
        const whileDown = !gw.running.link.online;
        const r = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body }, headers: { "idempotency-key": body } });
        assert.equal(r.status, 202, r.text);
        posted.push({ body, id: r.body.id, whileDown });
      }
      await restarting;
      assert.ok(sawDown, "/readyz reported 503 while the link was down");
      assert.ok(posted.some((p) => p.whileDown), "some posts were accepted while the link was down");
      assert.ok(await readyzUntil(200, 15_000), "link back");
      await waitFor(() => new Set(received().map((m) => m.getChildText("body"))).size >= 150, 20_000, "all 150 delivered").catch(async (err: unknown) => {
        throw new Error(`${String(err)}; missing: ${await missing(posted, tok)}`);
      });
      const { dupes } = checkDelivery("r-", posted, false);
      console.log(`[link-loss ${kind}] restart: 150 posted, ${posted.filter((p) => p.whileDown).length} accepted while down, 0 lost, ${dupes} resent duplicates (same id)`);
    });

    it("holds messages while the server stays away longer than the backoff cap, then sends each exactly once, in order", async () => {
      const tok = gw.token("romeo");
      await server.kill();
      assert.ok(await readyzUntil(503, 5000));
      const posted: { body: string; id: string }[] = [];
      for (let i = 0; i < 40; i++) {
        const body = `k-${String(i).padStart(3, "0")}`;
        const r = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body } });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.body.status, "queued");
        posted.push({ body, id: r.body.id });
      }
      await new Promise((r) => setTimeout(r, 5000)); // 2.5 times the 2 s cap: several failed reconnects
      assert.equal((await gw.request("GET", "/readyz", { token: null })).status, 503);
      const st = await gw.request("GET", `/v1/messages/${posted[0]!.id}`, { token: tok });
      assert.equal(st.body.status, "queued");
      const release = holdGatewayLink();
      await server.restart();
      await julietOnline("c");
      release();
      assert.ok(await readyzUntil(200, 15_000), "link back after the long outage");
      await waitFor(() => received().filter((m) => m.getChildText("body")!.startsWith("k-")).length >= 40, 20_000, "all 40 delivered").catch(async (err: unknown) => {
        throw new Error(`${String(err)}; missing: ${await missing(posted, tok)}`);
      });
      // Once every message is recorded as sent nothing resends it (only queued rows are sent); a
      // sentinel message sent after that arrives behind anything written before it, resends included.
      const statuses = async () => Promise.all(posted.map(async (p) => (await gw.request("GET", `/v1/messages/${p.id}`, { token: tok })).body.status as string));
      await waitFor(async () => (await statuses()).every((st) => st === "sent"), 15_000, "all 40 recorded as sent");
      const sentinel = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "sentinel-k" } });
      assert.equal(sentinel.status, 202, sentinel.text);
      await waitFor(() => received().some((m) => m.attrs.id === sentinel.body.id), 10_000, "the sentinel delivered");
      checkDelivery("k-", posted, true);
    });
  });
}
