// XEP-0191 §3 JID matching, as a pure function: which senders a blocklist item covers.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blockItem, bouncesBlocked, isBlocked } from "../../src/domain/blocking.js";
import { parseJid } from "../../src/domain/jid.js";

const blocked = (items: string[], from: string) => isBlocked(new Set(items), parseJid(from)!);

describe("blocklist matching (XEP-0191 §3)", () => {
  const senders = ["juliet@capulet.lit/balcony", "juliet@capulet.lit/chamber", "juliet@capulet.lit", "nurse@capulet.lit/garden", "capulet.lit", "capulet.lit/bot", "x@chat.capulet.lit/r", "romeo@montague.lit/r"];
  const cases: [item: string, covers: string[]][] = [
    ["juliet@capulet.lit/balcony", ["juliet@capulet.lit/balcony"]],
    ["juliet@capulet.lit", ["juliet@capulet.lit/balcony", "juliet@capulet.lit/chamber", "juliet@capulet.lit"]],
    ["capulet.lit/bot", ["capulet.lit/bot"]],
    // The domain itself, every address at it, and subdomains' addresses.
    ["capulet.lit", senders.filter((s) => !s.includes("montague"))],
  ];
  for (const [item, covers] of cases) {
    it(`${item} blocks exactly ${covers.length} of the senders`, () => {
      assert.deepEqual(senders.filter((s) => blocked([item], s)), covers);
    });
  }
  it("an empty list blocks no one; items do not match by prefix or suffix of a label", () => {
    assert.deepEqual(senders.filter((s) => blocked([], s)), []);
    assert.deepEqual(senders.filter((s) => blocked(["ulet.lit", "juliet@capulet", "lit.capulet"], s)), []);
    assert.equal(blocked(["ulet.lit"], "juliet@capulet.lit"), false);
    assert.equal(blocked(["lit"], "juliet@capulet.lit"), true, "a parent domain covers its subdomains");
  });
  it("normalises items (RFC 7622) and refuses what is no JID", () => {
    assert.equal(blockItem("Juliet@CAPULET.lit/Balcony"), "juliet@capulet.lit/Balcony");
    assert.equal(blockItem("capulet.lit."), "capulet.lit");
    for (const bad of ["", "@capulet.lit", "juliet@", "a@b@c", "juliet@capulet.lit/"]) assert.equal(blockItem(bad), null, bad);
  });
});

describe("what a blocked sender's message gets (XEP-0191 §3.3)", () => {
  it("an error, but for what a room sends: group messages, and private messages to the occupant JID", () => {
    const types = ["chat", "normal", "groupchat", "headline"];
    const answered = (to: string | undefined) => types.filter((t) => bouncesBlocked(t, to));
    assert.deepEqual(answered(undefined), ["chat", "normal", "headline"]);
    assert.deepEqual(answered("phone"), ["chat", "normal", "headline"], "a session's full JID");
    // A room occupant's private message comes to the occupant JID (localpart@domain/rooms).
    assert.deepEqual(answered("rooms"), []);
  });
});
