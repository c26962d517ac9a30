// Iqs to the account as a room occupant, on both servers' real MUC services: a room passes an
// occupant's iq on to the occupant's real JID (XEP-0045 §7.5), which for an account is its occupant
// JID on the gateway (…/rooms). The account answers there as its sessions do: ping (XEP-0199) and
// disco#info (XEP-0030, a client with the message features it takes), and service-unavailable for
// anything else (RFC 6120 §8.4). Juliet, a real user in the room, asks through the room.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml, { type Element } from "@xmpp/xml";
import type { XmlElement } from "../../scripts/harness/xmpp-user.js";
import { enterRoom, MUC, roomWorld } from "../helpers/muc.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 15_000;
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";

for (const kind of KINDS) {
  describe(`iqs to the account's occupant JID (${kind})`, () => {
    const w = roomWorld(kind);
    let n = 0;

    /** Juliet's iq to `to`, and the room's answer to her. */
    async function ask(to: string, child: ReturnType<typeof xml>): Promise<XmlElement> {
      const id = `occ-${++n}`;
      await w.juliet.send(xml("iq", { to, type: "get", id }, child));
      return w.juliet.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), WAIT);
    }
    const condition = (s: XmlElement) => (s.getChild("error") as unknown as Element | undefined)?.getChildElements().find((c) => c.attrs.xmlns === STANZAS)?.name;

    it("answers ping and disco#info passed on by a room it is in, as a client; anything else service-unavailable", async () => {
      const room = `asked-${kind}@${MUC}`;
      await w.gw.createAccount("mercutio");
      const joined = await w.gw.request("PUT", `/v1/rooms/${room}`, { token: w.gw.token("mercutio"), body: { nick: "mercutio" } });
      assert.equal(joined.status, 201, joined.text);
      await enterRoom(w.juliet, room, "juliet");
      const occupant = `${room}/mercutio`;

      const ping = await ask(occupant, xml("ping", { xmlns: "urn:xmpp:ping" }));
      assert.equal(ping.attrs.type, "result", ping.toString());

      const info = await ask(occupant, xml("query", { xmlns: DISCO_INFO }));
      assert.equal(info.attrs.type, "result", info.toString());
      const query = info.getChild("query", DISCO_INFO)!;
      assert.equal(query.getChild("identity")?.attrs.category, "client", info.toString());
      const features = query.getChildren("feature").map((f) => f.attrs.var);
      for (const f of ["urn:xmpp:ping", "urn:xmpp:reactions:0", "urn:xmpp:receipts"]) assert.ok(features.includes(f), `${f} in ${info.toString()}`);

      const version = await ask(occupant, xml("query", { xmlns: "jabber:iq:version" }));
      assert.equal(version.attrs.type, "error", version.toString());
      assert.equal(condition(version), "service-unavailable", version.toString());
    });
  });
}
