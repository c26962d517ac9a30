// Reads bounded in bytes as well as in rows (src/domain/page.ts PAGE_BYTES): a page of history or
// of conversations. The event log's read (src/db/event-reads.ts) keeps its own form: a prepared
// statement on a hot path, which converts its data to text once, above its LIMIT.

/**
 * SQL: the rows of `inner` (a query with a `seq` column to order by and a `size` column, in bytes)
 * in `order` of seq, as many as fit in the bytes of parameter `param`, but always the first: a row
 * is kept when the rows before it come to less. Each row also has `upto` (the running size) and
 * `read` (how many rows `inner` gave), for cutBySize.
 */
export const sizeBounded = (inner: string, order: "ASC" | "DESC", param: string): string => `SELECT * FROM (
    SELECT t.*, sum(t.size) OVER (ORDER BY t.seq ${order} ROWS UNBOUNDED PRECEDING) AS upto, count(*) OVER () AS read FROM (${inner}) t
  ) p WHERE p.upto - p.size < ${param} ORDER BY p.seq ${order}`;

/** Whether a sizeBounded read left out rows `inner` gave, for their size: more follow. */
export const cutBySize = (rows: readonly { read: string | number }[]): boolean => rows.length < Number(rows[0]?.read ?? 0);
