import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainToASCII } from "node:url";
import { punycodeDecode, punycodeEncode } from "../../src/domain/punycode.js";

describe("punycode (RFC 3492)", () => {
  // RFC 3492 §7.1 sample strings, lowercased as IDNA uses them.
  const samples: [string, string][] = [
    ["ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"],
    ["他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"],
    ["3年b組金八先生", "3b-ww4c5e180e575a65lsy2b"],
    ["bücher", "bcher-kva"],
    ["münchen", "mnchen-3ya"],
  ];
  for (const [unicode, encoded] of samples) {
    it(`encodes and decodes ${unicode}`, () => {
      assert.equal(punycodeEncode(unicode), encoded);
      assert.equal(punycodeDecode(encoded), unicode);
    });
  }

  it("agrees with Node's IDNA on many labels", () => {
    let seed = 3492;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const pool = ["a", "z", "0", "9", "-", "ä", "ß", "é", "日", "本", "ж", "ع", "한", "\u{20000}"];
    for (let i = 0; i < 500; i++) {
      const length = 1 + Math.floor(random() * 12);
      let label = "";
      for (let j = 0; j < length; j++) label += pool[Math.floor(random() * pool.length)];
      if (/^-|-$|^..--/.test(label) || /^[a-z0-9-]*$/.test(label)) continue;
      const ascii = domainToASCII(label);
      if (!ascii.startsWith("xn--")) continue; // Node's UTS #46 refused it; nothing to compare
      assert.equal(punycodeEncode(label), ascii.slice(4), label);
      assert.equal(punycodeDecode(ascii.slice(4)), label, label);
    }
  });

  it("reads digits case-insensitively and copies basic code points as they are (§5, §7)", () => {
    assert.equal(punycodeDecode("bcher-KVA"), "bücher");
    assert.equal(punycodeDecode("BCHER-KVA"), "BüCHER");
  });

  it("encodes ASCII-only input as itself plus the delimiter", () => {
    assert.equal(punycodeEncode("abc"), "abc-");
    assert.equal(punycodeDecode("abc-"), "abc");
  });

  for (const bad of ["99999999999", "a-!", "ü", "-", "kva-\u00e9", "9"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(punycodeDecode(bad), null));
  }
});
