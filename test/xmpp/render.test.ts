// The outbound message writer (renderText) must give, byte for byte, what the element tree gives:
// the hot path writes text directly, everything else still builds elements.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { OutboundMessage } from "../../src/domain/message.js";
import { ackType, presence, type Stanza } from "../../src/domain/stanza.js";
import { render, renderText } from "../../src/xmpp/render.js";

const base: OutboundMessage = { id: "0b6f3c1e-1111-4222-8333-944455556666", from: "romeo@gw.localhost/phone", to: "juliet@localhost", type: "chat" };
const hostile = `<&>"' \r\n\t ü 🌅 ]]> &amp; </body>`;
const cases: [string, OutboundMessage][] = [
  ["minimal", base],
  ["a body", { ...base, body: "hello" }],
  ["markup characters everywhere", { ...base, from: `a"b@gw.localhost/'&<>`, body: hostile, subject: hostile, thread: "t&<>'\"" }],
  ["bodies by language", { ...base, lang: "en", body: { en: "hi", fr: "salut", "zh-Hant": hostile }, subject: { de: "Betreff" } }],
  ["empty texts", { ...base, body: "", subject: { en: "" } }],
  ["receipt and chat state", { ...base, type: "normal", body: "x", receipt: true, state: "composing" }],
  ["state only", { ...base, type: "headline", state: "gone", thread: "th-1" }],
  ["nulls", { ...base, body: null, subject: null, thread: null, lang: null, state: null, receipt: false }],
];

