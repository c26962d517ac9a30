import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fullDetail, growth } from "../../src/domain/roster-limits.js";

const inRoster = { inRoster: true };
const request = { inRoster: false }; // a stranger's request: the only item outside the roster

describe("roster limits: which bound a change takes a place under", () => {
  it("a contact joining the roster (new, or a stranger's request approved) takes a roster place", () => {
    assert.equal(growth(null, inRoster), "roster");
    assert.equal(growth(request, inRoster), "roster");
  });
  it("a stranger's new request takes a request place; one already kept takes none", () => {
    assert.equal(growth(null, request), "requests");
    assert.equal(growth(request, request), null);
  });
  it("a change within the roster, a removal, or a request answered by a denial takes none", () => {
    assert.equal(growth(inRoster, inRoster), null);
    assert.equal(growth(inRoster, null), null);
    assert.equal(growth(request, null), null);
    assert.equal(growth(null, null), null);
  });
  it("says the bound in its refusal", () => {
    assert.equal(fullDetail("roster"), "a roster holds at most 10,000 contacts");
    assert.equal(fullDetail("requests"), "at most 1,000 subscription requests wait for the account's answer");
  });
});
