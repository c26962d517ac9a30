// XEP-0191 §3.3: nothing is routed to a blocked JID. A blocklist item may name a full JID (that
// resource only) or one occupant of a room (room@service/nick), though the conversation's bare JID
// (her bare JID; the room's) is not blocked. A message to such an address was refused, but the
// changes to messages of that conversation (a displayed marker, a reaction, a correction, a
// retraction) checked only the bare JID, and went to the blocked address. Found by the blocking
// audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { accountDriver } from "../helpers/account-driver.js";
import { uniq } from "../helpers/gateway.js";
import { enterRoom, MUC } from "../helpers/muc.js";
import { isFrom } from "../helpers/sentinel.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const BLOCKED = `${JULIET}/balcony`;
const MARKERS = "urn:xmpp:chat-markers:0";

for (const kind of KINDS) {
  describe(`message changes to a blocked full JID or occupant (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { roster: true });
    });
    after(() => world?.stop());

    it("sends no marker, reaction, correction or retraction to a blocked full JID (XEP-0191 §3.3; README: reactions and corrections are 400 blocked)", async () => {
      const { gw } = world;
      const juliet = world.users.juliet;
      const r = await accountDriver(gw, { waitMs: WAIT });
      // Her markable message, from the resource about to be blocked.
      const hersId = uniq("m-");
      await juliet.send(xml("message", { to: r.jid, type: "chat", id: hersId }, xml("body", {}, "hers"), xml("markable", { xmlns: MARKERS })));
      const hers = String((await r.until("her message", (e) => e.event === "message" && e.data.stanzaId === hersId)).data.id);
      // The account's message to that full JID.
      const mine = await r.send({ to: BLOCKED, body: "mine, to her balcony" });
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "mine, to her balcony", WAIT);

      const put = await r.call("PUT", `/v1/blocklist/${encodeURIComponent(BLOCKED)}`);
      assert.equal(put.status, 204, put.text);
      const direct = await r.call("POST", "/v1/messages", { to: BLOCKED, body: "never" });
      assert.equal(direct.body?.code, "blocked", `a message to the blocked full JID is refused: ${direct.text}`);

      const mark = juliet.stanzas.length;
      const answers = {
        displayed: (await r.call("POST", `/v1/messages/${hers}/displayed`)).status,
        reaction: (await r.call("POST", `/v1/messages/${hers}/reactions`, { emojis: ["👍"] })).status,
        correction: (await r.call("POST", "/v1/messages", { to: JULIET, body: "changed", replace: mine })).status,
        retraction: (await r.call("DELETE", `/v1/messages/${mine}`)).status,
      };
      // Sentinel on the same ordered path (the account's outbox): a message to her bare JID after the actions.
      await r.send({ to: JULIET, body: "sentinel" });
      await juliet.waitFor((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") === "sentinel", WAIT);
      const got = juliet.stanzas
        .slice(mark)
        .filter((s) => s.is("message") && isFrom(s, r.jid) && s.getChildText("body") !== "sentinel")
        .map((s) => `${s.attrs.to} ${s.toString().slice(0, 160)}`);
      assert.deepEqual(got, [], `stanzas routed to the blocked ${BLOCKED} (HTTP answers ${JSON.stringify(answers)})`);
      // Read and retracted here all the same; a reaction or correction is refused, as in the conversation with a blocked bare JID.
      assert.deepEqual(answers, { displayed: 204, reaction: 400, correction: 400, retraction: 204 });
    });

    it("sends a blocked occupant no marker or reaction for her private message (XEP-0191 §3.3)", async () => {
      const { gw } = world;
      const juliet = world.users.juliet;
      const r = await accountDriver(gw, { waitMs: WAIT });
      const room = `${uniq("occ-")}@${MUC}`;
      await enterRoom(juliet, room, "juliet");
      const nick = `${r.lp}-nick`;
      const joined = await r.call("PUT", `/v1/rooms/${room}`, { nick });
      assert.equal(joined.status, 200, joined.text);
      const ours = `${room}/${nick}`;
      const hers = `${room}/juliet`;

      // Her private message to the account (XEP-0045 §7.5), markable.
      const pmId = uniq("pm-");
      await juliet.send(xml("message", { to: ours, type: "chat", id: pmId }, xml("body", {}, "psst"), xml("markable", { xmlns: MARKERS }), xml("x", { xmlns: "http://jabber.org/protocol/muc#user" })));
      const pm = String((await r.until("her private message", (e) => e.event === "message" && e.data.stanzaId === pmId)).data.id);

      const put = await r.call("PUT", `/v1/blocklist/${encodeURIComponent(hers)}`);
      assert.equal(put.status, 204, put.text);
      const direct = await r.call("POST", "/v1/messages", { to: hers, body: "never" });
      assert.equal(direct.body?.code, "blocked", `a private message to the blocked occupant is refused: ${direct.text}`);

      const mark = juliet.stanzas.length;
      const answers = {
        displayed: (await r.call("POST", `/v1/messages/${pm}/displayed`)).status,
        reaction: (await r.call("POST", `/v1/messages/${pm}/reactions`, { emojis: ["👍"] })).status,
      };
      // Sentinel on the same ordered path (the account's outbox): a group message Juliet hears from the account's nick.
      const sent = await r.call("POST", "/v1/messages", { to: room, type: "groupchat", body: "sentinel" });
      assert.equal(sent.status, 202, sent.text);
      await juliet.waitFor((s) => s.is("message") && s.attrs.from === ours && s.getChildText("body") === "sentinel", WAIT);
      const got = juliet.stanzas
        .slice(mark)
        .filter((s) => s.is("message") && s.attrs.from === ours && s.attrs.type !== "groupchat")
        .map((s) => s.toString().slice(0, 200));
      assert.deepEqual(got, [], `stanzas routed to the blocked occupant ${hers} (HTTP answers ${JSON.stringify(answers)})`);
      assert.deepEqual(answers, { displayed: 204, reaction: 400 });
    });
  });
}
