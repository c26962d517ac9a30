// Cursor pages. A page reads one row more than it shows, so that the last page says it is the
// last (nextCursor null) instead of sending the client on to an empty one.

/**
 * How much event data (its JSON, in bytes) one read of the event log returns, or message data one
 * page of a conversation (src/db/message-history.ts), but for its first, which always comes. A
 * count alone bounds nothing: a message may be a few hundred KB (a request's body, or what the
 * XMPP server lets through), and 1,000 of them were one JSON page of GET /v1/events, 500 one
 * stream's read, or 200 one page of GET /v1/messages, held whole in the gateway's memory.
 */
export const PAGE_BYTES = 4 * 1024 * 1024;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * `rows` as read with a limit of `limit + 1`: the first `limit` of them, and the cursor after those
 * if more follow. `cut`: the read left rows out for their size (PAGE_BYTES), so more follow.
 */
export function pageOf<R, T>(rows: readonly R[], limit: number, view: (row: R) => T, cursor: (row: R) => string, cut = false): Page<T> {
  const shown = rows.slice(0, limit);
  return { items: shown.map(view), nextCursor: (cut || rows.length > limit) && shown.length > 0 ? cursor(shown[shown.length - 1]!) : null };
}

/**
 * A page read forward (`after` a cursor: oldest first, with a limit of `limit + 1`) but shown
 * newest first, as every page of a newest-first list is. The rows right after the cursor are the
 * page, so none is skipped; nextCursor is the newest of them, the `after` of the next page.
 */
export function forwardPageOf<R, T>(rows: readonly R[], limit: number, view: (row: R) => T, cursor: (row: R) => string, cut = false): Page<T> {
  const page = pageOf(rows, limit, view, cursor, cut);
  return { items: page.items.reverse(), nextCursor: page.nextCursor };
}
