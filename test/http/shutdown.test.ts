// Graceful shutdown and restart: streams are told when to retry, accepted messages are kept,
// sessions survive, and a restart within the grace period does not flap presence.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";

describe("shutdown and restart", () => {
  let server: XmppServer;
  let db: TestDatabase;
  let gw: TestGateway;
  let juliet: XmppUser;
  const env = { SESSION_GRACE_SECONDS: "5", SSE_RETRY: "700ms" };

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw");
    db = await createTestDatabase();
    gw = await startTestGateway(server, env, db);
    juliet = await connectUser(server, "juliet", "pw", "b");
    await juliet.send(xml("iq", { type: "get", id: "r1" }, xml("query", { xmlns: "jabber:iq:roster" })));
    await juliet.waitFor((s) => s.attrs.id === "r1");
    await juliet.sendPresence();
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await db?.drop();
    await server?.stop();
  });

  it("ends streams with a retry hint, keeps accepted messages and sessions, and does not flap presence across a quick restart", async () => {
    await gw.createAccount("romeo");
    const tok = gw.token("romeo", { resource: "phone" });
    const jid = `romeo@${gw.domain}`;
    // Juliet subscribes to Romeo; Romeo is online on "phone" with a stream open.
    await juliet.send(xml("presence", { to: jid, type: "subscribe" }));
    await waitFor(async () => (await gw.request("GET", "/v1/subscription-requests", { token: tok })).body.items.length === 1, 5000, "request");
    await gw.request("POST", "/v1/roster/juliet@localhost/approve", { token: tok });
    const stream = await gw.sse("/v1/events", tok);
    await gw.request("PUT", "/v1/presence", { token: tok, body: { status: "here" } });
    const isRomeo = (type: string) => (s: XmlElement) => s.is("presence") && s.attrs.from === `${jid}/phone` && (s.attrs.type ?? "available") === type;
    await juliet.waitFor(isRomeo("available"));
    const mark = juliet.stanzas.length;

    // Requests in flight during the shutdown still complete.
    const inflight = Array.from({ length: 20 }, (_, i) => gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: `flight ${i}` } }));
    const results = await Promise.all([...inflight, gw.running.close()].map((p) => p.catch((e: unknown) => e)));
    const accepted = results.slice(0, 20).filter((r) => (r as { status?: number }).status === 202) as { body: { id: string } }[];
    assert.equal(stream.closed, true, "the stream was ended");
    assert.ok(stream.comments.includes("shutting down"));
    assert.equal(stream.retry, 700);

    // A new instance on the same database, well within the grace period.
    gw = await startTestGateway(server, env, db);
    const sessions = (await gw.request("GET", "/v1/sessions", { token: tok })).body.items;
    assert.equal(sessions.find((s: { resource: string }) => s.resource === "phone")?.available, true, "the session survived");
    const again = await gw.sse("/v1/events", tok);
    // Everything accepted before the shutdown reached Juliet.
    for (const a of accepted) await juliet.waitFor((s) => s.attrs.id === a.body.id, 10_000);
    await new Promise((r) => setTimeout(r, 6000)); // past the grace period, with the stream back
    assert.deepEqual(juliet.stanzas.slice(mark).filter(isRomeo("unavailable")).map(String), [], "no unavailable presence: no flap");
    await again.close();
  });
});
