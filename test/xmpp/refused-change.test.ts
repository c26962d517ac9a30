// A change the account makes to its own message, refused by the other side (src/services/
// refused-change.ts), end to end on Prosody and ejabberd: in a moderated room Juliet owns, the
// account posts while it has voice, loses it, and corrects the message. The room refuses the
// correction (XEP-0045 §7.4: a visitor's group message is `forbidden`), so the stored message
// goes back to its text, with a `message-update` event saying so; Juliet never saw the change.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { waitFor } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_MUC, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;

for (const kind of KINDS) {
  describe(`a correction the room refuses (${kind})`, () => {
    const w = roomWorld(kind);
    const log = eventLog(() => w.gw);

    /** Juliet, the room's owner, gives the account's occupant `role` (XEP-0045 §8.3, §8.4). */
    async function setRole(room: string, nick: string, role: "participant" | "visitor"): Promise<void> {
      const id = `role-${role}-${nick}`;
      await w.juliet.send(xml("iq", { to: room, type: "set", id }, xml("query", { xmlns: `${NS_MUC}#admin` }, xml("item", { nick, role }))));
      const answer = await w.juliet.waitFor((s) => s.is("iq") && s.attrs.id === id, WAIT);
      assert.equal(answer.attrs.type, "result", answer.toString());
    }

    it("puts the text back, with a message-update, and the room's occupants never see it", async () => {
      const room = `moderated-${kind}@${MUC}`;
      await enterRoom(w.juliet, room, "juliet", { "muc#roomconfig_moderatedroom": "1" });
      await w.gw.createAccount("romeo");
      const token = w.gw.token("romeo");
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "romeo" } });
      assert.equal(joined.status, 200, joined.text);
      await setRole(room, "romeo", "participant");
      await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token })).body.role === "participant", WAIT, "romeo's voice");

      const posted = await w.gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "Thus with a kiss I die" } });
      assert.equal(posted.status, 202, posted.text);
      const id = posted.body.id as string;
      await w.juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("body") === "Thus with a kiss I die", WAIT);
      await waitFor(async () => (await w.gw.request("GET", `/v1/messages/${id}`, { token })).body.status === "sent", WAIT, "the message sent");

      await setRole(room, "romeo", "visitor");
      await waitFor(async () => (await w.gw.request("GET", `/v1/rooms/${room}`, { token })).body.role === "visitor", WAIT, "romeo's voice revoked");
      const before = (await log.events("romeo")).at(-1)!.id;
      const corrected = await w.gw.request("POST", "/v1/messages", { token, body: { to: room, type: "groupchat", body: "Thus with a kiss I live", replace: id } });
      assert.equal(corrected.status, 202, corrected.text);

      const updates = async () => (await log.events("romeo")).filter((e) => e.id > before && e.event === "message-update" && e.data.id === id);
      await waitFor(async () => (await updates()).length >= 2, WAIT, "the correction's update and the one putting the text back");
      const [applied, undone] = await updates();
      assert.equal(applied!.data.body, "Thus with a kiss I live");
      assert.equal(undone!.data.body, "Thus with a kiss I die", JSON.stringify(undone!.data));
      assert.equal(undone!.data.edited, null, "the message was never edited, as the room shows it");
      const stored = await w.gw.request("GET", `/v1/messages/${id}`, { token });
      assert.equal(stored.body.body, "Thus with a kiss I die");
      assert.equal(stored.body.status, "sent");
      // What Juliet got from the account's nick since: the original only (the room's refusal kept the correction from her).
      const fromRomeo = w.juliet.stanzas.filter((s) => s.is("message") && s.attrs.from === `${room}/romeo` && s.getChildText("body"));
      assert.deepEqual(fromRomeo.map((s) => s.getChildText("body")), ["Thus with a kiss I die"]);
    });

    it("takes back reactions refused, leaving those that went before", async () => {
      const room = `moderated-${kind}@${MUC}`;
      const token = w.gw.token("romeo");
      // A private message through the room (XEP-0045 §7.5) from Juliet, which the account reacts to.
      await w.juliet.send(xml("message", { to: `${room}/romeo`, type: "chat", id: "balcony-scene" }, xml("body", {}, "Wherefore art thou"), xml("x", { xmlns: `${NS_MUC}#user` })));
      let id = "";
      await waitFor(async () => !!(id = (await log.events("romeo")).find((e) => e.event === "message" && e.data.body === "Wherefore art thou")?.data.id as string), WAIT, "Juliet's message");
      const kept = await w.gw.request("POST", `/v1/messages/${id}/reactions`, { token, body: { emojis: ["❤️"] } });
      assert.equal(kept.status, 200, kept.text);
      await w.juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/romeo` && !!s.getChild("reactions"), WAIT);

      // Juliet leaves: the room refuses what goes to her occupant JID now (§7.5: she is no occupant).
      await w.juliet.send(xml("presence", { to: `${room}/juliet`, type: "unavailable" }));
      await waitFor(async () => !(await w.gw.request("GET", `/v1/rooms/${room}`, { token })).body.occupants.some((o: { nick: string }) => o.nick === "juliet"), WAIT, "Juliet gone");
      const before = (await log.events("romeo")).at(-1)!.id;
      const refused = await w.gw.request("POST", `/v1/messages/${id}/reactions`, { token, body: { emojis: ["❤️", "😢"] } });
      assert.equal(refused.status, 200, refused.text);
      const updates = async () => (await log.events("romeo")).filter((e) => e.id > before && e.event === "message-update" && e.data.id === id);
      await waitFor(async () => (await updates()).length >= 2, WAIT, "the reactions' update and the one taking them back");
      const [applied, undone] = await updates();
      assert.deepEqual(applied!.data.reactions, { "❤️": ["romeo@gw.localhost"], "😢": ["romeo@gw.localhost"] });
      assert.deepEqual(undone!.data.reactions, { "❤️": ["romeo@gw.localhost"] }, JSON.stringify(undone!.data));
    });
  });
}
