// XEP-0410 self-pings on both servers' real MUC services, with a real XMPP user (Juliet) in the
// rooms: a joined room quiet for ROOM_SELF_PING (1 s here) is asked whether the account is still
// in it. A room that lost the account without a word (here: the gateway's row says joined, the
// room never had her, as after a MUC service that restarted and forgot its occupants) answers
// not-acceptable, and the account enters it again (API.md: a join lasts until the account leaves).
// A room the account is in answers the ping, and nothing else happens.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Element } from "@xmpp/xml";
import { waitFor } from "../helpers/gateway.js";
import { enterRoom, eventLog, heardInRoom, MUC, NS_USER, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 15_000;

for (const kind of KINDS) {
  describe(`self-pings of quiet rooms (${kind})`, () => {
    /** The answers to the gateway's self-pings, as they came over its link. */
    const answers: Element[] = [];
    const w = roomWorld(kind, { ROOM_SELF_PING: "1s" }, (gw) =>
      gw.running.link.on("stanza", (el: Element) => {
        if (el.is("iq") && String(el.attrs.id ?? "").startsWith("muc-self-ping-")) answers.push(el);
      }),
    );

    const { events } = eventLog(() => w.gw);
    const presencesFrom = (occupant: string) => w.juliet.stanzas.filter((s) => s.is("presence") && s.attrs.from === occupant);
    const heardFrom = (localpart: string, room: string, body: string) => heardInRoom(w.gw, w.juliet, localpart, room, body, WAIT);

    it("enters again a room that lost the account without a word: the room answers the ping not-acceptable", async () => {
      const room = `forgetful-${kind}@${MUC}`;
      await enterRoom(w.juliet, room, "juliet");
      await w.gw.createAccount("rosaline");
      // The gateway believes Rosaline is in the room; the room has never heard of her.
      await w.gw.running.db.pool.query(
        `INSERT INTO room (account_id, room, nick, status, role, affiliation, joined_at, checked_at, updated_at)
         SELECT id, $1, 'rosaline', 'joined', 'participant', 'none', now(), now(), now() FROM account WHERE localpart = 'rosaline'`,
        [room],
      );
      const entered = await w.juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/rosaline` && !s.attrs.type, WAIT);
      assert.equal(entered.getChild("x", NS_USER)?.getChild("item")?.attrs.role, "participant");
      const refused = answers.find((a) => a.attrs.from === `${room}/rosaline`);
      assert.equal(refused?.attrs.type, "error", refused?.toString());
      assert.ok(refused.getChild("error")?.getChild("not-acceptable"), refused.toString());
      await waitFor(async () => (await events("rosaline")).some((e) => e.event === "room" && e.data.kind === "joined" && e.data.room === room), WAIT, "Rosaline's joined event");
      const view = await w.gw.request("GET", `/v1/rooms/${room}`, { token: w.gw.token("rosaline") });
      assert.equal(view.body.status, "joined", view.text);
      assert.deepEqual(view.body.occupants.map((o: { nick: string }) => o.nick).sort(), ["juliet", "rosaline"]);
      await heardFrom("rosaline", room, "I was here all along");
    });

    it("leaves the account in a room that answers its pings, and sends nothing else there", async () => {
      const room = `attentive-${kind}@${MUC}`;
      await w.gw.createAccount("livia");
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: w.gw.token("livia"), body: { nick: "livia" } });
      assert.equal(joined.status, 201, joined.text);
      await enterRoom(w.juliet, room, "juliet");
      // Three quiet spells: three pings, each answered with a result (both servers answer a
      // self-ping themselves: XEP-0410 §4).
      await waitFor(async () => answers.filter((a) => a.attrs.from === `${room}/livia`).length >= 3, WAIT, "three answered self-pings");
      const mine = answers.filter((a) => a.attrs.from === `${room}/livia`);
      assert.deepEqual(
        mine.map((a) => a.attrs.type),
        mine.map(() => "result"),
        mine.map(String).join("\n"),
      );
      await heardFrom("livia", room, "still here");
      // Juliet saw Livia enter once (before the sentinel above), and never leave.
      assert.equal(presencesFrom(`${room}/livia`).length, 1, presencesFrom(`${room}/livia`).map(String).join("\n"));
      const log = await events("livia");
      assert.equal(log.filter((e) => e.event === "room" && e.data.kind === "joined").length, 1, JSON.stringify(log));
    });
  });
}
