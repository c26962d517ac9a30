// Postgres outage: the database stops and comes back while the gateway runs. Meanwhile requests
// get 503 problems and inbound stanzas are bounced with a temporary error (never silently
// dropped); afterwards the gateway recovers by itself and nothing it acknowledged is lost.
// Uses a PostgreSQL of its own (embedded, on a free port), so stopping it disturbs no other test.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import xml, { type Element } from "@xmpp/xml";
import { startEmbeddedPostgres, type EmbeddedDb } from "../../src/db/embedded.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { freePort } from "../../scripts/harness/gateway-process.js";
import { FAULT_KINDS } from "../helpers/servers.js";


for (const kind of FAULT_KINDS) {
  describe(`postgres outage (${kind})`, () => {
    let dir: string;
    let port: number;
    let pg: EmbeddedDb;
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "balcony-pg-outage-"));
      await chmod(dir, 0o755);
      port = await freePort();
      pg = await startEmbeddedPostgres(join(dir, "data"), port, () => undefined);
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      gw = await startTestGateway(server, {}, { url: pg.url, name: "balcony", drop: async () => undefined });
      juliet = await connectUser(server, "juliet", "pw", "o");
      await juliet.sendPresence();
    });
    after(async () => {
      await juliet?.stop();
      await gw?.stop();
      await pg?.stop().catch(() => undefined);
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it("answers 503 while the database is down, bounces inbound stanzas, and recovers without a restart, losing nothing", async () => {
      await gw.createAccount("romeo");
      const tok = gw.token("romeo");
      const before: string[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: `before ${i}` } });
        assert.equal(r.status, 202);
        before.push(r.body.id);
      }
      await juliet.send(xml("message", { to: `romeo@${gw.domain}`, type: "chat", id: "in-before" }, xml("body", {}, "stored before")));
      await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: tok })).body.items.length === 1, 5000, "inbound stored");

      await pg.stop();
      const post = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "during" } });
      assert.equal(post.status, 503, post.text);
      assert.equal(post.body.code, "database-unavailable");
      assert.match(post.headers.get("content-type") ?? "", /problem\+json/);
      for (const path of [`/v1/messages/${before[0]}`, "/v1/roster", "/v1/events?since=0", "/v1/sessions"]) {
        const r = await gw.request("GET", path, { token: tok });
        assert.equal(r.status, 503, `${path}: ${r.text}`);
        assert.equal(r.body.code, "database-unavailable", path);
      }
      const ready = await gw.request("GET", "/readyz", { token: null });
      assert.deepEqual([ready.status, ready.body.database, ready.body.xmpp], [503, "down", "up"]);
      assert.equal((await gw.request("GET", "/healthz", { token: null })).status, 200);
      // An inbound message cannot be stored: its sender is told to retry, it is not dropped in silence.
      await juliet.send(xml("message", { to: `romeo@${gw.domain}`, type: "chat", id: "in-during" }, xml("body", {}, "lost?")));
      const bounce = (await juliet.waitFor((s) => s.attrs.id === "in-during" && s.attrs.type === "error", 10_000)) as unknown as Element;
      assert.equal(bounce.getChild("error")?.attrs.type, "wait");

      pg = await startEmbeddedPostgres(join(dir, "data"), port, () => undefined);
      await waitFor(async () => (await gw.request("GET", "/readyz", { token: null })).status === 200, 15_000, "ready again");
      const after = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "after" } });
      assert.equal(after.status, 202, after.text);
      await juliet.waitFor((s) => s.attrs.id === after.body.id);
      for (const id of before) assert.equal((await gw.request("GET", `/v1/messages/${id}`, { token: tok })).status, 200);
      // Live events work again (the LISTEN connection came back): a stream sees a new inbound message.
      const stream = await gw.sse("/v1/events?since=0", tok);
      await juliet.send(xml("message", { to: `romeo@${gw.domain}`, type: "chat", id: "in-after" }, xml("body", {}, "stored after")));
      await stream.waitFor((ev) => ev.some((e) => (e.json as { body?: string }).body === "stored after"), 10_000, "live event after recovery");
      assert.deepEqual(stream.events.filter((e) => e.event === "message").map((e) => (e.json as { body: string }).body), ["stored before", "stored after"]);
      await stream.close();
    });
  });
}
