// A room that removes the account by no one's decision. Both servers remove an occupant whose side
// answered the room with an error (XEP-0045 status 333 on Prosody): the gateway must not cause it
// (a blocked occupant's messages are dropped, not bounced: XEP-0191 §3.3 as Prosody's
// mod_blocklist does), and when it happens anyway the account enters the room again (API.md: a
// join lasts until the account leaves). So it does when ejabberd's MUC module restarts (332). On
// both servers' real MUC services, with a real XMPP user in the rooms.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { waitFor } from "../helpers/gateway.js";
import { enterRoom, eventLog, heardInRoom, MUC, NS_USER, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 15_000;

for (const kind of KINDS) {
  describe(`removal from a room because of an error (${kind})`, () => {
    const w = roomWorld(kind);

    const { events, until } = eventLog(() => w.gw);
    /** The account joins `room` (it creates it), and Juliet enters it. */
    async function bothIn(localpart: string, room: string): Promise<void> {
      await w.gw.createAccount(localpart);
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: w.gw.token(localpart), body: { nick: localpart } });
      assert.equal(joined.status, 201, joined.text);
      await enterRoom(w.juliet, room, "juliet");
    }
    const heardFrom = (localpart: string, room: string, body: string) => heardInRoom(w.gw, w.juliet, localpart, room, body, WAIT);
    const unavailableFrom = (occupant: string, from = 0, to = w.juliet.stanzas.length) =>
      w.juliet.stanzas.slice(from, to).filter((s) => s.is("presence") && s.attrs.from === occupant && s.attrs.type === "unavailable");

    it("stays in the room when the account blocks an occupant: her group and private messages are dropped, never answered with an error", async () => {
      const room = `piazza-${kind}@${MUC}`;
      await bothIn("benvolio", room);
      const blocked = await w.gw.request("PUT", `/v1/blocklist/${encodeURIComponent(`${room}/juliet`)}`, { token: w.gw.token("benvolio") });
      assert.equal(blocked.status, 204, blocked.text);
      const mark = w.juliet.stanzas.length;
      await w.juliet.send(xml("message", { to: room, type: "groupchat", id: "blocked-group" }, xml("body", {}, "blocked group")));
      await w.juliet.send(xml("message", { to: `${room}/benvolio`, type: "chat", id: "blocked-pm" }, xml("body", {}, "blocked pm")));
      // Her own JID is not blocked: once her message after those is in Benvolio's log, the gateway
      // has handled hers (the link's order), and anything it answered them with is on its way.
      await w.juliet.send(xml("message", { to: `benvolio@${w.gw.domain}`, type: "chat" }, xml("body", {}, "from juliet herself")));
      await until("benvolio", "Juliet's own message", (e) => e.event === "message" && e.data.body === "from juliet herself");
      // The sentinel: Benvolio's group message after that reaches the room from him, still an occupant.
      const sentinel = await heardFrom("benvolio", room, "still here");
      const end = w.juliet.stanzas.indexOf(sentinel);
      assert.deepEqual(unavailableFrom(`${room}/benvolio`, mark, end).map((s) => s.toString()), [], "the room did not remove Benvolio");
      const errors = w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error");
      assert.deepEqual(errors.map((s) => s.toString()), [], "no error came back to Juliet");
      const bodies = (await events("benvolio")).filter((e) => e.event === "message").map((e) => String(e.data.body));
      assert.deepEqual(bodies, ["from juliet herself", "still here"], "nothing of Juliet's in the room reached Benvolio's log");
    });

    it("enters the room again when the room removes it because of an error (status 333), and what it posts next reaches the room", async () => {
      const room = `vault-${kind}@${MUC}`;
      await bothIn("mercutio", room);
      const account = `mercutio@${w.gw.domain}`;
      const mark = w.juliet.stanzas.length;
      // A fault on the account's side: an error message to the room from its occupant JID, written
      // straight on the gateway's link. The room removes the occupant that sent it.
      const ok = w.gw.running.link.write([
        xml("message", { from: `${account}/rooms`, to: room, type: "error", id: "fault" }, xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }))).toString(),
      ]);
      assert.equal(ok, true, "written on the link");
      await waitFor(() => unavailableFrom(`${room}/mercutio`, mark).length > 0, WAIT, "the room removing Mercutio");
      const removal = unavailableFrom(`${room}/mercutio`, mark)[0]!;
      // Prosody says why (333); ejabberd gives no status code, only a text.
      const codes = removal.getChild("x", NS_USER)?.getChildren("status").map((c) => String(c.attrs.code)) ?? [];
      assert.deepEqual(codes, kind === "prosody" ? ["333"] : [], removal.toString());
      // Back in: Juliet sees Mercutio enter again, and his next message is sent to the room.
      const back = await w.juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/mercutio` && s.attrs.type === undefined && w.juliet.stanzas.indexOf(s) > w.juliet.stanzas.indexOf(removal), WAIT);
      assert.ok(back, "Mercutio entered again");
      await heardFrom("mercutio", room, "back again");
      let view: { status?: string; occupants?: { nick: string }[] } = {};
      await waitFor(async () => (view = (await w.gw.request("GET", `/v1/rooms/${room}`, { token: w.gw.token("mercutio") })).body).status === "joined", WAIT, "the room joined again");
      assert.deepEqual(view.occupants?.map((o) => o.nick).sort(), ["juliet", "mercutio"]);
      const joins = (await events("mercutio")).filter((e) => e.event === "room" && e.data.kind === "joined" && e.data.room === room);
      assert.equal(joins.length, 2, "joined, then joined again");
    });

    // Prosody's MUC keeps its rooms and occupants across a module reload and sends no 332.
    if (kind === "ejabberd") {
      it("enters the room again when ejabberd's MUC module restarts (status 332 to every occupant), and what it posts next reaches the room", async () => {
        const room = `chapel-${kind}@${MUC}`;
        await bothIn("balthasar", room);
        const mark = w.juliet.stanzas.length;
        // What reload_config does to a module whose options changed: it stops and starts again.
        const restarted = await fetch(`${w.server.httpApiUrl}/restart_module`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ host: "localhost", module: "mod_muc" }) });
        assert.equal(restarted.status, 200, await restarted.text());
        await waitFor(() => unavailableFrom(`${room}/juliet`, mark).length > 0, WAIT, "the room removing Juliet");
        const removal = unavailableFrom(`${room}/juliet`, mark)[0]!;
        assert.ok(removal.getChild("x", NS_USER)?.getChildren("status").some((c) => c.attrs.code === "332"), removal.toString());
        // The room is gone with the module (it was not persistent): the rejoin makes it again.
        let joins: unknown[] = [];
        await waitFor(async () => (joins = (await events("balthasar")).filter((e) => e.event === "room" && e.data.kind === "joined" && e.data.room === room)).length === 2, WAIT, "joined again").catch((err: unknown) => {
          throw new Error(`${String(err)}: ${JSON.stringify(joins)}`);
        });
        // Joined once the remade room took its instant configuration (XEP-0045 §10.1.2).
        await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token: w.gw.token("balthasar") })).body.status === "joined", WAIT, "the room joined");
        await enterRoom(w.juliet, room, "juliet");
        await heardFrom("balthasar", room, "after the restart");
      });
    }
  });
}
