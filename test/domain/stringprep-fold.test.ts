// nodeprepFolded (src/domain/stringprep-fold.ts): a localpart as stringprep's nodeprep case-folds
// it (RFC 3454 table B.2), against what PRECIS keeps (RFC 7622: lowercase).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeprepFolded, resourceprepFolded } from "../../src/domain/stringprep-fold.js";
import { parseJid, prepareResourcepart } from "../../src/domain/jid.js";

describe("nodeprepFolded", () => {
  it("folds what PRECIS keeps and nodeprep does not: ß, a final sigma, a subscript iota", () => {
    const cases: [string, string][] = [
      ["straße", "strasse"],
      ["οδος", "οδοσ"],
      ["ᾀ", "ἀι"],
    ];
    for (const [local, folded] of cases) {
      assert.equal(parseJid(`${local}@conference.example.com`)?.local, local, `${local} is a PRECIS localpart as it is`);
      assert.equal(nodeprepFolded(local), folded, local);
    }
  });

  it("leaves alone what both spell alike: ASCII, the dotless ı, a letter with a combining mark, non-Latin scripts", () => {
    for (const local of ["juliet", "montague-1", "ıstanbul", "ǰ", "i̇", "ромео", "ジュリエット", "οδοσ"]) assert.equal(nodeprepFolded(local), local, local);
  });
});

describe("resourceprepFolded", () => {
  it("maps what PRECIS keeps in a resourcepart and resourceprep does not: full width, superscripts, ligatures, roman numerals", () => {
    const cases: [string, string][] = [
      ["ｐｈｏｎｅ", "phone"],
      ["phone²", "phone2"],
      ["ﬁle", "file"],
      ["Ⅻ-tab", "XII-tab"],
    ];
    for (const [resource, folded] of cases) {
      assert.equal(prepareResourcepart(resource), resource, `${resource} is a PRECIS resourcepart as it is`);
      assert.equal(resourceprepFolded(resource), folded, resource);
    }
    // Table B.1's characters go (none gets through this gateway's PRECIS preparation: it refuses them).
    assert.equal(resourceprepFolded("a\u00adb\u200dc\ufe0f"), "abc");
  });

  it("leaves alone what both spell alike: case, spaces, punctuation, non-Latin scripts, emoji", () => {
    for (const resource of ["Phone", "мой телефон", "web/1 (tab)", "ジュリエット", "📱", "é"]) assert.equal(resourceprepFolded(resource), resource, resource);
  });
});
