// Validation problems (src/http/validation.ts): a language map's error is the map's, not the
// string branch's "must be string" (a union reports both), and the field stays the request's.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { validationProblem, validators } from "../../src/http/validation.js";
import { sendMessageBody } from "../../src/http/schemas.js";

describe("validation problems", () => {
  const check = validators.body.compile(sendMessageBody(4096));
  const problem = (body: unknown) => {
    assert.equal(check(body), false, `refused: ${JSON.stringify(body)}`);
    return validationProblem(check.errors, "body");
  };

  it("reports what is wrong inside a language map, under the request's field", () => {
    const cases: [unknown, string, string, RegExp][] = [
      [{ to: "j@x", body: "a\u0001" }, "invalid-text", "body.body", /^body\.body contains characters/],
      [{ to: "j@x", body: { en: "a\u0001" } }, "invalid-text", "body.body", /^body\.body\.en contains characters/],
      [{ to: "j@x", body: { en: "fine", de: "\u0008" } }, "invalid-text", "body.body", /^body\.body\.de contains/],
      [{ to: "j@x", subject: { fr: "\u0085" } }, "invalid-text", "body.subject", /^body\.subject\.fr contains/],
      [{ to: "j@x", body: { en: "" } }, "validation-failed", "body.body", /^body\.body\.en must NOT have fewer than 1 characters/],
      [{ to: "j@x", body: {} }, "validation-failed", "body.body", /^body\.body must NOT have fewer than 1 properties/],
      [{ to: "j@x", body: { "e n": "x" } }, "validation-failed", "body.body", /^body\.body\.e n is not a known field/],
      // Language tags are case-insensitive (RFC 5646 §2.1.1): one language, named twice.
      [{ to: "j@x", body: { en: "a", EN: "b" } }, "validation-failed", "body.body", /^body\.body names one language twice \(en, EN\)/],
      [{ to: "j@x", body: "hi", subject: { "en-GB": "a", de: "b", "en-gb": "c" } }, "validation-failed", "body.subject", /^body\.subject names one language twice \(en-GB, en-gb\)/],
      // Neither branch takes the value's type: the first branch's word, as before.
      [{ to: "j@x", body: 5 }, "validation-failed", "body.body", /^body\.body must be string/],
      // Outside a union: the first error, as before.
      [{ to: "j@x", body: "hi", extra: 1 }, "validation-failed", "body.extra", /is not a known field/],
      [{ body: "hi" }, "validation-failed", "body.to", /must have required property 'to'/],
    ];
    for (const [body, code, field, detail] of cases) {
      const p = problem(body);
      assert.deepEqual([p.code, p.field], [code, field], JSON.stringify(body));
      assert.match(p.detail, detail, JSON.stringify(body));
    }
  });

  it("takes well-formed language tags (RFC 5646 §2.1) as lang and as a map's keys, and refuses ill-formed ones naming the field", () => {
    // Well-formed at any length, but taken up to 128 characters: 7 + 15 x 8 + 1 = 128, and 9 more.
    const longest = `en-x-ab${"-abcdefg".repeat(15)}a`;
    const good = ["en", "EN-us", "zh-Hant-TW", "zh-yue", "es-419", "de-CH-1901", "sl-rozaj-biske", "en-US-u-ca-gregory", "en-US-x-twain", "x-private", "i-klingon", "en-GB-oed", "abcdefgh", longest];
    const bad = ["q", "x", "i", "en-a", "abcdefgh-x", "en--US", "en-", "123", "en-US-x", "abcdefghi", "en-US-a-b", `${longest}-abcdefgh`];
    assert.deepEqual([longest.length, `${longest}-abcdefgh`.length], [128, 137]);
    const refused = (m: Record<string, unknown>) => !check({ to: "j@x", ...m }) && validationProblem(check.errors, "body").field;
    assert.deepEqual(good.flatMap((t) => [refused({ body: "hi", lang: t }), refused({ body: { [t]: "hi" } })]), good.flatMap(() => [false, false]));
    assert.deepEqual(bad.flatMap((t) => [refused({ body: "hi", lang: t }), refused({ body: { [t]: "hi" } })]), bad.flatMap(() => ["body.lang", "body.body"]));
    // The detail says what a language tag is, not the pattern's 600 characters (the docs audit).
    assert.equal(check({ to: "j@x", body: "hi", lang: "q" }), false);
    const detail = validationProblem(check.errors, "body").detail;
    assert.match(detail, /^body\.lang is not a language tag \(RFC 5646/);
    assert.ok(detail.length < 120, detail);
  });

  it("takes a language map whose languages differ, in whatever case each is written", () => {
    assert.equal(check({ to: "j@x", body: { en: "a", "EN-gb": "b", de: "c" } }), true, JSON.stringify(check.errors));
  });
});
