// Blocking one occupant of a room (room@service/nick) keeps the account in the room and hides her
// messages. The subject message that ends a join (XEP-0045 §7.2.16) comes from the occupant who set
// the subject: it was dropped as hers, so the join waited out its 2 s fallback and answered
// `subject: null` for a room that has one. Found by the blocking audit of stop 64.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { accountDriver } from "../helpers/account-driver.js";
import { uniq } from "../helpers/gateway.js";
import { enterRoom, MUC } from "../helpers/muc.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;

for (const kind of KINDS) {
  describe(`a blocked occupant's subject (${kind})`, () => {
    let world: XmppWorld<"juliet">;
    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { roster: true });
    });
    after(() => world?.stop());

    it("a join answers the room's subject though the occupant who set it is blocked (XEP-0045 §7.2.16)", async () => {
      const { gw } = world;
      const juliet = world.users.juliet;
      const r = await accountDriver(gw, { waitMs: WAIT });
      const room = `${uniq("subj-")}@${MUC}`;
      await enterRoom(juliet, room, "juliet");
      await juliet.send(xml("message", { to: room, type: "groupchat", id: uniq("s-") }, xml("subject", {}, "Verona")));
      await juliet.waitFor((s) => s.is("message") && s.attrs.from === `${room}/juliet` && s.getChildText("subject") === "Verona", WAIT);
      // Unblocked, the join answers at once with the subject.
      const nick = `${r.lp}-nick`;
      const first = await r.call("PUT", `/v1/rooms/${room}`, { nick });
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.subject, "Verona", first.text);
      assert.equal((await r.call("DELETE", `/v1/rooms/${room}`)).status, 204);

      // The occupant who set it blocked (not the room): the account stays able to join.
      assert.equal((await r.call("PUT", `/v1/blocklist/${encodeURIComponent(`${room}/juliet`)}`)).status, 204);
      const started = Date.now();
      const again = await r.call("PUT", `/v1/rooms/${room}`, { nick });
      const ms = Date.now() - started;
      assert.equal(again.status, 200, again.text);
      assert.deepEqual({ subject: again.body.subject, slow: ms >= 1900 }, { subject: "Verona", slow: false }, `join answered in ${ms} ms: ${again.text}`);
    });
  });
}
