// The pure rules of message features (src/domain/message-features.ts): what a reaction may be
// (XEP-0444 §Business Rules: one emoji, Unicode TS #51), and which id names a message on the wire
// (XEP-0444 and XEP-0461 §Using the correct ID, XEP-0333 §Protocol Format, XEP-0359).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isEmoji, MAX_REACTIONS, reactionRef, storedOriginId, validReactions, wireId } from "../../src/domain/message-features.js";

describe("reactions are one emoji each (XEP-0444, Unicode TS #51)", () => {
  const emoji: [string, string][] = [
    ["❤", "U+2764 without U+FE0F (text by default, an emoji all the same)"],
    ["☺", "U+263A"],
    ["✔", "U+2714"],
    ["❤️", "U+2764 U+FE0F (RGI)"],
    ["☺️", "U+263A U+FE0F"],
    ["👍", "an emoji-presentation character"],
    ["👍🏽", "with a skin tone modifier"],
    ["🏳️‍🌈", "a ZWJ sequence"],
    ["🇫🇷", "a flag"],
    ["1️⃣", "a keycap (RGI)"],
    ["#⃣", "a keycap without U+FE0F"],
    ["*️", "'*' with U+FE0F"],
    ["©", "U+00A9"],
  ];
  for (const [e, what] of emoji) it(`accepts ${e} (${what})`, () => assert.ok(isEmoji(e) && validReactions([e]), e));

  const text: [string, string][] = [
    ["1", "a digit alone"],
    ["#", "'#' alone"],
    ["*", "'*' alone"],
    ["a", "a letter"],
    ["", "nothing"],
    ["❤❤", "two emoji"],
    ["👍👍", "two emoji"],
    ["👍a", "an emoji and a letter"],
    [" ❤", "a space and an emoji"],
    ["❤️️", "two variation selectors"],
    ["\uFE0F", "a variation selector alone"],
    ["❤".repeat(40), "long text"],
  ];
  for (const [e, what] of text) it(`refuses ${JSON.stringify(e)} (${what})`, () => assert.ok(!isEmoji(e) && !validReactions([e]), e));

  it("refuses repeats and more than MAX_REACTIONS; accepts none", () => {
    assert.ok(validReactions([]));
    assert.ok(!validReactions(["❤", "❤"]));
    const many = [..."😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩"];
    assert.ok(validReactions(many.slice(0, MAX_REACTIONS)));
    assert.ok(!validReactions(many.slice(0, MAX_REACTIONS + 1)));
  });
});

describe("the id a message is known by on the wire", () => {
  const ours = { direction: "out", id: "0b6f3c1e-1111-4222-8333-944455556666", stanzaId: null, originId: null };
  const hers = { direction: "in", id: "1c7f3c1e-1111-4222-8333-944455556666", stanzaId: "wrong-recipient-1", originId: "origin-id-1" };
  const plain = { ...hers, originId: null };

  it("a reaction names a peer's message by its origin-id when it had one, else its stanza id; ours by our id (XEP-0444)", () => {
    assert.equal(reactionRef(hers), "origin-id-1");
    assert.equal(reactionRef(plain), "wrong-recipient-1");
    assert.equal(reactionRef({ ...plain, stanzaId: null }), null);
    assert.equal(reactionRef(ours), ours.id);
  });

  it("replies and markers name it by its stanza id (XEP-0461 v0.3, XEP-0333)", () => {
    assert.equal(wireId(hers), "wrong-recipient-1");
    assert.equal(wireId(ours), ours.id);
  });

  it("stores an origin-id only where it differs from the stanza id and can be an index key (XEP-0359)", () => {
    assert.equal(storedOriginId("s-1", "o-1"), "o-1");
    assert.equal(storedOriginId(null, "o-1"), "o-1");
    assert.equal(storedOriginId("s-1", "s-1"), null);
    assert.equal(storedOriginId("s-1", null), null);
    assert.equal(storedOriginId("s-1", "x".repeat(256)), "x".repeat(256));
    assert.equal(storedOriginId("s-1", "x".repeat(257)), null);
  });
});
