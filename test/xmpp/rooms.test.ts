// Group chat (XEP-0045) on both servers' real MUC services, with a real XMPP user in the same
// rooms: a hosted account joins (creating an instant room), sees occupants and messages as events,
// changes the subject, invites, leaves; a nick conflict and a kick come back as what they are; and
// after the gateway restarts it rejoins, getting what it missed once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_MUC, NS_USER } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

for (const kind of KINDS) {
  describe(`rooms (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      // The world's own database: the restart tests start a new gateway on it.
      world = await startWorld(kind, { juliet: "muc" }, { restartable: true });
      ({ server, gw } = world);
      juliet = world.users.juliet;
    });
    after(() => world?.stop());

    const { events, until } = eventLog(() => gw);
    /** Juliet enters a room; one she creates is configured with `config` (or accepted as an instant room). */
    const julietJoins = (room: string, nick = "juliet", config: Record<string, string> = {}) => enterRoom(juliet, room, nick, config);
    const groupchat = (room: string, body: string, id: string) => juliet.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, body)));

    it("joins a new room as an instant room (201), sees a newcomer and her messages, sets the subject", async () => {
      await gw.createAccount("romeo");
      const token = gw.token("romeo");
      const room = `balcony-${kind}@${MUC}`;
      const joined = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "romeo" } });
      assert.equal(joined.status, 201, joined.text);
      assert.equal(joined.body.room, room);
      assert.equal(joined.body.status, "joined");
      assert.equal(joined.body.affiliation, "owner");
      assert.deepEqual(joined.body.occupants.map((o: { nick: string }) => o.nick), ["romeo"]);
      // The room was configured as an instant room: someone else can enter it.
      await julietJoins(room);
      const arrived = await until("romeo", "juliet joined", (e) => e.event === "room" && e.data.kind === "occupant-joined" && e.data.nick === "juliet");
      assert.equal(arrived.data.room, room);
      await groupchat(room, "hello room", "g1");
      const msg = await until("romeo", "juliet's group message", (e) => e.event === "message" && e.data.body === "hello room");
      assert.deepEqual({ room: msg.data.room, nick: msg.data.nick, own: msg.data.own, type: msg.data.type }, { room, nick: "juliet", own: false, type: "groupchat" });
      const details = await gw.request("GET", `/v1/rooms/${room}`, { token });
      assert.deepEqual(details.body.occupants.map((o: { nick: string }) => o.nick).sort(), ["juliet", "romeo"]);
      // Joining again (same nick): already in, so nothing is sent; 200 with the room as the gateway knows it.
      const again = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "romeo" } });
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.body.occupants.map((o: { nick: string }) => o.nick).sort(), ["juliet", "romeo"]);
      const setSubject = await gw.request("PUT", `/v1/rooms/${room}/subject`, { token, body: { subject: "Verona" } });
      assert.deepEqual([setSubject.status, setSubject.text], [202, ""], "accepted, with no body (not a JSON null)");
      const subject = await juliet.waitFor((s: XmlElement) => s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("subject") === "Verona", 10_000);
      assert.equal(subject.attrs.type, "groupchat");
      const changed = await until("romeo", "subject event", (e) => e.event === "room" && e.data.kind === "subject" && e.data.subject === "Verona");
      assert.equal(changed.data.room, room);
      assert.deepEqual((await gw.request("GET", "/v1/rooms", { token })).body.items.map((r: { room: string }) => r.room), [room]);

      // Group messages from the account: to the room, from its occupant; the reflection is one message, own.
      const sent = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "hello from http" } });
      assert.equal(sent.status, 202, sent.text);
      const heard = await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("body") === "hello from http", 10_000);
      assert.equal(heard.attrs.type, "groupchat");
      const reflected = await until("romeo", "the reflection", (e) => e.event === "message" && e.data.body === "hello from http");
      assert.deepEqual({ id: reflected.data.id, own: reflected.data.own, nick: reflected.data.nick }, { id: sent.body.id, own: true, nick: "romeo" });
      // Sent once the room reflected it (API.md), not merely when the XMPP server took it.
      assert.equal((await gw.request("GET", `/v1/messages/${sent.body.id}`, { token })).body.status, "sent");
      const history = await gw.request("GET", `/v1/messages?with=${room}`, { token });
      const bodies = history.body.items.map((m: { body: string; direction: string }) => `${m.direction}:${m.body}`);
      assert.deepEqual(bodies.filter((b: string) => b.endsWith("hello from http")), ["out:hello from http"], "recorded once");
      assert.ok(bodies.includes("in:hello room"), `the room's messages are in the conversation: ${bodies.join(", ")}`);
      const elsewhere = await gw.request("POST", "/v1/messages", { token, body: { to: `nowhere-${kind}@${MUC}`, type: "groupchat", body: "x" } });
      assert.equal(elsewhere.status, 404);
      assert.equal(elsewhere.body.code, "room-not-joined");
    });

    it("refuses a nick in use (409 room-nick-conflict), reports a kick and a ban with their reason and actor, and refuses a banned account (403 room-banned)", async () => {
      await gw.createAccount("tybalt");
      const token = gw.token("tybalt");
      const room = `duel-${kind}@${MUC}`;
      await julietJoins(room);
      const clash = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "juliet" } });
      assert.equal(clash.status, 409, clash.text);
      assert.equal(clash.body.code, "room-nick-conflict");
      const ok = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "tybalt" } });
      assert.equal(ok.status, 200, ok.text);
      // Juliet created the room: she is its owner and may kick (XEP-0045 §8.2).
      await juliet.send(xml("iq", { to: room, type: "set", id: "kick" }, xml("query", { xmlns: `${NS_MUC}#admin` }, xml("item", { nick: "tybalt", role: "none" }, xml("reason", {}, "behave")))));
      await juliet.waitFor((s) => s.is("iq") && s.attrs.id === "kick", 10_000);
      const kicked = await until("tybalt", "kicked", (e) => e.event === "room" && e.data.kind === "kicked" && e.data.self === true);
      // The reason and who kicked are in the muc#user <item/> (§8.2), not in a <status/>.
      assert.deepEqual(kicked.data, { room, kind: "kicked", nick: "tybalt", self: true, reason: "behave", actor: "juliet" });
      assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token })).status, 404);
      // Banned while in the room (an outcast, XEP-0045 §9.1): a `banned` event with the reason, and the next join is refused with 403 room-banned.
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "tybalt" } })).status, 200);
      await juliet.send(xml("iq", { to: room, type: "set", id: "ban" }, xml("query", { xmlns: `${NS_MUC}#admin` }, xml("item", { jid: `tybalt@${gw.domain}`, affiliation: "outcast" }, xml("reason", {}, "for good")))));
      await juliet.waitFor((s) => s.is("iq") && s.attrs.id === "ban", 10_000);
      const out = await until("tybalt", "banned", (e) => e.event === "room" && e.data.kind === "banned" && e.data.self === true);
      assert.deepEqual(out.data, { room, kind: "banned", nick: "tybalt", self: true, reason: "for good", actor: "juliet" });
      const banned = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "tybalt" } });
      assert.equal(banned.status, 403, banned.text);
      assert.equal(banned.body.code, "room-banned");
      assert.equal((await gw.request("GET", "/v1/rooms", { token })).body.items.length, 0);
    });

    it("changes nick in a joined room (XEP-0045 §7.6); a refused change keeps the old nick and the room", async () => {
      await gw.createAccount("balthasar");
      const token = gw.token("balthasar");
      const room = `piazza-${kind}@${MUC}`;
      await julietJoins(room);
      const joined = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "balthasar" } });
      assert.equal(joined.status, 200, joined.text);
      const renamed = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "merc" } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.nick, "merc");
      await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/merc` && !s.attrs.type, 10_000);
      // The same occupant under its new nick: the old one is gone.
      assert.deepEqual((await gw.request("GET", `/v1/rooms/${room}`, { token })).body.occupants.map((o: { nick: string }) => o.nick), ["juliet", "merc"]);
      // Juliet's nick is taken: the room refuses (§7.6.3), and the account stays in as "merc".
      const clash = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "juliet" } });
      assert.equal(clash.status, 409, clash.text);
      assert.equal(clash.body.code, "room-nick-conflict");
      const still = await gw.request("GET", `/v1/rooms/${room}`, { token });
      assert.equal(still.status, 200, still.text);
      assert.deepEqual({ nick: still.body.nick, status: still.body.status }, { nick: "merc", status: "joined" });
      const sent = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "still here" } });
      assert.equal(sent.status, 202, sent.text);
      await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/merc` && s.getChildText("body") === "still here", 10_000);
    });

    it("refuses a nick that is no resourcepart of the occupant JID (400 invalid-jid, body.nick) and joins with the prepared nick; the link stays up", async () => {
      await gw.createAccount("peter");
      const token = gw.token("peter");
      const room = `gate-${kind}@${MUC}`;
      let drops = 0;
      const onDrop = () => drops++;
      gw.running.link.on("offline", onDrop);
      try {
        // U+FFFE/U+FFFF are not XML at all; U+0085 is a control; 400 × "€" is 1200 octets (RFC 7622 §3.1: at most 1023);
        // white space alone is a resourcepart, but no nick (Prosody: "Invisible Nicknames are forbidden").
        for (const nick of ["a\uFFFE", "a\uFFFF", "a\u0085b", "€".repeat(400), "   ", " \u3000"]) {
          const r = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick } });
          assert.equal(r.status, 400, `${JSON.stringify(nick)}: ${r.text}`);
          assert.deepEqual({ code: r.body.code, field: r.body.field }, { code: "invalid-jid", field: "body.nick" });
        }
        // One the gateway takes and the room's server refuses (Prosody: jid-malformed; ejabberd:
        // bad-request, "Bad value of attribute 'to'"): the nick is at fault either way.
        // (A room of its own: Prosody may leave the room it made for that join locked.)
        const refused = await gw.request("PUT", `/v1/rooms/postern-${kind}@${MUC}`, { token, body: { nick: "\u{1F339} peter" } });
        assert.deepEqual([refused.status, refused.body.code, refused.body.field], [400, "invalid-jid", "body.nick"], refused.text);
        assert.deepEqual((await gw.request("GET", "/v1/rooms", { token })).body.items, []);
        // NFD in, NFC (RFC 7622 §3.4, OpaqueString) sent, stored and shown.
        const joined = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "Pe\u0301ter" } });
        assert.equal(joined.status, 201, joined.text);
        assert.equal(joined.body.nick, "P\u00e9ter");
        assert.deepEqual(joined.body.occupants.map((o: { nick: string }) => o.nick), ["P\u00e9ter"]);
        // A nick change to white space alone is refused alike, and the account keeps its nick.
        const blank = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "  " } });
        assert.deepEqual([blank.status, blank.body.code, blank.body.field], [400, "invalid-jid", "body.nick"], blank.text);
        assert.deepEqual((await gw.request("GET", `/v1/rooms/${room}`, { token })).body.nick, "P\u00e9ter");
        await julietJoins(room);
        await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/P\u00e9ter`, 10_000);
        assert.equal(drops, 0, "the component link never dropped");
      } finally {
        gw.running.link.off("offline", onDrop);
      }
    });

    it("refuses a password-protected room without its password (403 room-password-required) and a members-only room (403 room-members-only)", async () => {
      await gw.createAccount("laurence");
      const token = gw.token("laurence");
      const locked = `crypt-${kind}@${MUC}`;
      await julietJoins(locked, "juliet", { "muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "potion" });
      const refused = await gw.request("PUT", `/v1/rooms/${locked}`, { token, body: { nick: "laurence" } });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.code, "room-password-required");
      const wrong = await gw.request("PUT", `/v1/rooms/${locked}`, { token, body: { nick: "laurence", password: "poison" } });
      assert.equal(wrong.body.code, "room-password-required", wrong.text);
      const entered = await gw.request("PUT", `/v1/rooms/${locked}`, { token, body: { nick: "laurence", password: "potion" } });
      assert.equal(entered.status, 200, entered.text);
      assert.ok(!("password" in entered.body), "the password is not shown back");
      const privateRoom = `vault-${kind}@${MUC}`;
      await julietJoins(privateRoom, "juliet", { "muc#roomconfig_membersonly": "1" });
      const outsider = await gw.request("PUT", `/v1/rooms/${privateRoom}`, { token, body: { nick: "laurence" } });
      assert.equal(outsider.status, 403, outsider.text);
      assert.equal(outsider.body.code, "room-members-only");
      assert.deepEqual((await gw.request("GET", "/v1/rooms", { token })).body.items.map((r: { room: string }) => r.room), [locked]);
    });

    it("answers a refused join as no room at all: GET and DELETE are 404 room-not-joined, the list leaves it out, the next join is a new one", async () => {
      await gw.createAccount("gregory");
      const token = gw.token("gregory");
      const room = `tomb-${kind}@${MUC}`;
      await julietJoins(room, "juliet", { "muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "potion" });
      const refused = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "gregory" } });
      assert.deepEqual([refused.status, refused.body.code], [403, "room-password-required"], refused.text);
      const got = await gw.request("GET", `/v1/rooms/${room}`, { token });
      assert.deepEqual([got.status, got.body.code], [404, "room-not-joined"], got.text);
      assert.deepEqual((await gw.request("GET", "/v1/rooms", { token })).body.items, []);
      // Not in the room: nothing to leave (README: 404 room-not-joined means not in the room at all).
      const left = await gw.request("DELETE", `/v1/rooms/${room}`, { token });
      assert.deepEqual([left.status, left.body?.code], [404, "room-not-joined"], left.text);
      // The refused join's row is forgotten all the same.
      const rows = await gw.running.db.pool.query("SELECT 1 FROM room r JOIN account a ON a.id = r.account_id WHERE a.localpart = 'gregory' AND r.room = $1", [room]);
      assert.equal(rows.rowCount, 0, "the failed join's row is gone");
      const again = await gw.request("DELETE", `/v1/rooms/${room}`, { token });
      assert.deepEqual([again.status, again.body?.code], [404, "room-not-joined"], again.text);
      const entered = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "gregory", password: "potion" } });
      assert.equal(entered.status, 200, entered.text);
      const out = await gw.request("DELETE", `/v1/rooms/${room}`, { token });
      assert.equal(out.status, 204, out.text);
      await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/gregory` && s.attrs.type === "unavailable", 10_000);
    });

    it("invites through the room, receives a direct invitation, and leaves", async () => {
      await gw.createAccount("benvolio");
      const token = gw.token("benvolio");
      const room = `square-${kind}@${MUC}`;
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "benvolio" } })).status, 201);
      assert.equal((await gw.request("POST", `/v1/rooms/${room}/invitations`, { token, body: { jid: "juliet@localhost", reason: "come" } })).status, 202);
      const invite = await juliet.waitFor((s) => s.is("message") && s.attrs.from === room && !!s.getChild("x", NS_USER)?.getChild("invite"), 10_000);
      assert.equal(invite.getChild("x", NS_USER)!.getChild("invite")!.getChildText("reason"), "come");
      await juliet.send(xml("message", { to: `benvolio@${gw.domain}` }, xml("x", { xmlns: "jabber:x:conference", jid: `other-${kind}@${MUC}`, reason: "and here" })));
      const invited = await until("benvolio", "direct invitation", (e) => e.event === "room" && e.data.kind === "invited");
      assert.deepEqual({ room: invited.data.room, via: invited.data.via, reason: invited.data.reason }, { room: `other-${kind}@${MUC}`, via: "direct", reason: "and here" });
      await julietJoins(room);
      assert.equal((await gw.request("DELETE", `/v1/rooms/${room}`, { token })).status, 204);
      await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/benvolio` && s.attrs.type === "unavailable", 10_000);
      assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token })).status, 404);
      assert.equal((await gw.request("DELETE", `/v1/rooms/${room}`, { token })).status, 404);
    });

    it("exchanges private messages with an occupant (XEP-0045 §7.5): the account's answer goes from its occupant JID and reaches her; a message to a full JID in no room keeps the session's", async () => {
      await gw.createAccount("abram");
      const token = gw.token("abram", { resource: "desk" });
      const room = `arbour-${kind}@${MUC}`;
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "abram" } })).status, 201);
      await julietJoins(room);
      await juliet.send(xml("message", { to: `${room}/abram`, type: "chat", id: "pm1" }, xml("body", {}, "a word, abram"), xml("markable", { xmlns: "urn:xmpp:chat-markers:0" })));
      const pm = await until("abram", "her private message", (e) => e.event === "message" && e.data.body === "a word, abram");
      assert.equal(pm.data.from, `${room}/juliet`);
      const answer = await gw.request("POST", "/v1/messages", { token, body: { to: pm.data.from, type: "chat", body: "a word back" } });
      assert.equal(answer.status, 202, answer.text);
      // The room passes it on from the account's occupant JID (from anyone else it answers not-acceptable).
      const heard = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === "a word back", 10_000);
      assert.equal(heard.attrs.from, `${room}/abram`);
      assert.equal(heard.attrs.type, "chat");
      const view = async () => (await gw.request("GET", `/v1/messages/${answer.body.id}`, { token })).body;
      await waitFor(async () => (await view()).status === "sent", 10_000, "the answer sent");
      assert.equal((await view()).from, `abram@${gw.domain}/rooms`);
      // What marks or changes a private message goes the same way: the displayed marker, a correction.
      assert.equal((await gw.request("POST", `/v1/messages/${pm.data.id}/displayed`, { token })).status, 204);
      const marker = await juliet.waitFor((s) => s.is("message") && s.getChild("displayed", "urn:xmpp:chat-markers:0")?.attrs.id === "pm1", 10_000);
      assert.equal(marker.attrs.from, `${room}/abram`);
      const fix = await gw.request("POST", "/v1/messages", { token, body: { to: pm.data.from, type: "chat", body: "a better word back", replace: answer.body.id } });
      assert.equal(fix.status, 202, fix.text);
      const corrected = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === "a better word back", 10_000);
      assert.equal(corrected.attrs.from, `${room}/abram`);
      assert.ok(corrected.getChild("replace", "urn:xmpp:message-correct:0"), "a correction");
      // Not every full JID is an occupant's: to Juliet's own session it goes from the account's session.
      const direct = await gw.request("POST", "/v1/messages", { token, body: { to: "juliet@localhost/muc", type: "chat", body: "and to you" } });
      assert.equal(direct.status, 202, direct.text);
      const straight = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === "and to you", 10_000);
      assert.equal(straight.attrs.from, `abram@${gw.domain}/desk`);
    });

    it("takes the room's destruction by its owner (XEP-0045 §10.9) as a `destroyed` event with the reason and the alternate room; the room is no longer the account's, and a new join makes it again", async () => {
      await gw.createAccount("capulet");
      const token = gw.token("capulet");
      const room = `ballroom-${kind}@${MUC}`;
      await julietJoins(room);
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "capulet" } })).status, 200);
      await juliet.send(
        xml("iq", { to: room, type: "set", id: `destroy-${kind}` }, xml("query", { xmlns: `${NS_MUC}#owner` }, xml("destroy", { jid: `hall-${kind}@${MUC}` }, xml("reason", {}, "the feast is over")))),
      );
      const done = await juliet.waitFor((s) => s.is("iq") && s.attrs.id === `destroy-${kind}`, 10_000);
      assert.equal(done.attrs.type, "result");
      const destroyed = await until("capulet", "the destruction", (e) => e.event === "room" && e.data.kind === "destroyed");
      assert.deepEqual(
        { room: destroyed.data.room, nick: destroyed.data.nick, self: destroyed.data.self, reason: destroyed.data.reason, alternate: destroyed.data.alternate },
        { room, nick: "capulet", self: true, reason: "the feast is over", alternate: `hall-${kind}@${MUC}` },
      );
      assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token })).status, 404);
      assert.deepEqual((await gw.request("GET", "/v1/rooms", { token })).body.items, []);
      // Joining again is a join, not "already in": the room is made anew, the account its owner.
      const again = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "capulet" } });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.body.affiliation, "owner");
    });

    it("takes a mediated invitation (XEP-0045 §7.8.2) as a room event only: the room's fallback body is no message and no conversation", async () => {
      await gw.createAccount("rosaline");
      const token = gw.token("rosaline");
      const room = `orchard-${kind}@${MUC}`;
      await julietJoins(room);
      await juliet.send(xml("message", { to: room, id: "inv" }, xml("x", { xmlns: NS_USER }, xml("invite", { to: `rosaline@${gw.domain}` }, xml("reason", {}, "the feast")))));
      const invited = await until("rosaline", "the mediated invitation", (e) => e.event === "room" && e.data.kind === "invited");
      assert.deepEqual({ room: invited.data.room, via: invited.data.via, reason: invited.data.reason }, { room, via: "mediated", reason: "the feast" });
      // The inviter as the room shows her: her real JID, or (Prosody, in a room that hides real JIDs) her occupant JID.
      assert.ok([`${room}/juliet`, "juliet@localhost/muc"].includes(String(invited.data.from)), String(invited.data.from));
      // A message from Juliet after it: once it is in the log, the invitation was handled whole.
      await juliet.send(xml("message", { to: `rosaline@${gw.domain}`, type: "chat", id: "after-inv" }, xml("body", {}, "sentinel")));
      await until("rosaline", "the sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
      assert.deepEqual((await events("rosaline")).map((e) => e.event), ["room", "message"], "the invitation, then the sentinel: no message from the room");
      assert.deepEqual((await gw.request("GET", `/v1/messages?with=${room}`, { token })).body.items, [], "nothing stored from the room");
      const conversations = (await gw.request("GET", "/v1/conversations", { token })).body.items as { with: string }[];
      assert.deepEqual(conversations.map((c) => c.with), ["juliet@localhost"]);
    });

    it("rejoins after a gateway restart and gets what it missed once", async () => {
      await gw.createAccount("mercutio");
      const room = `tavern-${kind}@${MUC}`;
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token: gw.token("mercutio"), body: { nick: "mercutio" } })).status, 201);
      await julietJoins(room);
      // A second occupant (Juliet's second resource, as "nurse") who leaves while the gateway is away.
      const second = await connectUser(server, "juliet", "pw-juliet", "muc-second");
      await second.send(xml("presence", { to: `${room}/nurse` }, xml("x", { xmlns: NS_MUC })));
      await until("mercutio", "nurse joined", (e) => e.event === "room" && e.data.kind === "occupant-joined" && e.data.nick === "nurse");
      await groupchat(room, "before", "b1");
      await until("mercutio", "before", (e) => e.event === "message" && e.data.body === "before");
      // Its own message is the last one it saw: the rejoin's history (since is inclusive) replays it.
      const mine = await gw.request("POST", "/v1/messages", { token: gw.token("mercutio"), body: { to: room, type: "groupchat", body: "mine" } });
      assert.equal(mine.status, 202, mine.text);
      await until("mercutio", "own reflection", (e) => e.event === "message" && e.data.body === "mine" && e.data.own === true);
      gw = await world!.restartGateway(() => second.stop());
      await groupchat(room, "while away", "w1");
      await until("mercutio", "missed message", (e) => e.event === "message" && e.data.body === "while away");
      await groupchat(room, "after", "a1");
      await until("mercutio", "after", (e) => e.event === "message" && e.data.body === "after");
      const bodies = (await events("mercutio")).filter((e) => e.event === "message").map((e) => e.data.body);
      assert.deepEqual(bodies, ["before", "mine", "while away", "after"]);
      // The rejoin's occupant list is the room now: the nurse left while the gateway was away.
      const now = await gw.request("GET", `/v1/rooms/${room}`, { token: gw.token("mercutio") });
      assert.deepEqual(now.body.occupants.map((o: { nick: string }) => o.nick), ["juliet", "mercutio"]);
      await until("mercutio", "nurse left", (e) => e.event === "room" && e.data.kind === "occupant-left" && e.data.nick === "nurse");
    });

    it("contains hostile room traffic: a flood, a 100 kB subject, stanzas posing as a room; the link stays up and nothing reaches another account", async () => {
      await gw.createAccount("paris");
      await gw.createAccount("nurse"); // in no room: must see nothing of it
      const room = `flood-${kind}@${MUC}`;
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token: gw.token("paris"), body: { nick: "paris" } })).status, 201);
      await julietJoins(room);
      let drops = 0;
      const onDrop = () => drops++;
      gw.running.link.on("offline", onDrop);
      try {
        for (let i = 0; i < 300; i++) void groupchat(room, `flood ${i}`, `f${i}`);
        await juliet.send(xml("message", { to: room, type: "groupchat", id: "big" }, xml("subject", {}, "s".repeat(100_000))));
        // Posing as a room: a groupchat and an occupant presence straight from a user, to the rooms resource.
        await juliet.send(xml("message", { to: `paris@${gw.domain}/rooms`, type: "groupchat", id: "fake" }, xml("body", {}, "i am a room")));
        await juliet.send(xml("presence", { to: `paris@${gw.domain}/rooms` }, xml("x", { xmlns: NS_USER }, xml("item", { role: "moderator", affiliation: "owner" }), xml("status", { code: "110" }))));
        await groupchat(room, "sentinel", "sentinel");
        await until("paris", "sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
        const got = (await events("paris")).filter((e) => e.event === "message").map((e) => String(e.data.body));
        assert.deepEqual(got.filter((b) => b.startsWith("flood ")), Array.from({ length: 300 }, (_, i) => `flood ${i}`), "the flood, each once, in order");
        assert.ok(!got.includes("i am a room"), "a user posing as a room is not a room message");
        const subject = await until("paris", "the big subject", (e) => e.event === "room" && e.data.kind === "subject" && String(e.data.subject).length === 100_000);
        assert.equal(subject.data.room, room);
        // The fake occupant presence changed nothing: the room still lists paris and juliet only.
        assert.deepEqual((await gw.request("GET", `/v1/rooms/${room}`, { token: gw.token("paris") })).body.occupants.map((o: { nick: string }) => o.nick).sort(), ["juliet", "paris"]);
        assert.equal(drops, 0, "the component link never dropped");
        // Another account saw none of it (its log is proven readable by a message sent to it after).
        await juliet.sendMessage(`nurse@${gw.domain}`, "only this");
        await until("nurse", "its own message", (e) => e.event === "message" && e.data.body === "only this");
        assert.deepEqual((await events("nurse")).map((e) => e.event), ["message"]);
      } finally {
        gw.running.link.off("offline", onDrop);
      }
    });

    it("rejoins after the XMPP server restarts (its rooms are gone: the rejoin makes the room again)", async () => {
      await gw.createAccount("friar");
      const token = gw.token("friar");
      const room = `cell-${kind}@${MUC}`;
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "friar" } })).status, 201);
      const joinedBefore = (await events("friar")).filter((e) => e.event === "room" && e.data.kind === "joined").length;
      await juliet.stop();
      await server.restart();
      // The link comes back and the account enters the room again (a second `joined`).
      await waitFor(async () => (await events("friar")).filter((e) => e.event === "room" && e.data.kind === "joined").length > joinedBefore, 30_000, "joined again");
      juliet = await connectUser(server, "juliet", "pw-juliet", "muc");
      if (world) world.users.juliet = juliet; // the world stops her at the end
      await juliet.sendPresence();
      await julietJoins(room);
      await groupchat(room, "after the restart", "r1");
      await until("friar", "a message after the restart", (e) => e.event === "message" && e.data.body === "after the restart");
      const sent = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "and back" } });
      assert.equal(sent.status, 202, sent.text);
      await juliet.waitFor((st) => st.is("message") && st.attrs.from === `${room}/friar` && st.getChildText("body") === "and back", 10_000);
    });
  });
}
