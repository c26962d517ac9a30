// Sessions ended by DELETE /v1/sessions/{resource} a short while ago (table session_end). The
// client whose session was ended still has its event stream's reconnect coming: an EventSource
// (and any client following the SSE spec) reconnects when a stream ends, with Last-Event-ID, and
// that reconnect would open the session again at once, undoing a "log this device out". Such a
// reconnect is answered 204, which makes the user agent give up for good (HTML "Server-sent
// events", processing model: a 204 fails the connection without reconnecting). Kept apart from
// the session table, so nothing that reads sessions has to tell an ended one from a live one.
import type pg from "pg";
import type { Tx } from "./client.js";

/**
 * How long (seconds) a reconnect of an ended session is refused: at least the session grace
 * period, the time a session without a stream is taken as held by a client that may be coming
 * back (SESSION_GRACE_SECONDS), and at least SSE_RETRY plus a minute, so that with a short grace
 * the reconnect a few failed attempts (and a browser's backoff) delay still finds the mark.
 */
export function endedWindowSeconds(graceSeconds: number, retryMs: number): number {
  return Math.max(graceSeconds, Math.ceil(retryMs / 1000) + 60);
}

/** In the DELETE's transaction: the mark commits with the session's end, before any stream hears of it. */
export async function recordSessionEnd(tx: Tx, accountId: number, resource: string): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO session_end (account_id, resource) VALUES (${accountId}, ${resource})
    ON CONFLICT (account_id, resource) DO UPDATE SET ended_at = now()`;
}

/**
 * Whether a stream resuming this session is to be refused: the session was ended within the last
 * `windowSeconds`, and nothing opened it again since (it would have a row: a fresh stream or an
 * available presence re-creates it, and after that its streams' reconnects are the new session's),
 * and its credential was issued before the end (`issuedAt`, ms; null: unknown, taken as before).
 * A client's own reconnect reuses its credential; one that logged in again after the end, with a
 * new token, resumes with its saved Last-Event-ID as API.md says any client may.
 */
export async function endedLately(pool: pg.Pool, accountId: number, resource: string, windowSeconds: number, issuedAt: number | null = null): Promise<boolean> {
  const { rows } = await pool.query({
    name: "session-ended-lately",
    text: `SELECT 1 FROM session_end e
           WHERE e.account_id = $1 AND e.resource = $2 AND e.ended_at > now() - make_interval(secs => $3)
             AND ($4::float8 IS NULL OR to_timestamp($4::float8 / 1000) <= e.ended_at)
             AND NOT EXISTS (SELECT 1 FROM session s WHERE s.account_id = e.account_id AND s.resource = e.resource)`,
    values: [accountId, resource, windowSeconds, issuedAt],
  });
  return rows.length > 0;
}

/** The janitor's: marks older than the window refuse nothing any more. */
export async function purgeSessionEnds(pool: pg.Pool, windowSeconds: number): Promise<number> {
  const r = await pool.query("DELETE FROM session_end WHERE ended_at < now() - make_interval(secs => $1)", [windowSeconds]);
  return r.rowCount ?? 0;
}