describe("renderText", () => {
  for (const [name, m] of cases) {
    it(`writes ${name} exactly as the element tree does`, () => {
      const stanza = { kind: "message" as const, ...m };
      const text = renderText(stanza);
      assert.equal(text, render(stanza).toString());
      assert.ok(text.startsWith("<message "), text);
    });
  }

  const presences: [string, Stanza][] = [
    ["available, bare", presence("romeo@gw.localhost/a", "juliet@localhost", null)],
    ["unavailable", presence("romeo@gw.localhost/a", "juliet@localhost", "unavailable")],
    ["probe", presence("romeo@gw.localhost", "juliet@localhost", "probe")],
    ["show, statuses by language, priority", presence("romeo@gw.localhost/a", "juliet@localhost", null, { show: "away", status: { en: hostile, fr: "" }, priority: 5 })],
    ["a status only", presence("romeo@gw.localhost/a", `j"u'l<i>e&t@localhost`, null, { status: hostile, priority: 0 })],
    ["negative priority", presence("romeo@gw.localhost/a", "juliet@localhost", null, { show: "dnd", priority: -1 })],
    ["unavailable with a status and a delay", presence("romeo@gw.localhost", "juliet@localhost", "unavailable", { status: { en: hostile } }, { from: `gw"<&>.localhost`, stamp: "2026-12-07T10:11:12.345Z" })],
  ];
  // Each write draws a new stanza id (below): the two paths agree on everything else, byte for byte.
  const sameId = (text: string) => text.replace(/ id="[0-9a-f-]{36}"/, ' id="ID"');
  for (const [name, p] of presences) {
    it(`writes presence (${name}) exactly as the element tree does`, () => {
      assert.equal(sameId(renderText(p)), sameId(render(p).toString()));
    });
  }

  it("writes a probe answer's XEP-0203 delay after the status, with its from and stamp", () => {
    const s = presence("romeo@gw.localhost", "juliet@localhost", "unavailable", { status: { en: "gone", fr: "parti" } }, { from: "gw.localhost", stamp: "2026-12-07T10:11:12.345Z" });
    const expected =
      `<presence from="romeo@gw.localhost" to="juliet@localhost" type="unavailable" id="ID"><status xml:lang="en">gone</status><status xml:lang="fr">parti</status>` +
      `<delay xmlns="urn:xmpp:delay" from="gw.localhost" stamp="2026-12-07T10:11:12.345Z"/></presence>`;
    assert.equal(sameId(renderText(s)), expected);
    assert.equal(sameId(render(s).toString()), expected);
  });

  it("gives every presence, subscription and room join it writes an id of its own (RFC 6120 §8.1.3)", () => {
    const from = "romeo@gw.localhost";
    const to = "juliet@localhost";
    const stanzas: Stanza[] = [
      presence(`${from}/a`, to, null, { show: "away", priority: 1 }),
      presence(`${from}/a`, to, "unavailable"),
      presence(from, to, "probe"),
      { kind: "subscription", from, to, type: "subscribe" },
      { kind: "subscription", from, to, type: "unsubscribed" },
      { kind: "muc-join", from: `${from}/rooms`, to: "lobby@conference.localhost/romeo", password: null, history: null },
    ];
    for (const s of stanzas) {
      const ids = [render(s).attrs.id, render(s).attrs.id, /^<presence[^>]* id="([^"]*)"/.exec(renderText(s))?.[1]];
      for (const id of ids) assert.match(id ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${s.kind}: ${render(s).toString()}`);
      assert.equal(new Set(ids).size, ids.length, `${s.kind}: a new id each time`);
    }
  });

  it("stamps every message it sends with an origin-id that is its id (XEP-0359 §4)", () => {
    const from = "romeo@gw.localhost/phone";
    const to = "juliet@localhost";
    const messages: Stanza[] = [
      { kind: "message", ...base, body: "hi" },
      { kind: "muc-subject", from, to: "lobby@conference.localhost", id: "s-1", subject: "Verona" },
      { kind: "muc-invite", from, to: "lobby@conference.localhost", id: "i-1", invitee: to, reason: null },
      ...(["displayed", "retract"] as const).map((kind, i): Stanza => ({ kind: "message-action", from, to, id: `a-${i}`, action: { kind, ref: "m-1" } })),
      { kind: "message-action", from, to, id: "a-2", action: { kind: "replace", ref: "m-1", body: "fixed", lang: null } },
      { kind: "message-action", from, to, id: "a-3", action: { kind: "reactions", ref: "m-1", emojis: ["👍"] } },
    ];
    for (const m of messages) {
      const el = render(m);
      assert.equal(el.name, "message", m.kind);
      assert.ok(el.attrs.id, `${m.kind}: an id`);
      assert.equal(el.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, el.attrs.id, `${m.kind}: ${el.toString()}`);
    }
  });

  it("writes a receipt of the acknowledged message's type with only <received/> in it (XEP-0184 §5), and no type for a group message's", () => {
    const from = "romeo@gw.localhost";
    const to = "juliet@localhost/balcony";
    for (const type of ["chat", "normal", "headline"] as const) {
      assert.equal(
        render({ kind: "receipt", from, to, id: "their-id", stanzaId: "r-1", type }).toString(),
        `<message from="${from}" to="${to}" type="${type}" id="r-1"><received xmlns="urn:xmpp:receipts" id="their-id"/></message>`,
      );
    }
    // A group message's receipt would go to the room's bare JID; one owed to a sender is sent without a type.
    for (const type of [null, undefined]) {
      assert.equal(render({ kind: "receipt", from, to, id: "their-id", stanzaId: "r-1", type }).toString(), `<message from="${from}" to="${to}" id="r-1"><received xmlns="urn:xmpp:receipts" id="their-id"/></message>`);
    }
    assert.deepEqual(["chat", "normal", "headline", "groupchat", null, "error"].map(ackType), ["chat", "normal", "headline", null, null, null]);
  });

  it("puts the marked message's thread on a displayed marker, and none when it had none (XEP-0333 §Protocol Format)", () => {
    const from = "romeo@gw.localhost";
    const to = "juliet@localhost/balcony";
    const marker = (thread: string | null | undefined) => render({ kind: "message-action", from, to, id: "d-1", action: { kind: "displayed", ref: "m-1", ...(thread === undefined ? {} : { thread }) } });
    assert.equal(
      marker("t&<1>").toString(),
      `<message from="${from}" to="${to}" type="chat" id="d-1"><thread>t&amp;&lt;1&gt;</thread><displayed xmlns="urn:xmpp:chat-markers:0" id="m-1"/><store xmlns="urn:xmpp:hints"/><origin-id xmlns="urn:xmpp:sid:0" id="d-1"/></message>`,
    );
    for (const none of [null, undefined]) assert.equal(marker(none).getChild("thread"), undefined, `thread ${none}`);
  });

  it("renders a correction as the whole original again, with only its id, text and <replace/> new (XEP-0308 §Business Rules); an outbox row from before that as the text alone", () => {
    const from = "romeo@gw.localhost/rooms";
    const to = "lobby@conference.localhost";
    const original: OutboundMessage = {
      ...base,
      from,
      to,
      type: "groupchat",
      body: "Good morrow",
      subject: "Verona",
      thread: "t-1",
      lang: "en",
      ext: { markable: true, attachments: [{ url: "https://example.net/rose.png", name: "rose.png" }], reply: { id: "room-9", to: `${to}/juliet`, quote: "> juliet wrote:\n> hi\n" } },
    };
    const { id: _id, from: _f, to: _t, type: _ty, body: _b, lang: _l, ...resend } = original;
    const correction = render({ kind: "message-action", from, to, id: "c-1", type: "groupchat", action: { kind: "replace", ref: base.id, body: "Good morrow, coz", lang: "en", resend } });
    const expected = render({ kind: "message", ...original, id: "c-1", body: "Good morrow, coz" });
    // The same stanza but for the <replace/> before the origin-id.
    const replace = correction.getChild("replace", "urn:xmpp:message-correct:0");
    assert.deepEqual(replace?.attrs, { xmlns: "urn:xmpp:message-correct:0", id: base.id });
    correction.children.splice(correction.children.indexOf(replace!), 1);
    assert.equal(correction.toString(), expected.toString());
    // Recorded before corrections re-sent the original: a chat message with the new text alone.
    const old = render({ kind: "message-action", from: base.from, to: base.to, id: "c-2", action: { kind: "replace", ref: base.id, body: "fixed", lang: null } });
    assert.equal(
      old.toString(),
      `<message from="${base.from}" to="${base.to}" type="chat" id="c-2"><body>fixed</body><replace xmlns="urn:xmpp:message-correct:0" id="${base.id}"/><origin-id xmlns="urn:xmpp:sid:0" id="c-2"/></message>`,
    );
    // Other changes to a group message go to the room as group messages.
    assert.equal(render({ kind: "message-action", from, to, id: "r-1", type: "groupchat", action: { kind: "retract", ref: "room-1" } }).attrs.type, "groupchat");
  });

  it("renders other stanzas through the element tree", () => {
    const s = { kind: "subscription" as const, from: "romeo@gw.localhost", to: "juliet@localhost", type: "subscribe" as const };
    assert.equal(sameId(renderText(s)), `<presence from="romeo@gw.localhost" to="juliet@localhost" type="subscribe" id="ID"/>`);
  });
});
