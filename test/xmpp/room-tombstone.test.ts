// A persistent room destroyed (XEP-0045 §10.9) while no gateway ran, so the account never saw the
// destroy. Prosody 0.12 keeps a tombstone of such a room (mod_muc's muc_tombstones) and answers the
// gateway's rejoin cancel/<gone>xmpp:<alternate>?join</gone> (RFC 6120 §8.3.3.5): the account
// hears it as the destroy it missed (a `destroyed` event with the room its owner named instead),
// and the room is forgotten, not rejoined; a join of it then is 404 room-not-found naming the
// alternate. ejabberd keeps none: the rejoin makes the room anew, and
// the account is in it again (README).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { enterRoom, eventLog, MUC, NS_MUC } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

const WAIT = 20_000;

for (const kind of KINDS) {
  describe(`a room destroyed while the gateway was away (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let gw: TestGateway;
    before(async () => {
      world = await startWorld(kind, { juliet: "muc" }, { restartable: true });
      gw = world.gw;
    });
    after(() => world?.stop());
    const { events, until } = eventLog(() => gw);

    it(kind === "prosody" ? "hears the rejoin's <gone/> as the destroy: a destroyed event naming the alternate, and the room forgotten" : "enters the room the rejoin makes anew", async () => {
      await gw.createAccount("abram");
      const token = gw.token("abram");
      const room = `tomb-${kind}@${MUC}`;
      const alternate = `hall-${kind}@${MUC}`;
      await enterRoom(world!.users.juliet, room, "juliet", { "muc#roomconfig_persistentroom": "1" });
      assert.equal((await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "abram" } })).status, 200);
      gw = await world!.restartGateway(async () => {
        const juliet = world!.users.juliet;
        await juliet.send(xml("iq", { to: room, type: "set", id: "destroy" }, xml("query", { xmlns: `${NS_MUC}#owner` }, xml("destroy", { jid: alternate }, xml("reason", {}, "moved")))));
        const done = await juliet.waitFor((s) => s.is("iq") && s.attrs.id === "destroy", WAIT);
        assert.equal(done.attrs.type, "result", done.toString());
      });
      if (kind === "prosody") {
        const destroyed = await until("abram", "the destroy", (e) => e.event === "room" && e.data.kind === "destroyed" && e.data.room === room);
        assert.deepEqual([destroyed.data.alternate, destroyed.data.self, destroyed.data.nick], [alternate, true, "abram"], JSON.stringify(destroyed.data));
        assert.equal((await gw.request("GET", `/v1/rooms/${room}`, { token })).status, 404, "forgotten");
        assert.deepEqual((await events("abram")).filter((e) => e.event === "room" && e.data.kind === "join-failed"), [], "no join-failed");
        // A join of it now is the request's own: 404, the room's gone and where it went.
        const join = await gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "abram" } });
        assert.deepEqual([join.status, join.body.code, join.body.condition, join.body.alternate], [404, "room-not-found", "gone", alternate], join.text);
        const failed = await until("abram", "the join's failure", (e) => e.event === "room" && e.data.kind === "join-failed" && e.data.room === room);
        assert.deepEqual([(failed.data.error as { condition?: string } | undefined)?.condition, failed.data.alternate], ["gone", alternate], JSON.stringify(failed.data));
      } else {
        const joins = async () => (await events("abram")).filter((e) => e.event === "room" && e.data.kind === "joined" && e.data.room === room).length;
        await waitFor(async () => (await joins()) === 2, WAIT, "joined again after the restart");
        // The room made anew is configured (an instant room) before the join ends: joined then.
        const view = async () => (await gw.request("GET", `/v1/rooms/${room}`, { token })).body as { status: string };
        await waitFor(async () => (await view()).status === "joined", WAIT, "the rejoin's room configured");
        assert.equal((await view()).status, "joined");
      }
    });
  });
}
