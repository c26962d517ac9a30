// Group chat across an XMPP server restart: what the account posted to its rooms while the link was
// down (group messages, a subject change) goes out after the link returns, once the gateway has
// entered the rooms again (XEP-0045 §7.2: only occupants may send to a room, §7.4, §8.1). The
// join presence is written ahead of the queued stanzas on the same link, so the room takes them
// from an occupant: none fails. A persistent room survives the restart (the other occupant, a
// real XMPP client, is back in it first and hears the messages live); a temporary one is gone and
// is made again by the rejoin (she finds the messages in its history). On Prosody and ejabberd.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { holdReconnect, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { MUC, NS_MUC, NS_USER } from "../helpers/muc.js";
import { FAULT_KINDS } from "../helpers/servers.js";


for (const kind of FAULT_KINDS) {
  describe(`rooms across an XMPP server restart (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser | null = null;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw-juliet");
      // A short backoff cap: the link returns within seconds of the release below.
      gw = await startTestGateway(server, { XMPP_RECONNECT_MAX: "1s" });
      await gw.createAccount("romeo");
    });
    after(async () => {
      await juliet?.stop();
      await gw?.stop();
      await server?.stop();
    });

    async function julietOnline(): Promise<XmppUser> {
      juliet = await connectUser(server, "juliet", "pw-juliet", "muc");
      await juliet.sendPresence();
      return juliet;
    }
    /** Juliet enters a room; one she creates is configured with `config` (XEP-0045 §10.1.3). Null: entered; else the room's error. */
    async function julietJoins(room: string, config: Record<string, string> | null = null): Promise<string | null> {
      const u = juliet!;
      await u.send(xml("presence", { to: `${room}/juliet` }, xml("x", { xmlns: NS_MUC })));
      const self = await u.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/juliet` && (s.attrs.type === "error" || !!s.getChild("x", NS_USER)?.getChildren("status").some((c) => c.attrs.code === "110")), 10_000);
      if (self.attrs.type === "error") {
        u.stanzas.splice(u.stanzas.indexOf(self), 1);
        return self.getChild("error")?.toString() ?? "error";
      }
      if (self.getChild("x", NS_USER)!.getChildren("status").some((c) => c.attrs.code === "201")) {
        const fields = Object.entries(config ?? {}).map(([v, value]) => xml("field", { var: v }, xml("value", {}, value)));
        if (fields.length > 0) fields.unshift(xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, `${NS_MUC}#roomconfig`)));
        await u.send(xml("iq", { to: room, type: "set", id: `cfg-${room}` }, xml("query", { xmlns: `${NS_MUC}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, ...fields))));
        const answer = await u.waitFor((s) => s.is("iq") && s.attrs.id === `cfg-${room}`, 10_000);
        assert.equal(answer.attrs.type, "result", `room configuration: ${answer.toString()}`);
      }
      return null;
    }
    const token = () => gw.token("romeo");
    const post = async (room: string, body: string): Promise<string> => {
      const r = await gw.request("POST", "/v1/messages", { token: token(), body: { to: room, type: "groupchat", body } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.body.status, "queued");
      return r.body.id as string;
    };
    /** Each message's status once it is final (sent or failed), with the error of a failed one. */
    async function finalStatuses(ids: string[], tok = token()): Promise<string[]> {
      let statuses: string[] = [];
      await waitFor(
        async () => {
          const views = await Promise.all(ids.map(async (id) => (await gw.request("GET", `/v1/messages/${id}`, { token: tok })).body));
          statuses = views.map((v) => (v.status === "failed" ? `failed ${JSON.stringify(v.error)}` : String(v.status)));
          // A failed one without its error: the view read the row before the failure and its status after it.
          return statuses.every((s) => s === "sent" || (s.startsWith("failed") && s !== "failed undefined") || s === "delivered");
        },
        15_000,
        "the messages' final status",
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}: ${statuses.join(", ")}`);
      });
      return statuses;
    }
    const bodiesFrom = (from: string, prefix: string): string[] =>
      juliet!.stanzas.filter((s: XmlElement) => s.is("message") && s.attrs.from === from && s.getChildText("body")?.startsWith(prefix)).map((s) => s.getChildText("body")!);

    it("enters its rooms again before sending what was posted to them while the server was down: every message and the subject change go through", async () => {
      const kept = `hall-${kind}@${MUC}`;
      const temporary = `porch-${kind}@${MUC}`;
      await julietOnline();
      // Juliet makes the persistent room (she owns it); Romeo makes the temporary one, she joins it.
      assert.equal(await julietJoins(kept, { "muc#roomconfig_persistentroom": "1" }), null);
      assert.equal((await gw.request("PUT", `/v1/rooms/${kept}`, { token: token(), body: { nick: "romeo" } })).status, 200);
      assert.equal((await gw.request("PUT", `/v1/rooms/${temporary}`, { token: token(), body: { nick: "romeo" } })).status, 201);
      assert.equal(await julietJoins(temporary), null);

      // The server restarts; the gateway's link stays down until Juliet is back in the kept room.
      const release = holdReconnect(gw);
      await juliet!.stop();
      juliet = null;
      await server.restart();
      await waitFor(() => !gw.running.link.online, 10_000, "the link down");
      const keptIds = [await post(kept, "k-1"), await post(kept, "k-2"), await post(kept, "k-3")];
      const subject = await gw.request("PUT", `/v1/rooms/${kept}/subject`, { token: token(), body: { subject: "After the storm" } });
      assert.equal(subject.status, 202, subject.text);
      const tempIds = [await post(temporary, "t-1"), await post(temporary, "t-2"), await post(temporary, "t-3")];
      await julietOnline();
      assert.equal(await julietJoins(kept), null, "the persistent room survived the restart");
      release();

      // The kept room: all three live, in order, each sent; then the subject, from Romeo.
      assert.deepEqual(await finalStatuses(keptIds), ["sent", "sent", "sent"], "the kept room's messages");
      await waitFor(() => bodiesFrom(`${kept}/romeo`, "k-").length >= 3, 10_000, "Juliet hears the three messages");
      assert.deepEqual(bodiesFrom(`${kept}/romeo`, "k-"), ["k-1", "k-2", "k-3"]);
      await juliet!.waitFor((s) => s.is("message") && s.attrs.from === `${kept}/romeo` && s.getChildText("subject") === "After the storm", 10_000);
      await waitFor(async () => (await gw.request("GET", `/v1/rooms/${kept}`, { token: token() })).body.subject === "After the storm", 10_000, "the subject in the room's view");

      // The temporary room was gone: the rejoin made it again, and the messages went to it.
      assert.deepEqual(await finalStatuses(tempIds), ["sent", "sent", "sent"], "the temporary room's messages");
      // Prosody keeps a new room locked until its owner configured it (§10.1.1): Juliet may be early.
      let refused: string | null = "";
      const retry = async () => (refused = await julietJoins(temporary)) === null || (await new Promise((r) => setTimeout(r, 200)), false);
      await waitFor(retry, 10_000, "Juliet entering the temporary room again").catch((err: unknown) => {
        throw new Error(`${String(err)}: ${refused}`);
      });
      await waitFor(() => bodiesFrom(`${temporary}/romeo`, "t-").length >= 3, 10_000, "the temporary room's history");
      assert.deepEqual(bodiesFrom(`${temporary}/romeo`, "t-"), ["t-1", "t-2", "t-3"]);
      // Both rooms joined again (the remade one once the room took its instant configuration, §10.1.2).
      let rooms: string[] = [];
      const listed = async (): Promise<string[]> => (rooms = (await gw.request("GET", "/v1/rooms", { token: token() })).body.items.map((r: { room: string; status: string }) => `${r.room}:${r.status}`).sort());
      await waitFor(async () => (await listed()).every((r: string) => r.endsWith(":joined")), 10_000, "both rooms joined").catch((err: unknown) => {
        throw new Error(`${String(err)}: ${rooms.join(", ")}`);
      });
      assert.deepEqual(rooms, [`${kept}:joined`, `${temporary}:joined`].sort());
    });

    it("fails what was posted to a room that refuses the rejoin (banned meanwhile) with the room's error, and sends what follows it", async () => {
      await gw.createAccount("tybalt");
      const tok = gw.token("tybalt");
      const room = `crypt-${kind}@${MUC}`;
      if (!juliet) await julietOnline();
      assert.equal(await julietJoins(room, { "muc#roomconfig_persistentroom": "1" }), null);
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token: tok, body: { nick: "tybalt" } })).status, 200);
      const release = holdReconnect(gw);
      await juliet!.stop();
      await server.restart();
      await waitFor(() => !gw.running.link.online, 10_000, "the link down");
      const posted = await gw.request("POST", "/v1/messages", { token: tok, body: { to: room, type: "groupchat", body: "b-1" } });
      assert.equal(posted.status, 202, posted.text);
      // The sentinel, queued behind the group message: once Juliet has it, the group message went before.
      const sentinel = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "sentinel" } });
      assert.equal(sentinel.status, 202, sentinel.text);
      await julietOnline();
      assert.equal(await julietJoins(room), null);
      // Juliet owns the room: she bans Tybalt while the gateway is away (XEP-0045 §9.1).
      await juliet!.send(xml("iq", { to: room, type: "set", id: "ban" }, xml("query", { xmlns: `${NS_MUC}#admin` }, xml("item", { jid: `tybalt@${gw.domain}`, affiliation: "outcast" }))));
      assert.equal((await juliet!.waitFor((s) => s.is("iq") && s.attrs.id === "ban", 10_000)).attrs.type, "result");
      release();
      await juliet!.waitFor((s) => s.is("message") && s.getChildText("body") === "sentinel", 15_000);
      const [status] = await finalStatuses([posted.body.id as string], tok);
      assert.match(status!, /^failed \{.*"condition":"[a-z-]+"/, "the room's error");
      assert.equal(bodiesFrom(`${room}/tybalt`, "b-").length, 0, "nothing reached the room");
      type Ev = { event: string; data: Record<string, unknown> };
      let refused: Ev | undefined;
      const events = async () => (await gw.request("GET", "/v1/events?since=0&limit=1000", { token: tok, headers: { accept: "application/json" } })).body.items as Ev[];
      await waitFor(async () => (refused = (await events()).find((e) => e.event === "room" && e.data.kind === "join-failed")) !== undefined, 10_000, "join-failed");
      assert.equal((refused?.data.error as { condition?: string } | undefined)?.condition, "forbidden", JSON.stringify(refused));
      assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token: tok })).status, 404);
    });

    it("answers a join while no instance holds the link 503 xmpp-unavailable (not room-unavailable) at the join's deadline; the join goes out once the link is back", async () => {
      await gw.createAccount("mercutio");
      const tok = gw.token("mercutio");
      const room = `square-${kind}@${MUC}`;
      const release = holdReconnect(gw);
      await juliet?.stop();
      juliet = null;
      await server.restart();
      await waitFor(() => !gw.running.link.online, 10_000, "the link down");
      const down = await gw.request("PUT", `/v1/rooms/${room}`, { token: tok, body: { nick: "mercutio" } });
      assert.equal(down.status, 503, down.text);
      assert.deepEqual([down.body.code, down.headers.get("retry-after")], ["xmpp-unavailable", "5"], down.text);
      assert.match(down.body.detail, /XMPP link is down/);
      assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token: tok })).body.status, "joining", "the join is recorded");
      release();
      await waitFor(async () => (await gw.request("GET", `/v1/rooms/${room}`, { token: tok })).body.status === "joined", 15_000, "the join once the link is back");
    });
  });
}
