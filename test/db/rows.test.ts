// rowsFrom (src/db/rows.ts): one row binds scalars in VALUES, more bind one array per column; both
// read as u(<columns>, n). The statements themselves run in every message test (single sends and
// batches, both directions); this pins the two shapes and the parameter numbering.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rowsFrom, type Column } from "../../src/db/rows.js";

interface R {
  id: string;
  n: number;
}
const COLUMNS: Column<R>[] = [
  { name: "id", type: "uuid", value: (r) => r.id },
  { name: "count", type: "int", value: (r) => r.n },
];

describe("rowsFrom", () => {
  it("binds a single row as scalars in VALUES, numbered from `first`", () => {
    assert.deepEqual(rowsFrom(COLUMNS, [{ id: "a", n: 1 }], 3), {
      from: "(VALUES ($3::uuid, $4::int, 1::bigint)) AS u(id, count, n)",
      values: ["a", 1],
    });
  });

  it("binds several rows as one array per column, unnested in order", () => {
    assert.deepEqual(
      rowsFrom(COLUMNS, [
        { id: "a", n: 1 },
        { id: "b", n: 2 },
      ]),
      {
        from: "unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS u(id, count, n)",
        values: [
          ["a", "b"],
          [1, 2],
        ],
      },
    );
  });
});
