import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { pageOf } from "../../src/domain/page.js";

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
