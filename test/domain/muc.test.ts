// Why an occupant left a room, from its unavailable presence (XEP-0045 §17.1 status codes, §10.9 <destroy/>).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { departure, historySince, mucPresence, visibleNick } from "../../src/domain/muc.js";

const why = (codes: string[], destroyed: { reason: string | null; alternate: string | null } | null = null) => departure(mucPresence(null, codes, destroyed));

describe("departure (XEP-0045 §17.1)", () => {
  it("names each reason the room gives, the strongest first", () => {
    assert.equal(why(["110"]), null, "it just left");
    assert.equal(why(["110", "307"]), "kicked");
    assert.equal(why(["110", "301"]), "banned");
    assert.equal(why(["110", "303"]), "nick-changed");
    assert.equal(why(["110", "321"]), "removed");
    assert.equal(why(["110", "322"]), "removed");
    assert.equal(why(["110", "332"]), "dropped", "the service shutting down (or restarting)");
    assert.equal(why(["110", "333"]), "dropped", "removed because of an error: the room takes it back");
    assert.equal(why(["307", "333"]), "kicked", "a kick is a decision, whatever else it says");
    assert.equal(why(["110", "333"], { reason: null, alternate: null }), "destroyed");
  });
});

describe("historySince (XEP-0045 §7.2.15, XEP-0082)", () => {
  it("writes any RFC 3339 instant as XEP-0082's DateTime in UTC, and none for what is no instant", () => {
    assert.deepEqual(
      ["2999-01-01 00:00:00Z", "2999-01-01t00:00:00z", "2999-01-01T02:00:00+02:00", "2999-01-01T00:00:00.5Z"].map(historySince),
      ["2999-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z", "2999-01-01T00:00:00.500Z"],
    );
    assert.deepEqual(["1998-12-31T23:59:60Z", "yesterday", ""].map(historySince), [null, null, null]);
  });
});

describe("visibleNick", () => {
  it("refuses a nick of white space alone, as Prosody does, and takes one with any other character", () => {
    assert.deepEqual([" ", "\t \u3000", "a ", " \u00e9", "\u200b"].map(visibleNick), [false, false, true, true, true]);
  });
});
