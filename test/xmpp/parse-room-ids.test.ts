// Reading the ids a room gives its group messages (src/xmpp/parse.ts): the XEP-0359 stanza-id the
// room assigned (XEP-0424 and XEP-0444 name group messages by it) and the XEP-0421 occupant-id of
// the sender (XEP-0424 checks a retraction's sender by it).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { parseStanza } from "../../src/xmpp/parse.js";

const SID = "urn:xmpp:sid:0";
const ROOM = "lobby@conference.localhost";
const ids = (stanza: ReturnType<typeof xml>) => {
  const s = parseStanza(stanza);
  assert.equal(s?.kind, "message");
  return s.kind === "message" ? [s.roomStanzaId, s.occupantId] : [];
};
const groupchat = (from: string, ...children: ReturnType<typeof xml>[]) => xml("message", { from, to: "romeo@gw.localhost/rooms", type: "groupchat", id: "m1" }, xml("body", {}, "hi"), ...children);

describe("parseStanza: a room's ids for its messages", () => {
  it("takes the stanza-id that the sender's bare JID (the room) assigned, and the occupant-id", () => {
    const m = groupchat(`${ROOM}/juliet`, xml("stanza-id", { xmlns: SID, by: "juliet@localhost", id: "hers" }), xml("stanza-id", { xmlns: SID, by: ROOM, id: "room-1" }), xml("occupant-id", { xmlns: "urn:xmpp:occupant-id:0", id: "occ-1" }));
    assert.deepEqual(ids(m), ["room-1", "occ-1"]);
  });

  it("takes no stanza-id by anyone else (XEP-0359 §3: only the one its 'by' names assigned it), nor one without 'by'", () => {
    assert.deepEqual(ids(groupchat(`${ROOM}/juliet`, xml("stanza-id", { xmlns: SID, by: "other@conference.localhost", id: "x" }), xml("stanza-id", { xmlns: SID, id: "y" }))), [null, null]);
    assert.deepEqual(ids(groupchat(`${ROOM}/juliet`, xml("stanza-id", { xmlns: "urn:xmpp:sid:1", by: ROOM, id: "z" }))), [null, null]);
    assert.deepEqual(ids(groupchat(`${ROOM}/juliet`)), [null, null]);
  });
});
