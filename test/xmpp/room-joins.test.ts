// Joining a room (XEP-0045 §7.2) on both servers' real MUC services, with a real XMPP user in the
// same rooms. The join's answer comes once the room sent its subject message, the last stanza of a
// join (§7.2.16), so it carries the subject another occupant set, even behind a long history. And
// the account's nick in a room is the one the room gives in the self-presence (status 110): both
// servers prepare nicks with stringprep's resourceprep (NFKC), so U+FB01 "ﬁ", which the API takes
// as it is (RFC 7622 §3.4, OpaqueString), is "fi" in the room.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { JOIN_TIMEOUT_MS } from "../../src/domain/muc.js";
import { startTestGateway } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_USER, roomWorld, type Ev } from "../helpers/muc.js";
import { receivedFrom } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

/** The harness's rooms keep 50 messages of history (scripts/harness/xmpp-server.ts). */
const HISTORY = 50;

for (const kind of KINDS) {
  describe(`room joins (${kind})`, () => {
    const w = roomWorld(kind);

    const { events, until } = eventLog(() => w.gw);
    /** Juliet enters a room someone else made (no configuration to do). */
    const julietJoins = (room: string) => enterRoom(w.juliet, room, "juliet");

    it("answers a join with the subject another occupant set, sent after a full history (XEP-0045 §7.2.16); no subject is null", async () => {
      await w.gw.createAccount("romeo");
      await w.gw.createAccount("benvolio");
      const room = `verona-${kind}@${MUC}`;
      const made = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: w.gw.token("romeo"), body: { nick: "romeo" } });
      assert.equal(made.status, 201, made.text);
      // A new room has no subject: the room says so with an empty <subject/>, which is null here.
      assert.equal(made.body.subject, null);
      assert.equal((await w.gw.request("PUT", `/v1/rooms/${room}/subject`, { token: w.gw.token("romeo"), body: { subject: "Two households" } })).status, 202);
      await until("romeo", "the subject change", (e) => e.event === "room" && e.data.kind === "subject" && e.data.subject === "Two households");
      // A full history comes between the newcomer's self-presence and the subject message (§7.2.15).
      await julietJoins(room);
      for (let i = 0; i < HISTORY; i++) await w.juliet.send(xml("message", { to: room, type: "groupchat", id: `h${i}` }, xml("body", {}, `line ${i}`)));
      await w.juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/juliet` && s.getChildText("body") === `line ${HISTORY - 1}`, 10_000);
      // All of it: Prosody sends 20 unless asked for more.
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: w.gw.token("benvolio"), body: { nick: "benvolio", history: { maxStanzas: HISTORY } } });
      assert.equal(joined.status, 200, joined.text);
      assert.equal(joined.body.subject, "Two households");
      // The history came before the answer, each line once.
      const lines = (await events("benvolio")).filter((e) => e.event === "message").map((e) => e.data.body);
      assert.deepEqual(lines, Array.from({ length: HISTORY }, (_, i) => `line ${i}`));
      assert.equal((await w.gw.request("GET", `/v1/rooms/${room}`, { token: w.gw.token("benvolio") })).body.subject, "Two households");
    });

    it("takes the nick the room gives (U+FB01 'ﬁ' prepared to 'fi'): the answer, the list, and its own message once as own", async () => {
      await w.gw.createAccount("paris");
      const token = w.gw.token("paris");
      const room = `field-${kind}@${MUC}`;
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "\uFB01eld" } });
      assert.equal(joined.status, 201, joined.text);
      assert.equal(joined.body.nick, "field", "the nick the room gave");
      assert.deepEqual(joined.body.occupants.map((o: { nick: string }) => o.nick), ["field"]);
      assert.deepEqual((await w.gw.request("GET", "/v1/rooms", { token })).body.items.map((r: { nick: string }) => r.nick), ["field"]);
      await julietJoins(room);
      await w.juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/field` && !s.attrs.type, 10_000);
      const sent = await w.gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "a rose by any other name" } });
      assert.equal(sent.status, 202, sent.text);
      await w.juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/field` && s.getChildText("body") === "a rose by any other name", 10_000);
      await until("paris", "the reflection", (e) => e.event === "message" && e.data.body === "a rose by any other name");
      // Whatever else the room sends comes after the reflection: Juliet's message marks the end.
      await w.juliet.send(xml("message", { to: room, type: "groupchat", id: "end" }, xml("body", {}, "end")));
      await until("paris", "juliet's message", (e) => e.event === "message" && e.data.body === "end");
      const mine = (await events("paris")).filter((e) => e.event === "message" && e.data.body === "a rose by any other name");
      assert.deepEqual(
        mine.map((e) => ({ id: e.data.id, own: e.data.own, nick: e.data.nick })),
        [{ id: sent.body.id, own: true, nick: "field" }],
        "the account's own message, once, as its own",
      );
      assert.equal((await w.gw.request("GET", `/v1/messages/${sent.body.id}`, { token })).body.status, "sent");
      // Joining again with the nick first asked for: the room presents the account under the nick it has.
      const again = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "\uFB01eld" } });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.nick, "field");
      assert.deepEqual(again.body.occupants.map((o: { nick: string }) => o.nick).sort(), ["field", "juliet"]);
    });

    it("answers joins made through an instance that does not hold the link (a standby): the room's answers reach it through the account's log (NOTIFY)", async () => {
      // Same database, XMPP_LINK_MODE=single: the first gateway holds the link and records the
      // answers; the standby's requests learn of them from Postgres only. Answered well before the
      // join's deadline, whose last look would find the answer too.
      const standby = await startTestGateway(w.server, {}, w.gw.db);
      try {
        await w.gw.createAccount("abraham");
        const token = w.gw.token("abraham");
        const started = Date.now();
        const made = await standby.request("PUT", `/v1/rooms/standby-${kind}@${MUC}`, { token, body: { nick: "abraham" } });
        assert.ok(Date.now() - started < JOIN_TIMEOUT_MS / 2, `answered after ${Date.now() - started} ms`);
        assert.equal(made.status, 201, made.text);
        assert.deepEqual([made.body.status, made.body.nick, made.body.subject], ["joined", "abraham", null]);
        const room = `standby-juliet-${kind}@${MUC}`;
        await julietJoins(room);
        const entered = await standby.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "abraham" } });
        assert.equal(entered.status, 200, entered.text);
        assert.deepEqual(entered.body.occupants.map((o: { nick: string }) => o.nick).sort(), ["abraham", "juliet"]);
      } finally {
        await standby.stop();
      }
    });

    /** What an event is, for comparing logs: `room:joined`, `message:<body>`. */
    const what = (e: Ev) => `${e.event}:${String(e.event === "room" ? e.data.kind : e.data.body)}`;
    /** The account's events after `seen` about `room`: room events and the room's messages. */
    const since = async (localpart: string, room: string, seen: number) => (await events(localpart)).filter((e) => e.id > seen && e.data.room === room).map(what);
    /**
     * The sentinel (test/helpers/sentinel.ts): a group message from the account. It goes out through
     * the outbox behind anything the requests before it queued for the room, and the room reflects
     * it behind its answers to those: once its reflection is an event, whatever the earlier requests
     * made the room send is in the log. Returns the index of Juliet's copy in her stanzas.
     */
    const sentinel = async (localpart: string, room: string, body: string): Promise<number> => {
      const sent = await w.gw.request("POST", "/v1/messages", { token: w.gw.token(localpart), body: { to: room, type: "groupchat", body } });
      assert.equal(sent.status, 202, sent.text);
      await until(localpart, `the reflection of ${body}`, (e) => e.event === "message" && e.data.body === body && e.data.own === true);
      return w.juliet.stanzas.indexOf(await w.juliet.waitFor((s) => s.is("message") && s.attrs.from?.startsWith(`${room}/`) && s.getChildText("body") === body, 10_000));
    };

    it("logs joined before the room's subject (XEP-0045 §7.2.16); the same PUT again is 200 at once and sends nor logs anything (RFC 9110 §9.2.2)", async () => {
      await w.gw.createAccount("mercutio");
      const token = w.gw.token("mercutio");
      const room = `again-${kind}@${MUC}`;
      const made = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "mercutio" } });
      assert.equal(made.status, 201, made.text);
      // The self-presence confirms the join; the subject message comes after it (§7.2.16).
      assert.deepEqual(await since("mercutio", room, 0), ["room:joined", "room:subject"]);
      await julietJoins(room);
      await until("mercutio", "juliet joined", (e) => e.event === "room" && e.data.kind === "occupant-joined" && e.data.nick === "juliet");
      const seen = (await events("mercutio")).at(-1)!.id;
      const mark = w.juliet.stanzas.length;
      const again = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "mercutio" } });
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(
        { ...again.body, occupants: again.body.occupants.map((o: { nick: string }) => o.nick).sort() },
        { room, nick: "mercutio", status: "joined", role: "moderator", affiliation: "owner", subject: null, occupants: ["juliet", "mercutio"] },
      );
      const end = await sentinel("mercutio", room, "still here");
      // No join presence went to the room: it sent nothing again (no second joined, subject or
      // occupant presence in the log), and Juliet saw no presence from the account's occupant.
      assert.deepEqual(await since("mercutio", room, seen), ["message:still here"]);
      assert.deepEqual(receivedFrom(w.juliet, `${room}/mercutio`, mark, end).filter((s) => s.is("presence")).map(String), []);
    });

    it("a PUT with another nick is a nick change (XEP-0045 §7.6): one nick-changed event, no second joined or subject", async () => {
      await w.gw.createAccount("peter");
      const token = w.gw.token("peter");
      const room = `rename-${kind}@${MUC}`;
      await julietJoins(room);
      assert.equal((await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "peter" } })).status, 200);
      const seen = (await events("peter")).at(-1)!.id;
      const mark = w.juliet.stanzas.length;
      const renamed = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "pietro" } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal(renamed.body.nick, "pietro");
      const end = await sentinel("peter", room, "renamed");
      assert.deepEqual(await since("peter", room, seen), ["room:nick-changed", "message:renamed"]);
      // Juliet saw the occupant renamed (unavailable with 303 and the new nick, §7.6.2), not leaving.
      const gone = receivedFrom(w.juliet, `${room}/peter`, mark, end).filter((s) => s.is("presence"));
      assert.deepEqual(gone.map((s) => [s.attrs.type, s.getChild("x", NS_USER)?.getChild("item")?.attrs.nick, s.getChild("x", NS_USER)?.getChildren("status").map((c) => c.attrs.code).includes("303")]), [["unavailable", "pietro", true]]);
    });

    it("two PUTs for the same new join at once send one join: both answer once the room confirmed it, with one joined and one subject event", async () => {
      await w.gw.createAccount("sampson");
      const token = w.gw.token("sampson");
      const room = `twice-${kind}@${MUC}`;
      await julietJoins(room);
      const put = () => w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "sampson" } });
      const answers = await Promise.all([put(), put()]);
      assert.deepEqual(answers.map((a) => [a.status, a.body.nick, a.body.status]), [[200, "sampson", "joined"], [200, "sampson", "joined"]], answers.map((a) => a.text).join(" "));
      await sentinel("sampson", room, "once");
      assert.deepEqual(await since("sampson", room, 0), ["room:joined", "room:subject", "message:once"]);
    });
  });
}
