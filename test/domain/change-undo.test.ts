// When a refused change to the account's own message is put back (src/domain/change-undo.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { restoreOf, type ChangeUndo } from "../../src/domain/change-undo.js";

const replace: ChangeUndo = { kind: "replace", before: { body: "old", editedAt: null }, after: { en: "new", fr: "neuf" } };
const reactions: ChangeUndo = { kind: "reactions", by: "romeo@gw.localhost", before: ["❤️"], after: ["❤️", "😢"] };
const message = (body: unknown, reactions: Record<string, string[]> | null = null, retractedAt: Date | null = null) => ({ body, reactions, retractedAt });

describe("restoreOf", () => {
  it("puts a correction's text back while the message still has it (its keys in any order)", () => {
    assert.deepEqual(restoreOf(replace, message({ fr: "neuf", en: "new" })), { kind: "replace", body: "old", editedAt: null });
  });
  it("leaves a later correction, and a retraction, standing", () => {
    assert.equal(restoreOf(replace, message("newer")), null);
    assert.equal(restoreOf(replace, message(null, null, new Date())), null);
  });
  it("puts reactions back while the account's set is still the one refused (in any order)", () => {
    assert.deepEqual(restoreOf(reactions, message("x", { "romeo@gw.localhost": ["😢", "❤️"], "juliet@localhost": ["👍"] })), { kind: "reactions", by: "romeo@gw.localhost", emojis: ["❤️"] });
  });
  it("leaves reactions changed since standing", () => {
    assert.equal(restoreOf(reactions, message("x", { "romeo@gw.localhost": ["👍"] })), null);
    assert.equal(restoreOf(reactions, message("x", null)), null);
  });
});
