// Parameters that become the rows of one statement (the message inserts: src/db/messages.ts,
// src/db/inbound-writes.ts; the events appended with them: src/db/events.ts planAppend). A batch
// binds one array per column and unnest()s them; a single row, what every request is at low load,
// binds plain scalars in VALUES instead, which PostgreSQL takes for about a fifth less CPU than the
// same row as one-element arrays (a one-row INSERT of a message: 190-200 us against 240-270 us,
// both forms side by side in a variant of bench/outbound-writes.ts). Either way the rows read
// `u(<columns>, n)`, n their position, so the statement around them is the same.

export interface Column<T> {
  name: string;
  /** The column's SQL type, as a parameter is cast (`uuid`, `text`, `json`, ...). */
  type: string;
  value: (row: T) => unknown;
}

/**
 * The FROM item for `rows` (parameters numbered from `first`, one per column) and their values.
 * Two shapes, two statement texts: each stays prepared on its own.
 */
export function rowsFrom<T>(columns: readonly Column<T>[], rows: readonly T[], first = 1): { from: string; values: unknown[] } {
  const names = `${columns.map((c) => c.name).join(", ")}, n`;
  if (rows.length === 1) {
    const row = rows[0]!;
    return {
      from: `(VALUES (${columns.map((c, i) => `$${first + i}::${c.type}`).join(", ")}, 1::bigint)) AS u(${names})`,
      values: columns.map((c) => c.value(row)),
    };
  }
  return {
    from: `unnest(${columns.map((c, i) => `$${first + i}::${c.type}[]`).join(", ")}) WITH ORDINALITY AS u(${names})`,
    values: columns.map((c) => rows.map(c.value)),
  };
}
