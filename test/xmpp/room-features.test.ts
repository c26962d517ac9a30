// Message features in group chat (API.md "Message features (1.1)" in a XEP-0045 room) end to end
// on Prosody's and ejabberd's MUC services, with real XMPP users in the room: an occupant's
// corrections (XEP-0308) and retractions (XEP-0424) change her own group message only (not the
// nurse's forgeries, nor the nurse's once she took Juliet's nick: the room shows the account, its
// owner, their real JIDs), occupants' reactions (XEP-0444) are theirs; none is a message. The
// account corrects, reacts and retracts in the room: the occupants get group messages naming the
// ids the XEPs say, the correction re-sending the whole original (XEP-0308 §Business Rules, in
// one-to-one chat too), and the room's reflections change nothing twice. An occupant's reactions,
// markers and receipts in private messages (XEP-0045 §7.5) are taken as a contact's one-to-one.
//
// The harness's rooms keep no archive, and so assign no XEP-0359 stanza-id of their own (Prosody
// without mod_muc_mam, ejabberd with mam: false); they pass on one their sender put in. Where a
// test needs a room-assigned stanza-id (XEP-0424 and XEP-0444 name group messages by it), Juliet
// puts in the one an archiving room would have added.
//
// "Nothing happened" is proven by a sentinel: a later group message from the same occupant (the
// room relays an occupant's messages in order, and the gateway handles them in arrival order), or
// one of the account's own, whose reflection comes back behind everything it sent before.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver, type Ev } from "../helpers/account-driver.js";
import { uniq, type TestGateway } from "../helpers/gateway.js";
import { enterRoom, MUC } from "../helpers/muc.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const NURSE = "nurse@localhost";
const NS = {
  correct: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  fallback: "urn:xmpp:fallback:0",
  reactions: "urn:xmpp:reactions:0",
  reply: "urn:xmpp:reply:0",
  markers: "urn:xmpp:chat-markers:0",
  oob: "jabber:x:oob",
  sid: "urn:xmpp:sid:0",
};
const FALLBACK = "/me retracted a previous message, but it's unsupported by your client.";

