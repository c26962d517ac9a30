// Every event type of the catalogue (src/domain/events.ts), made to happen for real (a real user
// on Prosody, the gateway over HTTP) and read both ways, SSE and JSON pages: each must match its
// documented schema, and every type must have been seen, so the check cannot pass on nothing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, uniq, type TestGateway } from "../helpers/gateway.js";
import { checkEvent, checkEventItem, schemaMismatches } from "../helpers/event-schema.js";
import { EVENT_TYPES, type EventType } from "../../src/domain/events.js";
import type { SseClient } from "../helpers/sse.js";
import { comeOnline } from "../helpers/xmpp-world.js";

interface Item {
  id: number;
  event: string;
  data: Record<string, unknown>;
  createdAt: string;
}

describe("event catalogue, end to end", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw");
    gw = await startTestGateway(server, { SSE_HEARTBEAT: "1s" });
    juliet = await connectUser(server, "juliet", "pw", "balcony");
    // An interested resource (RFC 6121 §2.1.6): roster first, then initial presence.
    await comeOnline(juliet);
  });
  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  it("emits every event type, each matching its schema, over SSE and as JSON pages", async () => {
    const lp = uniq("romeo");
    await gw.createAccount(lp);
    const jid = `${lp}@${gw.domain}`;
    const token = gw.token(lp, { resource: "phone" });
    const call = (method: string, path: string, body?: unknown) => gw.request(method, path, { token, body });
    const page = async (since: number) => {
      const r = await gw.request("GET", `/v1/events?since=${since}&limit=1000`, { token, headers: { accept: "application/json" } });
      assert.equal(r.status, 200, r.text);
      return r.body.items as Item[];
    };
    const fromRomeo = (type: string) => (s: XmlElement) => s.is("presence") && s.attrs.from?.split("/")[0] === jid && (s.attrs.type ?? "available") === type;
    const stream = await gw.sse("/v1/events", token);
    assert.equal(stream.status, 200);
    const sseSaw = (event: EventType, pred: (d: Record<string, unknown>) => boolean = () => true) =>
      stream.waitFor((ev) => ev.some((e) => e.event === event && pred(e.json as Record<string, unknown>)), 10_000, `SSE ${event}`);

    // subscription + roster (item): Juliet asks, the account approves (RFC 6121 §3.1).
    await juliet.send(xml("presence", { to: jid, type: "subscribe" }));
    await sseSaw("subscription", (d) => d.type === "subscribe");
    assert.equal((await call("POST", "/v1/roster/juliet@localhost/approve")).status, 200);
    await juliet.waitFor(fromRomeo("subscribed"));
    // The account asks back, Juliet approves: her server sends her presence (§3.1.5).
    assert.equal((await call("POST", "/v1/roster/juliet@localhost/subscribe")).status, 202);
    await juliet.waitFor(fromRomeo("subscribe"));
    await juliet.send(xml("presence", { to: jid, type: "subscribed" }));
    await sseSaw("roster", (d) => (d.item as { subscription?: string } | undefined)?.subscription === "both");
    await sseSaw("presence", (d) => d.jid === "juliet@localhost" && d.type === "available");
    // presence with show and an xml:lang status.
    await juliet.send(xml("presence", {}, xml("show", {}, "away"), xml("status", { "xml:lang": "en" }, "Sleeping"), xml("priority", {}, "3")));
    await sseSaw("presence", (d) => d.show === "away");

    // message: an inbound chat message with a receipt request and a chat state.
    await juliet.send(
      xml("message", { to: jid, type: "chat", id: "cat-1" }, xml("body", {}, "every type"), xml("thread", {}, "t1"), xml("active", { xmlns: "http://jabber.org/protocol/chatstates" }), xml("request", { xmlns: "urn:xmpp:receipts" })),
    );
    await sseSaw("message", (d) => d.body === "every type");

    // receipt: the account's message comes back confirmed (XEP-0184).
    const sent = await call("POST", "/v1/messages", { to: "juliet@localhost/balcony", body: "receipt please", receipt: true });
    assert.equal(sent.status, 202, sent.text);
    const m = await juliet.waitFor((s) => s.is("message") && s.attrs.id === sent.body.id);
    await juliet.send(xml("message", { to: m.attrs.from, id: "cat-rcpt" }, xml("received", { xmlns: "urn:xmpp:receipts", id: sent.body.id })));
    await sseSaw("receipt", (d) => d.id === sent.body.id);

    // message-status: a message to a user the server does not have bounces (RFC 6120 §8.3).
    const bounced = await call("POST", "/v1/messages", { to: "nobody-here@localhost", body: "hello?" });
    assert.equal(bounced.status, 202, bounced.text);
    await sseSaw("message-status", (d) => d.id === bounced.body.id && d.status === "failed");

    // message-update: Juliet reacts to the account's message (XEP-0444).
    await juliet.send(xml("message", { to: jid, type: "chat", id: "cat-react" }, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: sent.body.id }, xml("reaction", {}, "👍"))));
    await sseSaw("message-update", (d) => d.id === sent.body.id && JSON.stringify(d.reactions) === JSON.stringify({ "👍": ["juliet@localhost"] }));

    // room: Juliet invites the account to a room directly (XEP-0249).
    await juliet.send(xml("message", { to: jid }, xml("x", { xmlns: "jabber:x:conference", jid: "lobby@conference.localhost", reason: "join us" })));
    await sseSaw("room", (d) => d.kind === "invited" && d.room === "lobby@conference.localhost");

    // presence unavailable, then roster (removal): the account removes Juliet (§2.5.2).
    await juliet.send(xml("presence", { type: "unavailable" }));
    await sseSaw("presence", (d) => d.type === "unavailable");
    assert.equal((await call("DELETE", "/v1/roster/juliet@localhost")).status, 204);
    await sseSaw("roster", (d) => d.removed === true);
    await stream.close();

    // The same log as JSON pages.
    const all = await page(0);
    const ids = all.map((e) => e.id);
    assert.deepEqual(stream.events.map((e) => Number(e.id)), ids.slice(0, stream.events.length), "SSE and JSON show the same log");

    // resync: retention dropped the oldest events; a cursor before them gets a resync first.
    const cut = ids[Math.floor(ids.length / 2)]!;
    await gw.running.db.pool.query("DELETE FROM event WHERE seq <= $1 AND account_id = (SELECT id FROM account WHERE localpart = $2)", [cut, lp]);
    const resumed = await page(0);
    assert.equal(resumed[0]?.event, "resync");
    assert.equal(resumed[0]?.data.from, cut);
    assert.equal(resumed[1]?.id, ids.find((id) => id > cut));
    const replay: SseClient = await gw.sse("/v1/events?since=0", token);
    await replay.waitFor((ev) => ev.length >= 1 + ids.filter((id) => id > cut).length, 10_000, "replay after resync");
    await replay.close();
    assert.equal(replay.events[0]?.event, "resync");

    // Every type, both ways, each checked here against the catalogue (the helpers check too).
    const sseEvents = [...stream.events, ...replay.events];
    const jsonItems = [...all, ...resumed];
    for (const e of sseEvents) assert.equal(checkEvent(e.event, e.json), null, `SSE ${e.event} ${e.data}`);
    for (const item of jsonItems) assert.equal(checkEventItem(item), null, `JSON ${JSON.stringify(item)}`);
    const sseTypes = new Set(sseEvents.map((e) => e.event));
    const jsonTypes = new Set(jsonItems.map((e) => e.event));
    for (const type of EVENT_TYPES) {
      assert.ok(sseTypes.has(type), `SSE never showed a ${type} event (saw ${[...sseTypes].join(", ")})`);
      assert.ok(jsonTypes.has(type), `JSON never showed a ${type} event (saw ${[...jsonTypes].join(", ")})`);
    }
    // Nothing outside the catalogue either.
    assert.deepEqual([...sseTypes, ...jsonTypes].filter((t) => !(EVENT_TYPES as string[]).includes(t)), []);
    assert.deepEqual([...stream.schemaErrors, ...replay.schemaErrors], []);
    assert.deepEqual(schemaMismatches, [], "no event seen in this file mismatched the catalogue");
    // Both roster branches (item and removal) were seen.
    assert.ok(jsonItems.some((e) => e.event === "roster" && "item" in e.data));
    assert.ok(jsonItems.some((e) => e.event === "roster" && e.data.removed === true));
  });
});
