// What a plain user can make look like a room invitation (the inbound audit). XEP-0045 §7.8.2: a
// mediated invitation (and a relayed decline) comes from the room, i.e. from its bare JID, and the
// inviter it names is the room's word. XEP-0249 §2: the direct invitation's `jid` is the room's
// address. API.md "Group chat": a room is a bare room JID.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver } from "../helpers/account-driver.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";
import { parseJid } from "../../src/domain/jid.js";

const MUC_USER = "http://jabber.org/protocol/muc#user";

for (const kind of KINDS) {
  describe(`invitations from a plain user (${kind})`, () => {
    let w: XmppWorld<"juliet">;
    let r: AccountDriver;
    before(async () => {
      w = await startWorld(kind, { juliet: "balcony" }, { roster: true });
      r = await accountDriver(w.gw);
    });
    after(async () => {
      await w?.stop();
    });

    const roomEventsAfter = async (marker: string) => {
      await w.users.juliet.send(xml("message", { to: r.jid, type: "chat", id: marker }, xml("body", {}, marker)));
      await r.until(marker, (e) => e.event === "message" && e.data.stanzaId === marker);
      return (await r.events()).filter((e) => e.event === "room");
    };

    it("takes no muc#user invite or decline from a user's full JID as a room's mediated one (no forged inviter)", async () => {
      const j = w.users.juliet;
      await j.send(xml("message", { to: r.jid, id: "forged-invite" }, xml("x", { xmlns: MUC_USER }, xml("invite", { from: "ceo@localhost" }, xml("reason", {}, "urgent: join now")))));
      await j.send(xml("message", { to: r.jid, id: "forged-decline" }, xml("x", { xmlns: MUC_USER }, xml("decline", { from: "ceo@localhost" }, xml("reason", {}, "no")))));
      const rooms = await roomEventsAfter("after-forged");
      assert.deepEqual(rooms.map((e) => JSON.stringify(e.data)), [], "a plain user forged a room's invitation/decline naming another inviter");
    });

    it("takes no direct invitation whose jid is not a bare room JID", async () => {
      const j = w.users.juliet;
      for (const [id, jid] of [["good", "capulets@conference.localhost"], ["bad", "not a jid@@"], ["full", "room@conference.localhost/nick"], ["domain", "conference.localhost"], ["long", `${"r".repeat(5000)}@conference.localhost`]] as const) {
        await j.send(xml("message", { to: r.jid, id: `direct-${id}` }, xml("x", { xmlns: "jabber:x:conference", jid })));
      }
      const rooms = (await roomEventsAfter("after-direct")).filter((e) => e.data.via === "direct");
      assert.deepEqual(rooms.map((e) => String(e.data.room).slice(0, 60)), ["capulets@conference.localhost"], "the one room event is the invitation to a bare room JID");
      const p = parseJid(String(rooms[0]!.data.room));
      assert.ok(p?.local && !p.resource);
    });
  });
}
