// A rejoin the room's service refuses for now is tried again until the service is back (API.md: a
// join lasts until the account leaves). The room here is on a MUC component of the test's own,
// `muc2.localhost`, a raw XEP-0114 component on the same real Prosody: it answers joins as a room
// does (self-presence with status 110, then the subject), and it can go away. While it is not
// connected, Prosody itself refuses what is sent to it with wait/remote-server-timeout
// ("Component unavailable", RFC 6120 §8.3.2: retry after waiting). Prosody only: that answer is
// Prosody's, and the harness adds component domains to Prosody alone.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import pkg, { type Component } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { eventLog, NS_MUC, NS_USER } from "../helpers/muc.js";

const { component } = pkg;
const SERVICE = "muc2.localhost";
const SECRET = "muc2-secret";
const WAIT = 20_000;

/** A room service of our own on SERVICE: every join is answered at once (but the next `ignoring`); what it got is kept. */
class FakeMuc {
  readonly received: Element[] = [];
  /** How many joins to come it swallows without a word (a lost presence, a hung room). */
  ignoring = 0;
  private constructor(private readonly raw: Component) {}

  static async connect(server: XmppServer): Promise<FakeMuc> {
    const raw = component({ service: server.componentService, domain: SERVICE, password: SECRET });
    raw.reconnect.stop();
    const muc = new FakeMuc(raw);
    raw.on("error", () => {}); // start() rejects on a failed start; a late error must not crash the test
    raw.on("stanza", (s: Element) => void muc.take(s));
    await raw.start();
    return muc;
  }

  private async take(s: Element): Promise<void> {
    this.received.push(s);
    const from = s.attrs.from;
    const to = s.attrs.to ?? "";
    if (!s.is("presence") || s.attrs.type || !from || !s.getChild("x", NS_MUC)) return;
    if (this.ignoring > 0) return void this.ignoring--;
    // XEP-0045 §7.2.2-§7.2.16: the joiner's own presence (110), then the room's (empty) subject.
    await this.raw.send(xml("presence", { from: to, to: from }, xml("x", { xmlns: NS_USER }, xml("item", { affiliation: "member", role: "participant" }), xml("status", { code: "110" }))));
    await this.raw.send(xml("message", { from: to.split("/")[0], to: from, type: "groupchat", id: `subject-${this.received.length}` }, xml("subject")));
  }

  /** XEP-0045 status 332: the service is shutting down; every occupant is out. */
  async shutDown(occupant: string, roomNick: string): Promise<void> {
    await this.raw.send(
      xml("presence", { from: roomNick, to: occupant, type: "unavailable" }, xml("x", { xmlns: NS_USER }, xml("item", { affiliation: "member", role: "none" }), xml("status", { code: "332" }), xml("status", { code: "110" }))),
    );
    await this.raw.stop();
  }

  stop(): Promise<unknown> {
    return this.raw.stop();
  }
}

