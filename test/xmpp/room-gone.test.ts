// A room that no longer has the account, noticed from the room's own answers rather than after a
// quiet spell (XEP-0410 §3.2), on both servers' real MUC services with a real user (Juliet).
// Prosody 0.12 destroys a non-persistent room whose only occupant changes nick (ejabberd keeps
// it): the gateway's nick change is followed by a self-ping, whose item-not-found makes the
// account enter the room again at once. A group message or a nick change to a room that answers
// that the account is not an occupant (not-acceptable; item-not-found: no such room) does the
// same; the bounced message stays `failed`. ROOM_SELF_PING is left at its 15 minutes: no sweep
// notices anything here. On ejabberd the first and last tests check that nothing regresses:
// it keeps the room through the nick change, and takes a nick change to a room it does not have
// as a join (the GC 1.0 way), so the account is in either way.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { waitFor } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_USER, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 15_000;
/** "At once": well below any sweep (15 minutes here) and the join resend (10 s). */
const SOON = 5_000;

for (const kind of KINDS) {
  describe(`rooms that lost the account, noticed at once (${kind})`, () => {
    const w = roomWorld(kind);

    const { events } = eventLog(() => w.gw);
    const token = (localpart: string) => w.gw.token(localpart);

    /** The number of occupants the room reports to Juliet, who is not in it (XEP-0045 §6.4 muc#roominfo_occupants); null: no such room. */
    async function occupantCount(room: string): Promise<number | null> {
      const id = `info-${Math.random().toString(36).slice(2)}`;
      await w.juliet.send(xml("iq", { to: room, type: "get", id }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
      const answer = await w.juliet.waitFor((s) => s.is("iq") && s.attrs.id === id, WAIT);
      if (answer.attrs.type === "error") return null;
      const field = answer.getChild("query")?.getChild("x", "jabber:x:data")?.getChildren("field").find((f) => f.attrs.var === "muc#roominfo_occupants");
      return Number(field?.getChildText("value") ?? Number.NaN);
    }

    /** Juliet enters; the nicks the room presented to her as present before her own presence (§7.2.3). */
    async function julietFinds(room: string): Promise<string[]> {
      const start = w.juliet.stanzas.length;
      await enterRoom(w.juliet, room, "juliet");
      return w.juliet.stanzas
        .slice(start)
        .filter((s) => s.is("presence") && !s.attrs.type && s.attrs.from?.startsWith(`${room}/`) && s.attrs.from !== `${room}/juliet` && s.getChild("x", NS_USER))
        .map((s) => s.attrs.from!.slice(room.length + 1));
    }

    /** `localpart` posts to the room; Juliet hears it from `nick`, and it is `sent` (the room reflected it). */
    async function heard(localpart: string, room: string, nick: string, body: string): Promise<void> {
      const posted = await w.gw.request("POST", "/v1/messages", { token: token(localpart), body: { to: room, type: "groupchat", body } });
      assert.equal(posted.status, 202, posted.text);
      await w.juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/${nick}` && s.getChildText("body") === body, WAIT);
      await waitFor(async () => (await w.gw.request("GET", `/v1/messages/${posted.body.id}`, { token: token(localpart) })).body.status === "sent", WAIT, "the message sent");
    }

    /** A message posted to the room: its final status and error. */
    async function posted(localpart: string, room: string, body: string): Promise<{ status: string; error?: { condition: string } }> {
      const p = await w.gw.request("POST", "/v1/messages", { token: token(localpart), body: { to: room, type: "groupchat", body } });
      assert.equal(p.status, 202, p.text);
      let m: { status: string; error?: { condition: string } } = { status: "" };
      await waitFor(async () => ["sent", "failed"].includes((m = (await w.gw.request("GET", `/v1/messages/${p.body.id}`, { token: token(localpart) })).body).status), WAIT, "the message's final status");
      return m;
    }

    /** The gateway believes `localpart` is in `room` as `nick`; the room never had it (as after a MUC service that forgot its occupants). */
    async function believedIn(localpart: string, room: string, nick: string): Promise<void> {
      await w.gw.createAccount(localpart);
      await w.gw.running.db.pool.query(
        `INSERT INTO room (account_id, room, nick, status, role, affiliation, joined_at, join_stage, checked_at, updated_at)
         SELECT id, $1, $2, 'joined', 'participant', 'none', now(), 'subject', now(), now() FROM account WHERE localpart = $3`,
        [room, nick, localpart],
      );
    }

    const joinedEvents = async (localpart: string, room: string) => (await events(localpart)).filter((e) => e.event === "room" && e.data.kind === "joined" && e.data.room === room);

    it("keeps the account in a room it was alone in after its nick change, and a group message afterwards reaches a newcomer", async () => {
      const room = `lonely-${kind}@${MUC}`;
      await w.gw.createAccount("romeo");
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: token("romeo"), body: { nick: "romeo" } });
      assert.equal(joined.status, 201, joined.text);
      assert.equal(await occupantCount(room), 1);
      const renamed = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: token("romeo"), body: { nick: "montague" } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.nick, "montague");
      // Prosody destroyed the room after the change; the gateway enters it again within moments
      // (ejabberd never lost it). Either way the room has the account, as montague.
      await waitFor(async () => (await occupantCount(room)) === 1, SOON, "the room with the account in it");
      await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("romeo") })).body.status === "joined", SOON, "the room joined");
      assert.deepEqual(await julietFinds(room), ["montague"]);
      const view = await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("romeo") });
      assert.deepEqual({ nick: view.body.nick, status: view.body.status }, { nick: "montague", status: "joined" }, view.text);
      await heard("romeo", room, "montague", "still here after the change");
      // The account's log says what happened: entered again (Prosody) after the change, or not (ejabberd).
      const again = (await joinedEvents("romeo", room)).slice(1);
      assert.deepEqual(
        again.map((e) => e.data.nick),
        kind === "prosody" ? ["montague"] : [],
        JSON.stringify(await events("romeo")),
      );
    });

    it("a group message the room refuses as from a non-occupant (not-acceptable) is failed, and the account enters again", async () => {
      const room = `forgot-${kind}@${MUC}`;
      await enterRoom(w.juliet, room, "juliet");
      await believedIn("rosaline", room, "rosaline");
      const first = await posted("rosaline", room, "is anyone there?");
      assert.deepEqual({ status: first.status, condition: first.error?.condition }, { status: "failed", condition: "not-acceptable" });
      const entered = await w.juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/rosaline` && !s.attrs.type, SOON);
      assert.ok(entered.getChild("x", NS_USER), entered.toString());
      await waitFor(async () => (await joinedEvents("rosaline", room)).length === 1, SOON, "Rosaline's joined event");
      await heard("rosaline", room, "rosaline", "now I am");
    });

    it("a group message to a room that is gone (item-not-found) is failed, and the account enters it again, making it anew", async () => {
      const room = `vanished-${kind}@${MUC}`;
      await believedIn("benvolio", room, "benvolio");
      assert.equal(await occupantCount(room), null);
      const first = await posted("benvolio", room, "hello?");
      assert.deepEqual({ status: first.status, condition: first.error?.condition }, { status: "failed", condition: "item-not-found" });
      await waitFor(async () => (await occupantCount(room)) === 1, SOON, "the room made again with the account in it");
      await waitFor(async () => (await joinedEvents("benvolio", room)).length === 1, SOON, "Benvolio's joined event");
      // Prosody keeps the room it made anew locked (XEP-0045 §10.1.1: item-not-found to others)
      // until the gateway's instant-room configuration is accepted, which the room's status waits for.
      await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("benvolio") })).body.status === "joined", SOON, "the room joined");
      assert.deepEqual(await julietFinds(room), ["benvolio"]);
      await heard("benvolio", room, "benvolio", "back");
    });

    it("a nick change in a room that is gone enters it again under the nick asked for", async () => {
      const room = `bygone-${kind}@${MUC}`;
      await believedIn("mercutio", room, "mercutio");
      const renamed = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: token("mercutio"), body: { nick: "queenmab" } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.deepEqual({ nick: renamed.body.nick, status: renamed.body.status }, { nick: "queenmab", status: "joined" });
      await waitFor(async () => (await occupantCount(room)) === 1, SOON, "the room with the account in it");
      assert.deepEqual(await julietFinds(room), ["queenmab"]);
      await heard("mercutio", room, "queenmab", "a dream");
    });
  });
}
