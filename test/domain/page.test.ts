import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { forwardPageOf, pageOf } from "../../src/domain/page.js";

describe("pageOf", () => {
  const page = (rows: number[], limit: number) => pageOf(rows, limit, (n) => `item ${n}`, (n) => String(n));

  it("shows at most `limit` rows, with the cursor after the last shown when more follow", () => {
    assert.deepEqual(page([1, 2, 3], 2), { items: ["item 1", "item 2"], nextCursor: "2" });
    assert.deepEqual(page([1, 2], 1), { items: ["item 1"], nextCursor: "1" });
  });

  it("ends without a cursor when the rows fit, exactly or not, and on an empty list", () => {
    assert.deepEqual(page([1, 2], 2), { items: ["item 1", "item 2"], nextCursor: null });
    assert.deepEqual(page([1], 2), { items: ["item 1"], nextCursor: null });
    assert.deepEqual(page([], 2), { items: [], nextCursor: null });
  });
});

describe("forwardPageOf", () => {
  // Rows as read after a cursor: oldest first.
  const page = (rows: number[], limit: number) => forwardPageOf(rows, limit, (n) => `item ${n}`, (n) => String(n));

  it("shows the `limit` rows right after the cursor newest first, with the newest of them as the next `after`", () => {
    assert.deepEqual(page([3, 4, 5], 2), { items: ["item 4", "item 3"], nextCursor: "4" });
    assert.deepEqual(page([3, 4], 1), { items: ["item 3"], nextCursor: "3" });
  });

  it("ends without a cursor when the rows fit, exactly or not, and on an empty list", () => {
    assert.deepEqual(page([5, 6], 2), { items: ["item 6", "item 5"], nextCursor: null });
    assert.deepEqual(page([6], 2), { items: ["item 6"], nextCursor: null });
    assert.deepEqual(page([], 2), { items: [], nextCursor: null });
  });
});
