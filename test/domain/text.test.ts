import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { XML_TEXT_PATTERN, firstInvalidXmlChar, isXmlChar, isXmlText } from "../../src/domain/text.js";
import { prng } from "../helpers/prng.js";

// Ajv compiles `pattern` with the `u` flag; TypeBox's Value.Check without it. Both must agree.
const withU = new RegExp(XML_TEXT_PATTERN, "u");
const withoutU = new RegExp(XML_TEXT_PATTERN);
/** DEL and the C1 controls: XML 1.0 Chars, but control characters, which the HTTP input refuses (API.md). */
const CONTROL = /[\u007f-\u009f]/;
/** What XML_TEXT_PATTERN must accept: XML text without those controls. */
const acceptable = (s: string) => firstInvalidXmlChar(s) === -1 && !CONTROL.test(s);

/**
 * Reference implementation, written differently on purpose: for..of walks code points and yields a
 * lone surrogate as a one-unit string, so a character is invalid exactly when its code point is
 * outside the XML 1.0 Char production.
 */
function referenceFirstInvalid(s: string): number {
  let index = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    const ok =
      cp === 0x9 ||
      cp === 0xa ||
      cp === 0xd ||
      (cp >= 0x20 && cp <= 0xd7ff) ||
      (cp >= 0xe000 && cp <= 0xfffd) ||
      (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok) return index;
    index += ch.length;
  }
  return -1;
}

describe("isXmlChar (XML 1.0 §2.2 Char)", () => {
  const valid = [0x9, 0xa, 0xd, 0x20, 0x7e, 0x7f, 0x80, 0x85, 0xd7ff, 0xe000, 0xfffd, 0x10000, 0x1f600, 0x10ffff];
  const invalid = [0x0, 0x1, 0x8, 0xb, 0xc, 0xe, 0x1f, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfffe, 0xffff, 0x110000, -1];
  for (const cp of valid) it(`accepts U+${cp.toString(16).toUpperCase()}`, () => assert.equal(isXmlChar(cp), true));
  for (const cp of invalid) it(`rejects ${cp.toString(16).toUpperCase()}`, () => assert.equal(isXmlChar(cp), false));
});

describe("firstInvalidXmlChar", () => {
  const cases: [string, number, string][] = [
    ["", -1, "the empty string"],
    ["hello", -1, "ASCII"],
    ["tab\there\r\nnext", -1, "tab, CR and LF"],
    ["a\u0000b", 1, "NUL"],
    ["ab\u000b", 2, "vertical tab"],
    ["\u000c", 0, "form feed"],
    ["\u001f", 0, "unit separator"],
    ["é日\u{1f600}", -1, "BMP and a surrogate pair"],
    ["\u{10ffff}", -1, "the last code point"],
    ["a\ud800", 1, "a high surrogate at the end"],
    ["a\ud800b", 1, "a high surrogate followed by a non-surrogate"],
    ["a\ud800\ud800\udc00", 1, "a high surrogate followed by a pair"],
    ["\udc00", 0, "a lone low surrogate"],
    ["\u{1f600}\udc00", 2, "a low surrogate after a pair"],
    ["\udc00\ud800", 0, "a reversed pair"],
    ["x\ufffe", 1, "U+FFFE"],
    ["\uffff", 0, "U+FFFF"],
    ["\ufffd", -1, "U+FFFD"],
    ["\ue000", -1, "private use"],
  ];
  for (const [s, expected, why] of cases) {
    it(`${why}: ${expected}`, () => {
      assert.equal(firstInvalidXmlChar(s), expected);
      assert.equal(isXmlText(s), expected === -1);
      assert.equal(withU.test(s), expected === -1);
      assert.equal(withoutU.test(s), expected === -1);
    });
  }
});

