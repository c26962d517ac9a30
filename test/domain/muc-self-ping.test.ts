// What a self-ping's answer says (XEP-0410 §3.2), and how often quiet rooms are looked for.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { outOfRoom, selfPing, selfPingSweepMs, selfPingVerdict } from "../../src/domain/muc-self-ping.js";

describe("self-ping", () => {
  it("reads a result and a relayed client's errors as joined, not-acceptable and other errors as gone, an unreachable room as unknown", () => {
    const answers: [string, { type: string; condition: string } | null][] = [
      ["joined", null],
      ["joined", { type: "cancel", condition: "service-unavailable" }],
      ["joined", { type: "cancel", condition: "feature-not-implemented" }],
      // To the nick the account settled on (no nick change of its own under way): no such occupant.
      ["gone", { type: "cancel", condition: "item-not-found" }],
      ["gone", { type: "cancel", condition: "not-acceptable" }],
      ["gone", { type: "cancel", condition: "not-allowed" }],
      ["gone", { type: "modify", condition: "bad-request" }],
      ["unknown", { type: "wait", condition: "resource-constraint" }],
      ["unknown", { type: "cancel", condition: "remote-server-not-found" }],
      ["unknown", { type: "wait", condition: "remote-server-timeout" }],
    ];
    assert.deepEqual(
      answers.map(([, error]) => selfPingVerdict(error)),
      answers.map(([verdict]) => verdict),
    );
  });

  it("reads item-not-found as a nick change of the account's own under way while one is (§3.2), else as gone", () => {
    const notFound = { type: "cancel", condition: "item-not-found" };
    assert.deepEqual([selfPingVerdict(notFound, false), selfPingVerdict(notFound, true), selfPingVerdict({ type: "cancel", condition: "not-acceptable" }, false)], ["joined", "gone", "gone"]);
  });

  it("reads a room's not-acceptable and item-not-found to a message, and item-not-found to a presence, as the account out of the room", () => {
    const conditions = ["not-acceptable", "item-not-found", "forbidden", "conflict", "resource-constraint", "service-unavailable"];
    assert.deepEqual(
      conditions.map((condition) => [outOfRoom({ condition }, "message"), outOfRoom({ condition }, "presence")]),
      [
        [true, false],
        [true, true],
        [false, false],
        [false, false],
        [false, false],
        [false, false],
      ],
    );
    assert.deepEqual([outOfRoom(null, "message"), outOfRoom(undefined, "presence")], [false, false]);
  });

  it("pings the account's own occupant JID in the room, under an id its answer is known by", () => {
    assert.deepEqual(selfPing("livia@gw.example", "lobby@muc.example", "Livia", "1"), { kind: "muc-self-ping", from: "livia@gw.example/rooms", to: "lobby@muc.example/Livia", id: "muc-self-ping-1" });
  });

  it("looks for quiet rooms four times per idle time, between 250 ms and a minute", () => {
    assert.deepEqual([100, 1_000, 60_000, 900_000].map(selfPingSweepMs), [250, 250, 15_000, 60_000]);
  });
});
