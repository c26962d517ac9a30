// Reading inbound stanzas (src/xmpp/parse.ts): the cases the services never see because the
// parser decides them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { parseStanza } from "../../src/xmpp/parse.js";

const MUC_USER = "http://jabber.org/protocol/muc#user";
const invitationOf = (stanza: ReturnType<typeof xml>) => {
  const s = parseStanza(stanza);
  assert.equal(s?.kind, "message");
  return s.kind === "message" ? s.invitation : undefined;
};

describe("parseStanza: room invitations", () => {
  it("reads a mediated invitation the room relays (XEP-0045 §7.8.2) and a direct one (XEP-0249)", () => {
    const mediated = xml(
      "message",
      { from: "lobby@conference.localhost", to: "romeo@gw.localhost/rooms", id: "i1" },
      xml("x", { xmlns: MUC_USER }, xml("invite", { from: "juliet@localhost/balcony" }, xml("reason", {}, "Come")), xml("password", {}, "rose")),
    );
    assert.deepEqual(invitationOf(mediated), { room: "lobby@conference.localhost", from: "juliet@localhost/balcony", reason: "Come", password: "rose", via: "mediated" });
    const direct = xml("message", { from: "juliet@localhost/balcony", to: "romeo@gw.localhost", id: "i2" }, xml("x", { xmlns: "jabber:x:conference", jid: "lobby@conference.localhost" }));
    assert.deepEqual(invitationOf(direct), { room: "lobby@conference.localhost", from: "juliet@localhost/balcony", reason: null, password: null, via: "direct" });
  });

  it("does not read the room's error answer to the account's own invitation (its payload echoed) as one received", () => {
    const bounced = xml(
      "message",
      { from: "lobby@conference.localhost", to: "romeo@gw.localhost/rooms", id: "i3", type: "error" },
      xml("x", { xmlns: MUC_USER }, xml("invite", { to: "juliet@localhost" })),
      xml("error", { type: "auth" }, xml("forbidden", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" })),
    );
    assert.equal(invitationOf(bounced), null);
    // Nor the account's own invitation without an inviter (an <invite to/> is what we send, not receive).
    const outgoing = xml("message", { from: "lobby@conference.localhost", to: "romeo@gw.localhost/rooms", id: "i4" }, xml("x", { xmlns: MUC_USER }, xml("invite", { to: "juliet@localhost" })));
    assert.equal(invitationOf(outgoing), null);
  });
});
