// stanzaBytesBound (src/domain/message.ts): never below the bytes of the stanza the link writes
// (src/xmpp/render.ts), whatever the texts hold: a message it lets through unrendered must not be
// one over the XMPP server's limit.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { stanzaBytesBound, type OutboundMessage } from "../../src/domain/message.js";
import { renderText } from "../../src/xmpp/render.js";

const base: OutboundMessage = { id: "8a6f4c52-3f2e-4b7a-9d1e-2c4b5a6d7e8f", from: "romeo@balcony.localhost/phone", to: "juliet@capulet.example", type: "chat" };
/** `n` variants under one-character keys (the shortest a map can have), each of `text`. */
const languages = (n: number, text: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String.fromCharCode(0x4e00 + i), text]));

const cases: [string, OutboundMessage][] = [
  ["a body of quotes", { ...base, body: '"'.repeat(5000) }],
  ["a body of apostrophes, ampersands and angle brackets", { ...base, body: "'&<>".repeat(1500) }],
  ["carriage returns (&#xD;)", { ...base, body: "\r\n".repeat(2000) }],
  ["two- and three-byte characters and surrogate pairs", { ...base, body: "é中😀".repeat(1000), subject: "ü".repeat(500) }],
  ["many languages of one character", { ...base, body: languages(2000, "x") }],
  ["many languages of quotes, subject too", { ...base, body: languages(300, '""'), subject: languages(300, "&") }],
  ["everything else a message carries", { ...base, type: "normal", body: "hi", subject: "s", thread: '"t"'.repeat(100), lang: "en-GB", receipt: true, state: "active", ext: { markable: true, replyTo: { id: null } } }],
  ["a reply's quote", { ...base, body: "yes", ext: { reply: { id: base.id, to: "juliet@capulet.example/balcony", quote: "> " + '"'.repeat(1000) + "\n" } } }],
  ["attachments whose URLs go out three times", { ...base, ext: { attachments: [{ url: `https://files.example/?${"a&".repeat(900)}`, mediaType: "image/png", name: "&".repeat(100), size: 1, description: "<>".repeat(200) }] } }],
];

describe("stanzaBytesBound", () => {
  for (const [what, m] of cases) {
    it(`is at least the rendered stanza's bytes: ${what}`, () => {
      const bytes = Buffer.byteLength(renderText({ kind: "message", ...m }));
      assert.ok(bytes > 0);
      assert.ok(stanzaBytesBound(m) >= bytes, `bound ${stanzaBytesBound(m)} < ${bytes} bytes rendered`);
    });
  }

  it("lets a plain message through unrendered well under a 10 KB limit", () => {
    assert.ok(stanzaBytesBound({ ...base, body: "Hello, Juliet!" }) < 10_000);
  });
});