describe("XML_TEXT_PATTERN refuses DEL and the C1 controls (API.md: control characters are refused with 400)", () => {
  const controls: [string, string][] = [
    ["a\u007fb", "DEL"],
    ["\u0080", "U+0080, the first C1 control"],
    ["next line\u0085", "NEL"],
    ["\u009b[31m", "CSI"],
    ["\u009f", "U+009F, the last C1 control"],
  ];
  for (const [s, why] of controls) {
    it(`${why}: XML text, refused by the pattern`, () => {
      assert.equal(isXmlText(s), true, "an XML 1.0 Char: the renderer could write it");
      assert.equal(withU.test(s), false);
      assert.equal(withoutU.test(s), false);
    });
  }
  it("the characters around them stay accepted", () => {
    for (const s of ["~", "\u00a0", "é", "tab\there\r\n"]) {
      assert.equal(withU.test(s), true, JSON.stringify(s));
      assert.equal(withoutU.test(s), true, JSON.stringify(s));
    }
  });
});

describe("XML_TEXT_PATTERN agrees with firstInvalidXmlChar (less DEL and the C1 controls)", () => {
  // Code units at and around every boundary of the Char production, and of UTF-16.
  const EDGE_UNITS = [
    0x0, 0x1, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd, 0xe, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xd7fe, 0xd7ff, 0xd800, 0xd801, 0xdbfe, 0xdbff,
    0xdc00, 0xdc01, 0xdffe, 0xdfff, 0xe000, 0xe001, 0xfeff, 0xfffc, 0xfffd, 0xfffe, 0xffff,
  ];
  const EDGE_POINTS = [0x10000, 0x10001, 0x1f600, 0xeffff, 0xfffff, 0x10fffe, 0x10ffff];

  function randomString(random: () => number): string {
    const length = Math.floor(random() * 12);
    let s = "";
    for (let i = 0; i < length; i++) {
      const r = random();
      if (r < 0.45) s += String.fromCharCode(EDGE_UNITS[Math.floor(random() * EDGE_UNITS.length)] ?? 0);
      else if (r < 0.6) s += String.fromCodePoint(EDGE_POINTS[Math.floor(random() * EDGE_POINTS.length)] ?? 0);
      else if (r < 0.8) s += String.fromCharCode(Math.floor(random() * 0x10000)); // any unit, lone surrogates included
      else if (r < 0.9) s += String.fromCodePoint(0x10000 + Math.floor(random() * 0x100000));
      else s += "a";
    }
    return s;
  }

  it("on 200,000 generated strings, with and without the u flag", () => {
    const random = prng(0x584d4c);
    let valid = 0;
    for (let i = 0; i < 200_000; i++) {
      const s = randomString(random);
      const index = firstInvalidXmlChar(s);
      assert.equal(index, referenceFirstInvalid(s), JSON.stringify(s));
      assert.equal(withU.test(s), acceptable(s), JSON.stringify(s));
      assert.equal(withoutU.test(s), acceptable(s), JSON.stringify(s));
      if (acceptable(s)) valid++;
    }
    // Both outcomes must be well represented, or the comparison proves little.
    assert.ok(valid > 20_000 && valid < 180_000, `valid=${valid}`);
  });

  it("on every single code unit and on every supplementary code point boundary", () => {
    for (let cu = 0; cu <= 0xffff; cu++) {
      const s = String.fromCharCode(cu);
      const ok = firstInvalidXmlChar(s) === -1;
      assert.equal(ok, isXmlChar(cu) && !(cu >= 0xd800 && cu <= 0xdfff), cu.toString(16));
      const accepted = ok && !(cu >= 0x7f && cu <= 0x9f);
      assert.equal(withU.test(s), accepted, cu.toString(16));
      assert.equal(withoutU.test(s), accepted, cu.toString(16));
    }
    for (const cp of EDGE_POINTS) {
      const s = String.fromCodePoint(cp);
      assert.equal(firstInvalidXmlChar(s), -1);
      assert.equal(withU.test(s), true);
      assert.equal(withoutU.test(s), true);
    }
  });

  it("handles long strings without blowing the regex stack", () => {
    const long = "ok \u{1f600} é\t".repeat(200_000);
    assert.equal(withU.test(long), true);
    assert.equal(withoutU.test(long), true);
    assert.equal(withU.test(`${long}\u0000`), false);
    assert.equal(firstInvalidXmlChar(`${long}\u0000`), long.length);
  });
});
