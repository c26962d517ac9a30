// Parameters that become the rows of one statement (the message inserts: src/db/messages.ts,
// src/db/inbound-writes.ts; the events appended with them: src/db/events.ts planAppend). A batch
// binds one array per column and unnest()s them; a single row, what every request is at low load,
// binds plain scalars in VALUES instead, which PostgreSQL takes for about a fifth less CPU than the
// same row as one-element arrays (a one-row INSERT of a message: 190-200 us against 240-270 us,
// both forms side by side in a variant of bench/outbound-writes.ts). Either way the rows read
// `u(<columns>, n)`, n their position, so the statement around them is the same.
import { StatementTexts } from "./statement-texts.js";

export interface Column<T> {
  name: string;
  /** The column's SQL type, as a parameter is cast (`uuid`, `text`, `json`, ...). */
  type: string;
  value: (row: T) => unknown;
}

/** Per columns: the FROM item's texts (see rowsFrom). */
const fromTexts = new WeakMap<readonly Column<never>[], StatementTexts>();

/** The FROM item's text for one row (`single`) or many, parameters numbered from `first`. */
function fromText(columns: readonly Column<never>[], single: boolean, first: number): string {
  let texts = fromTexts.get(columns);
  if (!texts) fromTexts.set(columns, (texts = new StatementTexts()));
  return texts.get(`${single ? 1 : "n"}:${first}`, () => {
    const names = `${columns.map((c) => c.name).join(", ")}, n`;
    return single
      ? `(VALUES (${columns.map((c, i) => `$${first + i}::${c.type}`).join(", ")}, 1::bigint)) AS u(${names})`
      : `unnest(${columns.map((c, i) => `$${first + i}::${c.type}[]`).join(", ")}) WITH ORDINALITY AS u(${names})`;
  });
}

/**
 * The FROM item for `rows` (parameters numbered from `first`, one per column) and their values.
 * Two shapes, two statement texts: each stays prepared on its own. Either shape binds one value
 * per column, so the parameters after these are numbered the same whatever the number of rows.
 */
export function rowsFrom<T>(columns: readonly Column<T>[], rows: readonly T[], first = 1): { from: string; values: unknown[] } {
  if (rows.length === 1) {
    const row = rows[0]!;
    return { from: fromText(columns, true, first), values: columns.map((c) => c.value(row)) };
  }
  return { from: fromText(columns, false, first), values: columns.map((c) => rows.map(c.value)) };
}
