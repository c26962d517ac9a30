// The Batcher's backlog (src/services/batcher.ts): how many items wait, and a wait until fewer do,
// which the inbound link's back-pressure reads (src/xmpp/inbound.ts). Pure: an in-memory runner.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Batcher } from "../../src/services/batcher.js";

describe("Batcher backlog", () => {
  it("counts the items waiting and resolves below(n) once fewer than n wait", async () => {
    const gates: (() => void)[] = [];
    const batcher = new Batcher<number, number>((items) => new Promise((resolve) => gates.push(() => resolve(items))), 2, 1);
    const done = Array.from({ length: 7 }, (_, i) => batcher.push(i));
    await new Promise((r) => setImmediate(r));
    assert.equal(batcher.pending, 5, "7 pushed, one batch of 2 running");
    let below3 = false;
    void batcher.below(3).then(() => (below3 = true));
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    assert.equal(batcher.pending, 3);
    assert.equal(below3, false, "3 still wait");
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    assert.equal(batcher.pending, 1);
    assert.equal(below3, true);
    while (gates.length) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(done), [0, 1, 2, 3, 4, 5, 6]);
    await batcher.below(1);
  });
});
