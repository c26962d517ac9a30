// nodeprepFolded (src/domain/stringprep-fold.ts): a localpart as stringprep's nodeprep case-folds
// it (RFC 3454 table B.2), against what PRECIS keeps (RFC 7622: lowercase).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nodeprepFolded } from "../../src/domain/stringprep-fold.js";
import { parseJid } from "../../src/domain/jid.js";

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