for (const kind of KINDS) {
  describe(`message features in group chat (${kind})`, () => {
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;
    let world: XmppWorld<"juliet" | "nurse"> | undefined;

    before(async () => {
      world = await startWorld(kind, { juliet: "muc", nurse: "garden" });
      gw = world.gw;
      ({ juliet, nurse } = world.users);
    });
    after(() => world?.stop());

    /** A room the account creates (as its owner it is shown real JIDs, XEP-0045 §7.2.3) and `others` enter. */
    async function roomWith(r: AccountDriver, others: [XmppUser, string][]): Promise<string> {
      const room = `${uniq("features")}-${kind}@${MUC}`;
      const joined = await r.call("PUT", `/v1/rooms/${room}`, { nick: "romeo" });
      assert.equal(joined.status, 201, joined.text);
      for (const [user, nick] of others) {
        await enterRoom(user, room, nick);
        await r.until(`${nick} joined`, (e) => e.event === "room" && e.data.kind === "occupant-joined" && e.data.room === room && e.data.nick === nick);
      }
      return room;
    }
    /** A group message from `user` to the room, with extra payloads. */
    const say = (user: XmppUser, room: string, id: string, body: string | null, ...extra: XmlElement[]) =>
      user.send(xml("message", { to: room, type: "groupchat", id }, body === null ? null : xml("body", {}, body), ...extra));
    /** The room's stanza-id for a message, as an archiving room adds it (XEP-0359 §3; see the header). */
    const roomId = (room: string, id: string) => xml("stanza-id", { xmlns: NS.sid, by: room, id });
    const replace = (id: string) => xml("replace", { xmlns: NS.correct, id });
    const retract = (id: string) => [xml("retract", { xmlns: NS.retract, id }), xml("fallback", { xmlns: NS.fallback, for: NS.retract })];
    const reactions = (id: string, ...emojis: string[]) => xml("reactions", { xmlns: NS.reactions, id }, ...emojis.map((e) => xml("reaction", {}, e)));
    const messageOf = async (r: AccountDriver, body: string) => (await r.until(`message "${body}"`, (e) => e.event === "message" && e.data.body === body)).data.id as string;
    const bodies = (evs: Ev[]) => evs.filter((e) => e.event === "message").map((e) => e.data.body);
    const sortedReactions = (v: Record<string, string[]>) => Object.fromEntries(Object.entries(v).map(([k, js]) => [k, [...js].sort()]));

    it("applies an occupant's correction and retraction to her own group message only, and each occupant's reactions; none is a message", async () => {
      const r = await accountDriver(gw);
      const room = await roomWith(r, [[juliet, "juliet"], [nurse, "nurse"]]);
      await say(juliet, room, "j1", "the inconstant moon");
      await say(juliet, room, "j2", "swear not by the moon", roomId(room, "room-j2"));
      const [moon, swear] = [await messageOf(r, "the inconstant moon"), await messageOf(r, "swear not by the moon")];

      // The nurse's forgeries, then Juliet's own: XEP-0308 names the original by its id, XEP-0424
      // (v0.4) and XEP-0444 by the room's stanza-id.
      await say(nurse, room, "n1", "forged by the nurse", replace("j1"));
      await say(nurse, room, "n2", FALLBACK, ...retract("room-j2"));
      await say(nurse, room, "n3", null, reactions("room-j2", "👍"));
      await say(nurse, room, "n-end", "nurse sentinel");
      await messageOf(r, "nurse sentinel");
      await say(juliet, room, "j3", "that monthly changes", replace("j1"));
      await say(juliet, room, "j4", null, reactions("room-j2", "👍", "❤"));
      await say(juliet, room, "j-end", "juliet sentinel");
      await messageOf(r, "juliet sentinel");
      let evs = await r.events();
      assert.deepEqual(bodies(evs), ["the inconstant moon", "swear not by the moon", "nurse sentinel", "juliet sentinel"], "no correction, retraction or reaction is a message");
      assert.deepEqual(r.updatesOf(evs, moon).map((e) => [e.data.body, typeof e.data.edited]), [["that monthly changes", "string"]]);
      assert.deepEqual(
        r.updatesOf(evs, swear).map((e) => [e.data.retracted, sortedReactions(e.data.reactions as Record<string, string[]>)]),
        [
          [null, { "👍": [NURSE] }],
          [null, { "👍": [JULIET, NURSE], "❤": [JULIET] }],
        ],
        "each occupant's reactions, under its real bare JID (XEP-0444 §Acceptable reactions)",
      );

      await say(juliet, room, "j5", FALLBACK, ...retract("room-j2"));
      await say(juliet, room, "j-end2", "after the retraction");
      await messageOf(r, "after the retraction");
      const tomb = await r.view(swear);
      assert.deepEqual([tomb.body, typeof tomb.retracted, tomb.reactions], [null, "string", {}]);
      const history = await r.history(room);
      assert.deepEqual(
        history.map((m) => m.body).reverse(),
        ["that monthly changes", null, "nurse sentinel", "juliet sentinel", "after the retraction"],
        "one message per group message: corrected, retracted, and no fallback body stored",
      );

      await say(juliet, room, "j6", "parting is such sweet sorrow", roomId(room, "room-j6"));
      const sorrow = await messageOf(r, "parting is such sweet sorrow");
      await say(juliet, room, "j7", null, reactions("room-j6", "🌹"));
      await r.until("Juliet's rose", (e) => e.event === "message-update" && e.data.id === sorrow);

      // Juliet leaves and the nurse takes her nick: the room shows the account the nurse's real JID,
      // so Juliet's message is not hers to correct (XEP-0308 §Business Rules), and her reaction
      // under the nick is her own, not an update of Juliet's (XEP-0444 §Acceptable reactions).
      await juliet.send(xml("presence", { to: `${room}/juliet`, type: "unavailable" }));
      await r.until("juliet left", (e) => e.event === "room" && e.data.kind === "occupant-left" && e.data.room === room && e.data.nick === "juliet");
      await nurse.send(xml("presence", { to: `${room}/juliet` }));
      await r.until("the nurse is juliet now", (e) => e.event === "room" && e.data.kind === "nick-changed" && e.data.room === room && e.data.newNick === "juliet");
      await say(nurse, room, "n4", "forged under her nick", replace("j1"));
      await say(nurse, room, "n5", null, reactions("room-j6", "👎"));
      await say(nurse, room, "n-end2", "the nurse as juliet");
      await messageOf(r, "the nurse as juliet");
      evs = await r.events();
      assert.equal(r.updatesOf(evs, moon).length, 1, "no second correction");
      assert.equal((await r.view(moon)).body, "that monthly changes");
      assert.ok(!bodies(evs).includes("forged under her nick"));
      assert.deepEqual((await r.view(sorrow)).reactions, { "🌹": [JULIET], "👎": [NURSE] });
      await nurse.send(xml("presence", { to: `${room}/juliet`, type: "unavailable" }));
    });

    it("corrects, reacts and retracts in the room: occupants get group messages naming the ids the XEPs say, the correction the whole original; reflections change nothing twice", async () => {
      const r = await accountDriver(gw);
      const room = await roomWith(r, [[juliet, "juliet"]]);
      const mark = juliet.stanzas.length;
      const ours = await r.send({ to: room, type: "groupchat", body: "Good morrow", thread: "t-1", attachments: [{ url: "https://example.net/rose.png" }] });
      const original = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("thread") === "t-1", WAIT);
      assert.equal(original.getChild("origin-id", NS.sid)?.attrs.id, ours);
      await r.until("the reflection", (e) => e.event === "message" && e.data.id === ours && e.data.own === true);
      assert.equal((await r.view(ours)).status, "sent");

      // XEP-0308: a group message to the room, naming the original by its id, re-sending it whole.
      const fixed = await r.call("POST", "/v1/messages", { to: room, type: "groupchat", body: "Good morrow, cousin", replace: ours });
      assert.equal(fixed.status, 202, fixed.text);
      assert.deepEqual([fixed.body.id, fixed.body.status], [ours, "sent"]);
      const fix = await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && !!s.getChild("replace", NS.correct), WAIT);
      assert.deepEqual(
        [fix.attrs.type, fix.getChild("replace", NS.correct)?.attrs.id, fix.getChildText("body"), fix.getChildText("thread"), fix.getChild("x", NS.oob)?.getChildText("url")],
        ["groupchat", ours, "Good morrow, cousin", "t-1", "https://example.net/rose.png"],
        fix.toString(),
      );
      assert.notEqual(fix.attrs.id, ours, "a new id");

      // XEP-0444: Juliet's message by the stanza-id its room gave it; one without cannot be reacted to.
      await say(juliet, room, "j1", "react to me", roomId(room, "room-j1"));
      await say(juliet, room, "j2", "no stanza-id");
      const [hers, bare] = [await messageOf(r, "react to me"), await messageOf(r, "no stanza-id")];
      const reacted = await r.call("POST", `/v1/messages/${hers}/reactions`, { emojis: ["🌹"] });
      assert.equal(reacted.status, 200, reacted.text);
      assert.deepEqual(reacted.body.reactions, { "🌹": [r.jid] });
      const reaction = await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && !!s.getChild("reactions", NS.reactions), WAIT);
      assert.deepEqual([reaction.attrs.type, reaction.getChild("reactions", NS.reactions)?.attrs.id, reaction.getChild("reactions", NS.reactions)?.getChildText("reaction")], ["groupchat", "room-j1", "🌹"]);
      const refused = await r.call("POST", `/v1/messages/${bare}/reactions`, { emojis: ["🌹"] });
      assert.equal(refused.status, 404, refused.text);

      // XEP-0424: the room gave ours no stanza-id, so by its origin-id (our id).
      assert.equal((await r.call("DELETE", `/v1/messages/${ours}`)).status, 204);
      const unsaid = await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && !!s.getChild("retract", NS.retract), WAIT);
      assert.deepEqual([unsaid.attrs.type, unsaid.getChild("retract", NS.retract)?.attrs.id], ["groupchat", ours]);

      // Every reflection is back once the sentinel's is: each change was applied once, when it was made.
      const sentinel = await r.send({ to: room, type: "groupchat", body: "sentinel" });
      await r.until("the sentinel's reflection", (e) => e.event === "message" && e.data.id === sentinel && e.data.own === true);
      const evs = await r.events();
      assert.deepEqual(bodies(evs), ["Good morrow", "react to me", "no stanza-id", "sentinel"], "no reflected change is a message");
      assert.deepEqual(r.updatesOf(evs, ours).map((e) => [e.data.body, e.data.retracted === null]), [["Good morrow, cousin", true], [null, false]]);
      assert.equal(r.updatesOf(evs, hers).length, 1, "the reaction's update, once");
      const view = await r.view(ours);
      assert.deepEqual([view.body, typeof view.edited, typeof view.retracted], [null, "string", "string"]);
    });

    it("re-sends a one-to-one message whole in its correction: thread, reply, attachments, markable, receipt request (XEP-0308 §Business Rules)", async () => {
      const r = await accountDriver(gw);
      await juliet.send(xml("message", { to: r.jid, type: "chat", id: "hers-1" }, xml("body", {}, "Romeo, Romeo")));
      const hers = await messageOf(r, "Romeo, Romeo");
      const mark = juliet.stanzas.length;
      const ours = await r.send({ to: JULIET, body: "here", thread: "t-2", receipt: true, reply: { id: hers }, attachments: [{ url: "https://example.net/ladder.png" }] });
      const first = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.attrs.id === ours, WAIT);
      const fixed = await r.call("POST", "/v1/messages", { to: JULIET, body: "here I am", replace: ours });
      assert.equal(fixed.status, 202, fixed.text);
      const fix = await juliet.waitFor((s) => s.is("message") && s.getChild("replace", NS.correct)?.attrs.id === ours, WAIT);
      const shape = (s: XmlElement) => ({
        type: s.attrs.type,
        thread: s.getChildText("thread"),
        receipt: !!s.getChild("request", "urn:xmpp:receipts"),
        markable: !!s.getChild("markable", NS.markers),
        reply: s.getChild("reply", NS.reply)?.attrs.id,
        url: s.getChild("x", NS.oob)?.getChildText("url"),
      });
      assert.deepEqual(shape(fix), shape(first), fix.toString());
      assert.deepEqual(shape(fix), { type: "chat", thread: "t-2", receipt: true, markable: true, reply: "hers-1", url: "https://example.net/ladder.png" });
      // Only the text is new: behind the same reply quote.
      assert.equal(fix.getChildText("body"), first.getChildText("body")!.replace(/here$/, "here I am"));
      assert.equal((await r.view(ours)).body, "here I am");
    });

    it("an occupant's attachments (alone too) and replies reach the account; the account replies naming the room's stanza-id and its author's occupant JID (XEP-0461 §Using the correct ID)", async () => {
      const r = await accountDriver(gw);
      const room = await roomWith(r, [[juliet, "juliet"]]);
      await say(juliet, room, "j1", "wherefore art thou", roomId(room, "room-j1"));
      const hers = await messageOf(r, "wherefore art thou");
      await say(juliet, room, "j2", null, xml("x", { xmlns: NS.oob }, xml("url", {}, "https://example.net/moon.jpg")));
      const quote = "> romeo wrote:\n> deny thy father\n";
      await say(juliet, room, "j3", `${quote}and refuse thy name`, xml("reply", { xmlns: NS.reply, id: "room-j1", to: `${room}/juliet` }), xml("fallback", { xmlns: NS.fallback, for: NS.reply }, xml("body", { start: "0", end: String([...quote].length) })));
      await say(juliet, room, "j-end", "juliet sentinel");
      await messageOf(r, "juliet sentinel");
      const evs = (await r.events()).filter((e) => e.event === "message" && e.data.room === room && e.data.own === false);
      assert.deepEqual(
        evs.map((e) => [e.data.body, (e.data.attachments as { url: string }[] | undefined)?.map((a) => a.url) ?? null, e.data.replyTo ?? null]),
        [
          ["wherefore art thou", null, null],
          [null, ["https://example.net/moon.jpg"], null],
          ["and refuse thy name", null, { id: hers }],
          ["juliet sentinel", null, null],
        ],
      );
      const mark = juliet.stanzas.length;
      const sent = await r.call("POST", "/v1/messages", { to: room, type: "groupchat", body: "Call me but love", reply: { id: hers } });
      assert.equal(sent.status, 202, sent.text);
      const reply = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.attrs.from === `${room}/romeo` && !!s.getChild("reply", NS.reply), WAIT);
      assert.deepEqual([reply.getChild("reply", NS.reply)?.attrs.id, reply.getChild("reply", NS.reply)?.attrs.to], ["room-j1", `${room}/juliet`], reply.toString());
      assert.match(reply.getChildText("body") ?? "", /^> juliet wrote:\n> wherefore art thou\nCall me but love$/);
    });

    it("marks a markable group message displayed: the marker reaches the occupants from the account's occupant JID, naming the room's stanza-id (XEP-0333 §Usage within MUC)", async () => {
      const r = await accountDriver(gw);
      const room = await roomWith(r, [[juliet, "juliet"]]);
      await say(juliet, room, "j-m1", "see me", roomId(room, "room-m1"), xml("markable", { xmlns: NS.markers }));
      const hers = await messageOf(r, "see me");
      const mark = juliet.stanzas.length;
      const read = await r.call("POST", `/v1/messages/${hers}/displayed`);
      assert.equal(read.status, 204, read.text);
      const marker = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && !!s.getChild("displayed", NS.markers), WAIT);
      assert.deepEqual([marker.attrs.from, marker.attrs.type, marker.getChild("displayed", NS.markers)?.attrs.id], [`${room}/romeo`, "groupchat", "room-m1"], marker.toString());
    });

    it("keeps an occupant's displayed marker on the account's own group message: the room gave it no stanza-id, so the marker names its id (XEP-0333 §Usage within MUC)", async () => {
      const r = await accountDriver(gw);
      const room = await roomWith(r, [[juliet, "juliet"]]);
      const mark = juliet.stanzas.length;
      const ours = await r.send({ to: room, type: "groupchat", body: "read me" });
      const got = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("body") === "read me", WAIT);
      assert.equal(got.getChild("origin-id", NS.sid)?.attrs.id, ours);
      await r.until("the reflection", (e) => e.event === "message" && e.data.id === ours && e.data.own === true);
      assert.equal((await r.view(ours)).marker, null);
      await juliet.send(xml("message", { to: room, type: "groupchat", id: "j-mk" }, xml("displayed", { xmlns: NS.markers, id: ours })));
      const update = await r.until("the marker's update", (e) => e.event === "message-update" && e.data.id === ours);
      assert.equal(update.data.marker, "displayed");
      assert.equal((await r.view(ours)).marker, "displayed");
    });

    it("takes an occupant's reactions, markers and receipts in private messages (XEP-0045 §7.5) as a contact's one-to-one, and answers her receipt request from the account's occupant JID", async () => {
      const r = await accountDriver(gw, { prefix: "pmfeat" });
      const room = await roomWith(r, [[juliet, "juliet"]]);
      /** A private message from Juliet to the account's occupant JID, through the room. */
      const pm = (id: string, ...children: XmlElement[]) => juliet.send(xml("message", { to: `${room}/romeo`, type: "chat", id }, ...children));
      /** The account's private message to Juliet, once she has it. */
      const whisper = async (body: string, receipt = false) => {
        const mark = juliet.stanzas.length;
        const id = await r.send({ to: `${room}/juliet`, type: "chat", body, receipt });
        await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.getChildText("body") === body, WAIT);
        return id;
      };
      await pm("pm-1", xml("body", {}, "hers"));
      const hers = await messageOf(r, "hers");
      const [first, second] = [await whisper("first"), await whisper("second", true)];
      // XEP-0444 §Using the correct ID: not a group message, so by the message's own id.
      await pm("pm-r1", reactions("pm-1", "👍"));
      await pm("pm-r2", reactions(first, "❤"));
      await pm("pm-m", xml("displayed", { xmlns: NS.markers, id: second }));
      await pm("pm-d", xml("received", { xmlns: "urn:xmpp:receipts", id: second }));
      const mark = juliet.stanzas.length;
      await pm("pm-2", xml("body", {}, "ack me"), xml("request", { xmlns: "urn:xmpp:receipts" }));
      const asked = await r.until("her receipt request", (e) => e.event === "message" && e.data.body === "ack me");
      assert.equal(asked.data.receiptRequested, true);
      // Read (the page answers the receipts it shows), the receipt reaches her through the room.
      const ack = await juliet.waitFor((s) => juliet.stanzas.indexOf(s) >= mark && s.is("message") && s.getChild("received", "urn:xmpp:receipts")?.attrs.id === "pm-2", WAIT);
      assert.equal(ack.attrs.from, `${room}/romeo`);
      assert.deepEqual((await r.view(hers)).reactions, { "👍": [`${room}/juliet`] });
      const [one, two] = [await r.view(first), await r.view(second)];
      assert.deepEqual([one.reactions, one.marker, two.marker, two.status], [{ "❤": [`${room}/juliet`] }, "displayed", "displayed", "delivered"]);
      assert.deepEqual(bodies(await r.events()), ["hers", "ack me"], "no reaction, marker or receipt is a message");
    });
  });
}
