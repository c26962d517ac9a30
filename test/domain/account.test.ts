// issuedBeforeDeletion (src/domain/account.ts): a token's whole-second iat against the latest
// deletion of its localpart.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { issuedBeforeDeletion } from "../../src/domain/account.js";

describe("issuedBeforeDeletion", () => {
  const deletedAt = new Date("2026-12-06T10:00:05.400Z");
  const at = (iso: string) => Date.parse(iso);

  it("refuses a token from an earlier second than the deletion", () => {
    assert.equal(issuedBeforeDeletion(at("2026-12-06T10:00:04Z"), deletedAt), true);
    assert.equal(issuedBeforeDeletion(at("2025-01-01T00:00:00Z"), deletedAt), true);
  });

  it("accepts a token from the deletion's second (either side of it: iat cannot tell) or later", () => {
    assert.equal(issuedBeforeDeletion(at("2026-12-06T10:00:05Z"), deletedAt), false);
    assert.equal(issuedBeforeDeletion(at("2026-12-06T10:00:06Z"), deletedAt), false);
    assert.equal(issuedBeforeDeletion(at("2026-12-06T10:00:05Z"), new Date("2026-12-06T10:00:05.000Z")), false, "a deletion on the second's edge");
  });

  it("accepts when either is unknown: no deletion, or no iat", () => {
    assert.equal(issuedBeforeDeletion(at("2026-12-06T10:00:04Z"), null), false);
    assert.equal(issuedBeforeDeletion(null, deletedAt), false);
  });
});