describe("a rejoin refused for now (prosody)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let muc: FakeMuc | null = null;

  before(async () => {
    server = await startXmppServer("prosody", { extraComponents: { [SERVICE]: SECRET } });
    gw = await startTestGateway(server);
  });
  after(async () => {
    await muc?.stop().catch(() => undefined);
    await gw?.stop();
    await server?.stop();
  });

  const { events } = eventLog(() => gw);

  it("is tried again while the room's service is away, and the account is in the room again once it is back", async () => {
    await gw.createAccount("friar");
    const token = gw.token("friar");
    const room = `cell@${SERVICE}`;
    muc = await FakeMuc.connect(server);
    const joined = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "friar" } });
    assert.equal(joined.status, 200, joined.text);

    // The service goes away (332), and is not there when the gateway enters the room again.
    await muc.shutDown(`friar@${gw.domain}/rooms`, `${room}/friar`);
    muc = null;
    let failed: { data: Record<string, unknown>; createdAt?: string } | undefined;
    await waitFor(async () => (failed = (await events("friar")).find((e) => e.event === "room" && e.data.kind === "join-failed")) !== undefined, WAIT, "the refused rejoin");
    const error = failed!.data.error as { type: string; condition: string };
    assert.deepEqual([error.type, error.condition], ["wait", "remote-server-timeout"], JSON.stringify(failed));
    const retryAt = Date.parse(String(failed!.data.retryAt));
    assert.ok(retryAt > Date.now(), `a retry to come: ${String(failed!.data.retryAt)}`);
    assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token })).body.status, "joining", "still being rejoined");
    // Meanwhile what the account sends there would only fail with that refusal: 503, until when.
    const posted = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "anyone?" } });
    assert.deepEqual([posted.status, posted.body.code], [503, "room-unavailable"], posted.text);
    assert.ok(Number(posted.headers.get("retry-after")) >= 1, `Retry-After: ${posted.headers.get("retry-after")}`);
    const batch = await gw.request("POST", "/v1/messages/batch", { token, body: { messages: [{ to: room, type: "groupchat", body: "anyone?" }, { to: `romeo@${gw.domain}`, body: "hello" }] } });
    assert.deepEqual(batch.body.results.map((r: { code?: string; status?: string }) => r.code ?? r.status), ["room-unavailable", "queued"], batch.text);
    const subject = await gw.request("PUT", `/v1/rooms/${room}/subject`, { token, body: { subject: "vespers" } });
    assert.equal(subject.status, 503, subject.text);

    // Back: the next attempt enters the room, asking for the history it missed.
    muc = await FakeMuc.connect(server);
    let kinds: string[] = [];
    const roomEvents = async () => (kinds = (await events("friar")).filter((e) => e.event === "room" && e.data.room === room).map((e) => String(e.data.kind)));
    await waitFor(async () => (await roomEvents()).filter((k) => k === "joined").length === 2, WAIT, "joined again").catch((err: unknown) => {
      throw new Error(`${String(err)}: ${kinds.join(", ")}`);
    });
    assert.deepEqual(kinds.filter((k) => k !== "subject"), ["joined", "join-failed", "joined"], "one join-failed, then in again");
    const join = muc.received.find((s) => s.is("presence") && s.attrs.to === `${room}/friar`);
    assert.ok(join?.getChild("x", NS_MUC)?.getChild("history")?.attrs.since, `a join asking for the history since: ${join?.toString()}`);
    await waitFor(async () => (await gw.request("GET", `/v1/rooms/${room}`, { token })).body.status === "joined", WAIT, "the room joined");
    // In again: group messages are taken again.
    const again = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "back" } });
    assert.equal(again.status, 202, again.text);
    await waitFor(() => muc!.received.some((s) => s.is("message") && s.getChildText("body") === "back"), WAIT, "the group message at the room");
  });
  it("sends a join the room does not answer again until it does; the request that timed out said so", async () => {
    await gw.createAccount("balthasar");
    const token = gw.token("balthasar");
    const room = `tomb@${SERVICE}`;
    muc ??= await FakeMuc.connect(server);
    muc.ignoring = 1;
    const history = { maxStanzas: 5 };
    const joins = () => muc!.received.filter((s) => s.is("presence") && s.attrs.to === `${room}/balthasar` && s.getChild("x", NS_MUC));
    const started = Date.now();
    const asked = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "balthasar", history } });
    assert.equal(asked.status, 503, asked.text);
    assert.match(asked.body.detail, /keeps trying/);
    assert.equal(joins().length, 1, "one join so far, swallowed");
    await waitFor(async () => (await gw.request("GET", `/v1/rooms/${room}`, { token })).body.status === "joined", WAIT, "the room joined");
    const sentAgain = joins();
    assert.equal(sentAgain.length, 2, sentAgain.map(String).join("\n"));
    // The join as the request asked for it, 10 s after the first (the link holder looks every 2 s).
    assert.equal(sentAgain[1]!.getChild("x", NS_MUC)?.getChild("history")?.attrs.maxstanzas, "5", sentAgain[1]!.toString());
    assert.ok(Date.now() - started >= 10_000);
    const kinds = (await events("balthasar")).filter((e) => e.event === "room" && e.data.room === room).map((e) => String(e.data.kind));
    assert.deepEqual(kinds.filter((k) => k !== "subject"), ["joined"]);
    // Answered: nothing is due any more.
    const due = await gw.running.db.pool.query("SELECT rejoin_at FROM room WHERE room = $1", [room]);
    assert.deepEqual(due.rows, [{ rejoin_at: null }]);
  });
});
