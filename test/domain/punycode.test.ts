// Punycode (RFC 3492) in domainparts. src/domain/jid.ts converts labels with Node's domainToASCII and
// domainToUnicode (RFC 7622 §3.2: A-labels become U-labels, and a U-label's 63-octet limit is measured
// on its A-label). These vectors once tested a hand-written codec; they now check Node's conversion
// and that jid.ts prepares the A-label and the U-label of a name to the same domainpart.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainToASCII, domainToUnicode } from "node:url";
import { prepareDomainpart } from "../../src/domain/jid.js";

describe("punycode (RFC 3492) in domainparts", () => {
  // RFC 3492 §7.1 sample strings, lowercased as IDNA uses them, and what jid.ts prepares either form
  // of "<label>.example" to.
  const samples: [string, string, string | null][] = [
    // Ends in ARABIC QUESTION MARK: UTS #46 encodes it, but it is punctuation, which IDNA2008 and so
    // RFC 7622 §3.2 disallow in a label.
    ["ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn", null],
    ["他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye", "他们为什么不说中文.example"],
    ["3年b組金八先生", "3b-ww4c5e180e575a65lsy2b", "3年b組金八先生.example"],
    ["bücher", "bcher-kva", "bücher.example"],
    ["münchen", "mnchen-3ya", "münchen.example"],
  ];
  for (const [unicode, encoded, prepared] of samples) {
    it(`encodes and decodes ${unicode}`, () => {
      assert.equal(domainToASCII(unicode), `xn--${encoded}`);
      assert.equal(domainToUnicode(`xn--${encoded}`), unicode);
      assert.equal(prepareDomainpart(`${unicode}.example`), prepared);
      assert.equal(prepareDomainpart(`xn--${encoded}.example`), prepared);
    });
  }

  it("prepares the A-label and the U-label of many labels to the same domainpart", () => {
    let seed = 3492;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const pool = ["a", "z", "0", "9", "-", "ä", "ß", "é", "日", "本", "ж", "ع", "한", "\u{20000}"];
    let compared = 0;
    for (let i = 0; i < 500; i++) {
      const length = 1 + Math.floor(random() * 12);
      let label = "";
      for (let j = 0; j < length; j++) label += pool[Math.floor(random() * pool.length)];
      if (/^-|-$|^..--/.test(label) || /^[a-z0-9-]*$/.test(label)) continue;
      const ascii = domainToASCII(label);
      if (!ascii.startsWith("xn--")) continue; // Node's UTS #46 refused it; nothing to compare
      assert.equal(domainToUnicode(ascii), label, label);
      assert.equal(prepareDomainpart(`${label}.example`), `${label}.example`, label);
      assert.equal(prepareDomainpart(`${ascii}.example`), `${label}.example`, label);
      compared++;
    }
    assert.ok(compared > 100, `only ${compared} labels compared`);
  });

  it("reads digits case-insensitively (§5, §7)", () => {
    assert.equal(domainToUnicode("xn--bcher-KVA"), "bücher");
    assert.equal(prepareDomainpart("xn--bcher-KVA.example"), "bücher.example");
    // A bare decoder copies basic code points as they are ("BCHER-KVA" -> "BüCHER"); domainparts are
    // lowercased before decoding (RFC 7622 §3.2.2), so the uppercase A-label names the same domain.
    assert.equal(prepareDomainpart("XN--BCHER-KVA.example"), "bücher.example");
  });

  it("refuses an A-label of ASCII-only input (\"abc\" encodes as \"abc-\")", () => {
    // IDNA never encodes an all-ASCII label, so "xn--abc-", which decodes to "abc", is a fake A-label
    // (RFC 5891 §5.4).
    assert.equal(domainToASCII("abc"), "abc");
    assert.equal(prepareDomainpart("xn--abc-.example"), null);
  });

  for (const bad of ["99999999999", "a-!", "ü", "-", "kva-\u00e9", "9"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(domainToUnicode(`xn--${bad}`), "");
      assert.equal(prepareDomainpart(`xn--${bad}.example`), null);
    });
  }
});
