// What a room's messages come to, on both servers' real MUC services with a real user in the room:
// a live message is news whatever its id (only the history's repeats are dropped), the history of
// someone who had the account's nick before is not the account's, a bodiless message the account
// sends (a chat state, a subject) is `sent` once reflected, a subject change or an invitation the
// room refuses, and an invitation declined, are `room` events, and a rejoin after a restart brings neither the last message
// again (ejabberd stamps history to the microsecond) nor the unchanged subject (or lack of one) again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_USER } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

for (const kind of KINDS) {
  describe(`room history and reflections (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      // The world's own database: the restart tests start a new gateway on it.
      world = await startWorld(kind, { juliet: "hist" }, { restartable: true });
      ({ server, gw } = world);
      juliet = world.users.juliet;
    });
    after(() => world?.stop());

    const { events, until } = eventLog(() => gw);
    const say = (room: string, body: string, id?: string) => juliet.send(xml("message", { to: room, type: "groupchat", ...(id ? { id } : {}) }, xml("body", {}, body)));
    const bodies = async (localpart: string) => (await events(localpart)).filter((e) => e.event === "message").map((e) => String(e.data.body));
    const join = async (localpart: string, room: string, extra: Record<string, unknown> = {}) => {
      const r = await gw.request("PUT", `/v1/rooms/${room}`, { token: gw.token(localpart), body: { nick: localpart, ...extra } });
      assert.ok([200, 201].includes(r.status), r.text);
    };

    it("takes a live message whatever its id: an id used before is another message", async () => {
      await gw.createAccount("benvolio");
      const room = `square-${kind}@${MUC}`;
      await join("benvolio", room);
      await enterRoom(juliet, room, "juliet");
      await say(room, "first with id 1", "1");
      await say(room, "second with id 1", "1");
      await say(room, "sentinel", "s");
      await until("benvolio", "the sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
      assert.deepEqual(await bodies("benvolio"), ["first with id 1", "second with id 1", "sentinel"]);
    });

    it("marks the account's message `sent` when the room reflects it, a chat state or a subject alone too", async () => {
      await gw.createAccount("balthasar");
      const token = gw.token("balthasar");
      const room = `post-${kind}@${MUC}`;
      await join("balthasar", room);
      const ids: string[] = [];
      for (const body of [{ state: "composing" }, { subject: "set by a message" }, { body: "with a body" }]) {
        const r = await gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", ...body } });
        assert.equal(r.status, 202, r.text);
        ids.push(r.body.id as string);
      }
      let statuses: string[] = [];
      const read = async () => (statuses = await Promise.all(ids.map(async (id) => (await gw.request("GET", `/v1/messages/${id}`, { token })).body.status as string)));
      await waitFor(async () => (await read()).every((s) => s === "sent"), 15_000, "all three sent").catch((err: unknown) => {
        throw new Error(`${String(err)}: ${statuses.join(", ")}`);
      });
    });

    it("does not take history from someone who had the account's nick before for the account's own", async () => {
      await gw.createAccount("samenick");
      const room = `echo-${kind}@${MUC}`;
      await enterRoom(juliet, room, "juliet"); // keeps the room (and its history) when the other leaves
      const other = await connectUser(server, "juliet", "pw-juliet", "other");
      try {
        await enterRoom(other, room, "samenick");
        await other.send(xml("message", { to: room, type: "groupchat", id: "n1" }, xml("body", {}, "not the account's")));
        await other.waitFor((s) => s.is("message") && s.getChildText("body") === "not the account's", 10_000);
        await other.send(xml("presence", { to: `${room}/samenick`, type: "unavailable" }));
        await other.waitFor((s) => s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === `${room}/samenick` && !!s.getChild("x", NS_USER), 10_000);
      } finally {
        await other.stop();
      }
      await join("samenick", room, { history: { maxStanzas: 10 } });
      const got = await until("samenick", "the history", (e) => e.event === "message" && e.data.body === "not the account's");
      assert.deepEqual([got.data.nick, got.data.own, typeof got.data.delay], ["samenick", false, "string"], JSON.stringify(got.data));
    });

    it("sends history.since to the room as XEP-0082 whatever RFC 3339 form it came in: a future one brings no history; one that is no instant (a leap second) is 400", async () => {
      const room = `since-${kind}@${MUC}`;
      await enterRoom(juliet, room, "juliet");
      await say(room, "old", "o1");
      await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === "old", 10_000);
      // A space for the T, lower-case t and z, an offset: RFC 3339 takes them, Prosody reads none.
      const forms = ["2999-01-01 00:00:00Z", "2999-01-01t00:00:00z", "2999-01-01T02:00:00+02:00"];
      for (const [i, since] of forms.entries()) {
        await gw.createAccount(`since${i}`);
        await join(`since${i}`, room, { history: { since } });
      }
      // Nothing before the sentinel, live after the joins: the room sent no history.
      await say(room, "sentinel", "s");
      for (const i of forms.keys()) {
        await until(`since${i}`, "the sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
        assert.deepEqual(await bodies(`since${i}`), ["sentinel"], forms[i]);
      }
      // The control: a past instant in one of those forms brings the history.
      await gw.createAccount("sincepast");
      await join("sincepast", room, { history: { since: "2000-01-01t00:00:00z" } });
      await until("sincepast", "the history", (e) => e.event === "message" && e.data.body === "old");
      const r = await gw.request("PUT", `/v1/rooms/${room}`, { token: gw.token("sincepast"), body: { nick: "sincepast", history: { since: "1998-12-31T23:59:60Z" } } });
      assert.deepEqual([r.status, r.body.code, r.body.field], [400, "validation-failed", "body.history.since"], r.text);
    });

    it("tells the account of a subject change or an invitation the room refuses, and of a declined invitation (XEP-0045 §8.1, §7.8.2)", async () => {
      await gw.createAccount("sampson");
      const token = gw.token("sampson");
      const room = `hall-${kind}@${MUC}`;
      await enterRoom(juliet, room, "juliet", { "muc#roomconfig_changesubject": "0", "muc#roomconfig_allowinvites": "0" });
      await join("sampson", room);
      const set = await gw.request("PUT", `/v1/rooms/${room}/subject`, { token, body: { subject: "not yours to set" } });
      assert.equal(set.status, 202, set.text);
      const invited = await gw.request("POST", `/v1/rooms/${room}/invitations`, { token, body: { jid: "nurse@localhost" } });
      assert.equal(invited.status, 202, invited.text);
      // Juliet declines an invitation of the account's (§7.8.2): Prosody relays it, ejabberd does not.
      await juliet.send(xml("message", { to: room, id: "decline" }, xml("x", { xmlns: NS_USER }, xml("decline", { to: `sampson@${gw.domain}` }, xml("reason", {}, "not tonight")))));
      await say(room, "sentinel", "s");
      await until("sampson", "the sentinel", (e) => e.event === "message" && e.data.body === "sentinel");
      const all = await events("sampson");
      assert.deepEqual(all.filter((e) => e.event === "message").map((e) => e.data.body), ["sentinel"], "a decline is no message");
      const declines = all.filter((e) => e.event === "room" && e.data.kind === "invitation-declined").map((e) => [e.data.room, e.data.reason]);
      assert.deepEqual(declines, kind === "prosody" ? [[room, "not tonight"]] : []);
      const refusals = (await events("sampson")).filter((e) => e.event === "room" && String(e.data.kind).endsWith("-failed") && e.data.kind !== "join-failed");
      // Prosody relays an invitation from any occupant of a room that is not members-only, whatever
      // muc#roomconfig_allowinvites says; ejabberd refuses it.
      const expected = [[room, "subject-failed", "string"], ...(kind === "ejabberd" ? [[room, "invitation-failed", "string"]] : [])];
      assert.deepEqual(refusals.map((e) => [e.data.room, e.data.kind, typeof (e.data.error as { condition?: string }).condition]), expected, JSON.stringify(refusals));
    });

    it("rejoins after a restart without the last message or the unchanged subject again", async () => {
      await gw.createAccount("abram");
      const token = gw.token("abram");
      // A room whose subject the account set, and one whose last message it had from the history.
      const gate = `gate-${kind}@${MUC}`;
      const street = `street-${kind}@${MUC}`;
      await join("abram", gate);
      assert.equal((await gw.request("PUT", `/v1/rooms/${gate}/subject`, { token, body: { subject: "quarrels" } })).status, 202);
      await until("abram", "the subject", (e) => e.event === "room" && e.data.kind === "subject" && e.data.subject === "quarrels");
      await enterRoom(juliet, street, "juliet");
      await say(street, "before the account came");
      await join("abram", street, { history: { maxStanzas: 5 } });
      await until("abram", "the history", (e) => e.event === "message" && e.data.body === "before the account came");
      gw = await world!.restartGateway();
      // In both again (their self-presence after the restart), then a message after the rejoin's history.
      await waitFor(async () => (await events("abram")).filter((e) => e.event === "room" && e.data.kind === "joined").length === 4, 20_000, "joined again");
      await say(street, "after the restart", "a1");
      await until("abram", "the sentinel", (e) => e.event === "message" && e.data.body === "after the restart");
      assert.deepEqual(await bodies("abram"), ["before the account came", "after the restart"]);
      // Each subject once, as the first joins had them: a rejoin's unchanged subject is no news, nor
      // is its unchanged lack of one (the empty <subject/> a room with none sends, §7.2.16).
      const subjects = (await events("abram")).filter((e) => e.event === "room" && e.data.kind === "subject").map((e) => `${String(e.data.room)} ${JSON.stringify(e.data.subject)}`);
      assert.deepEqual(subjects, [`${gate} null`, `${gate} "quarrels"`, `${street} null`]);
    });
  });
}
