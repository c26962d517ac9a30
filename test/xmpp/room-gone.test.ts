// A room that no longer has the account, noticed from the room's own answers rather than after a
// quiet spell (XEP-0410 §3.2), on both servers' real MUC services with a real user (Juliet).
// Prosody 0.12 destroys a non-persistent room whose only occupant changes nick (ejabberd keeps
// it): the gateway's nick change is followed by a self-ping, whose item-not-found makes the
// account enter the room again at once. A group message or a nick change to a room that answers
// that the account is not an occupant (not-acceptable; item-not-found: no such room) does the
// same; the bounced message stays `failed`. ROOM_SELF_PING is left at its 15 minutes: no sweep
// notices anything here. On ejabberd the first and fourth tests check that nothing regresses:
// it keeps the room through the nick change, and takes a nick change to a room it does not have
// as a join (the GC 1.0 way), so the account is in either way. A nick change into a nick a user
// holds in a room that lost the account: Prosody answers item-not-found (not an occupant), and the
// gateway's rejoin under the asked nick is refused as taken (conflict); ejabberd answers the nick
// change itself with conflict, and the self-ping that follows a refused change finds the account
// out. Either way it enters under the nick it had, and the PUT answers 409. A rejoin under the
// account's own nick, taken by then, fails the join: no nick is made up for it.
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

    const { events, until } = eventLog(() => w.gw);
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

    it("a nick change into a nick taken in a room that lost the account keeps it there under its old nick, and the PUT answers the conflict", async () => {
      const room = `crowded-${kind}@${MUC}`;
      // Juliet holds the nick the account will ask for; the room never had the account.
      await enterRoom(w.juliet, room, "tybalt");
      await believedIn("paris", room, "paris");
      const renamed = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: token("paris"), body: { nick: "tybalt" } });
      assert.equal(renamed.status, 409, renamed.text);
      assert.equal(renamed.body.code, "room-nick-conflict", renamed.text);
      await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("paris") })).body.status === "joined", SOON, "the room joined again");
      const view = await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("paris") });
      assert.deepEqual({ nick: view.body.nick, status: view.body.status }, { nick: "paris", status: "joined" }, view.text);
      await w.juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/paris` && !s.attrs.type, SOON);
      await heard("paris", room, "paris", "not tybalt after all");
      assert.deepEqual((await events("paris")).filter((e) => e.event === "room" && e.data.kind === "join-failed"), []);
    });

    it("a rejoin under the account's own nick, now taken in the room, fails the join: no other nick is taken for it", async () => {
      const room = `usurped-${kind}@${MUC}`;
      // Juliet holds the nick the gateway believes the account is in under; the room never had the account.
      await enterRoom(w.juliet, room, "balthasar");
      await believedIn("balthasar", room, "balthasar");
      const first = await posted("balthasar", room, "who is there?");
      assert.deepEqual({ status: first.status, condition: first.error?.condition }, { status: "failed", condition: "not-acceptable" });
      const failed = await until("balthasar", "the rejoin's join-failed", (e) => e.event === "room" && e.data.kind === "join-failed" && e.data.room === room);
      assert.deepEqual({ nick: failed.data.nick, condition: (failed.data.error as { condition: string }).condition }, { nick: "balthasar", condition: "conflict" });
      const view = await w.gw.request("GET", `/v1/rooms/${room}`, { token: token("balthasar") });
      assert.equal(view.status, 404, view.text);
      assert.deepEqual(await joinedEvents("balthasar", room), []);
    });
  });
}
