// Reading inbound stanzas (src/xmpp/parse.ts): the cases the services never see because the
// parser decides them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { Value } from "@sinclair/typebox/value";
import { AttachmentSchema } from "../../src/domain/events.js";
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

  it("reads a decline of the account's own invitation the room relays (XEP-0045 §7.8.2)", () => {
    const declined = xml(
      "message",
      { from: "lobby@conference.localhost", to: "romeo@gw.localhost/rooms", id: "d1" },
      xml("x", { xmlns: MUC_USER }, xml("decline", { from: "juliet@localhost/balcony" }, xml("reason", {}, "Not tonight"))),
      xml("body", {}, "juliet@localhost/balcony declined your invite to the room lobby@conference.localhost"),
    );
    assert.deepEqual(invitationOf(declined), { room: "lobby@conference.localhost", from: "juliet@localhost/balcony", reason: "Not tonight", password: null, via: "mediated", declined: true });
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

describe("parseStanza: a reply's fallback quote (XEP-0461 §Compatibility Fallback, XEP-0428)", () => {
  const body = "> Anna wrote:\n> 🎂\nGreat idea!";
  const quoteEnd = (...children: ReturnType<typeof xml>[]) => {
    const s = parseStanza(xml("message", { from: "anna@localhost/tablet", to: "romeo@gw.localhost", type: "chat", id: "r1" }, xml("body", {}, body), xml("reply", { xmlns: "urn:xmpp:reply:0", id: "m1" }), ...children));
    assert.equal(s?.kind, "message");
    return s.kind === "message" ? s.features?.reply?.quoteEnd : undefined;
  };
  const fallback = (ns: string, ...bodies: ReturnType<typeof xml>[]) => xml("fallback", { xmlns: ns, for: "urn:xmpp:reply:0" }, ...bodies);
  const quote = [..."> Anna wrote:\n> 🎂\n"].length;

  it("reads the quote's end in XEP-0428's namespace and in urn:xmpp:feature-fallback:0 (XEP-0461's example, slixmpp)", () => {
    for (const ns of ["urn:xmpp:fallback:0", "urn:xmpp:feature-fallback:0"]) {
      assert.equal(quoteEnd(fallback(ns, xml("body", { start: "0", end: String(quote) }))), quote, ns);
      assert.equal(quoteEnd(fallback(ns, xml("body", { end: String(quote) }))), quote, `${ns}: start defaults to 0`);
    }
  });

  it("takes a <body/> without start and end, and a fallback without children, as the whole body (code points)", () => {
    const whole = [...body].length;
    assert.equal(quoteEnd(fallback("urn:xmpp:fallback:0", xml("body"))), whole);
    assert.equal(quoteEnd(fallback("urn:xmpp:feature-fallback:0", xml("body"))), whole);
    assert.equal(quoteEnd(fallback("urn:xmpp:fallback:0")), whole);
    assert.equal(quoteEnd(fallback("urn:xmpp:feature-fallback:0")), whole);
  });

  it("strips nothing for a quote not at the start, a start without an end, a subject fallback, another feature's fallback or an unknown namespace", () => {
    assert.equal(quoteEnd(fallback("urn:xmpp:fallback:0", xml("body", { start: "2", end: String(quote) }))), null);
    assert.equal(quoteEnd(fallback("urn:xmpp:fallback:0", xml("body", { start: "0" }))), null);
    assert.equal(quoteEnd(fallback("urn:xmpp:fallback:0", xml("subject"))), null);
    assert.equal(quoteEnd(xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:message-retract:1" }, xml("body"))), null);
    assert.equal(quoteEnd(fallback("urn:example:fallback", xml("body"))), null);
    assert.equal(quoteEnd(), null);
  });
});

describe("parseStanza: room departures", () => {
  const mucOf = (...children: ReturnType<typeof xml>[]) => {
    const s = parseStanza(xml("presence", { from: "lobby@conference.localhost/tybalt", to: "romeo@gw.localhost/rooms", type: "unavailable" }, ...children));
    assert.equal(s?.kind, "presence");
    return s.kind === "presence" ? s.muc : undefined;
  };

  it("reads a kick's or ban's reason and actor from the muc#user item (XEP-0045 §8.2, §9.1), not from <status/>", () => {
    const kicked = mucOf(
      xml("status", {}, "Kicked: behave"),
      xml("x", { xmlns: MUC_USER }, xml("item", { role: "none", affiliation: "none" }, xml("actor", { nick: "juliet" }), xml("reason", {}, "behave")), xml("status", { code: "307" })),
    );
    assert.deepEqual({ reason: kicked?.reason, actor: kicked?.actor, statuses: kicked?.statuses }, { reason: "behave", actor: "juliet", statuses: [307] });
    const bare = mucOf(xml("status", {}, "Kicked: service unavailable"), xml("x", { xmlns: MUC_USER }, xml("item", { role: "none", affiliation: "none" }, xml("actor", { jid: "juliet@localhost" }), xml("reason")), xml("status", { code: "333" })));
    assert.deepEqual({ reason: bare?.reason, actor: bare?.actor }, { reason: null, actor: null }, "an empty reason and an actor without a nick are none");
  });
});

describe("parseStanza: a peer's attachments (XEP-0066, XEP-0447 with XEP-0446)", () => {
  const attachmentsOf = (...children: ReturnType<typeof xml>[]) => {
    const s = parseStanza(xml("message", { from: "juliet@localhost/balcony", to: "romeo@gw.localhost", type: "chat", id: "a1" }, xml("body", {}, "look"), ...children));
    assert.equal(s?.kind, "message");
    return s?.kind === "message" ? (s.features?.attachments ?? []) : [];
  };
  const oob = (url: string) => xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, url));
  const sfs = (url: string, meta: Record<string, string>) =>
    xml(
      "file-sharing",
      { xmlns: "urn:xmpp:sfs:0", disposition: "attachment" },
      xml("file", { xmlns: "urn:xmpp:file:metadata:0" }, ...Object.entries(meta).map(([k, v]) => xml(k, {}, v))),
      xml("sources", {}, xml("url-data", { xmlns: "http://jabber.org/protocol/url-data", target: url })),
    );

  it("keeps what the API documents of one (http(s) URLs; fields within their bounds), every field checked against AttachmentSchema", () => {
    const got = attachmentsOf(
      oob("javascript:alert(document.cookie)"),
      oob(`https://example.org/${"a".repeat(2100)}`),
      oob("data:text/html,<b>hi</b>"),
      oob("HTTPS://example.org/ok.png"),
      sfs("https://example.org/f", { "media-type": "text/html; <script>", name: "n".repeat(300), desc: "d".repeat(1100), size: "12" }),
      sfs("https://example.org/g", { "media-type": "image/png", name: "g.png", desc: "a picture" }),
    );
    assert.deepEqual(got, [
      { url: "HTTPS://example.org/ok.png" },
      { url: "https://example.org/f", size: 12 },
      { url: "https://example.org/g", mediaType: "image/png", name: "g.png", description: "a picture" },
    ]);
    assert.deepEqual(got.filter((a) => !Value.Check(AttachmentSchema, a)), []);
  });
});

describe("parseStanza: the new address of a <gone/> error (RFC 6120 §8.3.3.5)", () => {
  const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
  const refusal = (...gone: (string | undefined)[]) =>
    parseStanza(xml("presence", { from: "tomb@conference.localhost/romeo", to: "romeo@gw.localhost/rooms", type: "error" }, xml("error", { type: "cancel" }, xml("gone", { xmlns: STANZAS }, ...gone.filter((g) => g !== undefined)), xml("text", { xmlns: STANZAS }, "moved"))));
  const goneTo = (...gone: (string | undefined)[]) => {
    const s = refusal(...gone);
    assert.equal(s?.kind, "presence");
    return s.kind === "presence" ? s.goneTo : undefined;
  };
  it("reads an XMPP URI's JID, bare, its query and fragment left out (RFC 5122), percent-decoded", () => {
    assert.equal(goneTo("xmpp:hall@conference.localhost?join"), "hall@conference.localhost");
    assert.equal(goneTo(" xmpp:Hall@Conference.Localhost/nick?join;password=x#f "), "hall@conference.localhost");
    assert.equal(goneTo("xmpp:caf%C3%A9@conference.localhost?join"), "café@conference.localhost");
  });
  it("is null when it names none: no text, another scheme, no JID, a bad percent-encoding", () => {
    for (const g of [undefined, "", "https://example.com/hall", "xmpp:", "xmpp:a@b@c", "xmpp:%E0@x"]) assert.equal(goneTo(g), null, String(g));
  });
});
