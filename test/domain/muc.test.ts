// Why an occupant left a room, from its unavailable presence (XEP-0045 §17.1 status codes, §10.9 <destroy/>).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { departure, mucPresence } from "../../src/domain/muc.js";

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
