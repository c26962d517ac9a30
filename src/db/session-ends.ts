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
 * The mark `e` of session ($1 account, $2 resource) inside the window ($3 s), for a credential
 * issued ($4 ms; null: unknown, taken as before) before the end.
 */
const ENDED_FOR = `e.account_id = $1 AND e.resource = $2 AND e.ended_at > now() - make_interval(secs => $3)
  AND ($4::float8 IS NULL OR to_timestamp($4::float8 / 1000) <= e.ended_at)`;

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
    text: `SELECT 1 FROM session_end e WHERE ${ENDED_FOR}
             AND NOT EXISTS (SELECT 1 FROM session s WHERE s.account_id = e.account_id AND s.resource = e.resource)`,
    values: [accountId, resource, windowSeconds, issuedAt],
  });
  return rows.length > 0;
}

/**
 * The marks inside the window, newest first (at most `limit`): what an instance that may have
 * missed their NOTIFY (its listener was reconnecting, or it started after them) learns on each
 * (re)connect of its listener. `ageMs`: how long ago the end was; `gone`: the session has no row
 * now (nothing opened it again), so a stream of it still open somewhere missed its end.
 */
export async function recentSessionEnds(pool: pg.Pool, windowSeconds: number, limit: number): Promise<{ accountId: number; resource: string; ageMs: number; gone: boolean }[]> {
  const { rows } = await pool.query<{ account_id: number; resource: string; age_ms: number; gone: boolean }>(
    `SELECT e.account_id, e.resource, extract(epoch FROM now() - e.ended_at) * 1000 AS age_ms,
            NOT EXISTS (SELECT 1 FROM session s WHERE s.account_id = e.account_id AND s.resource = e.resource) AS gone
     FROM session_end e WHERE e.ended_at > now() - make_interval(secs => $1) ORDER BY e.ended_at DESC LIMIT $2`,
    [windowSeconds, limit],
  );
  return rows.map((r) => ({ accountId: r.account_id, resource: r.resource, ageMs: Number(r.age_ms), gone: r.gone }));
}

/**
 * A stream that resumes (Last-Event-ID) a session and found no row for it, so its open created
 * one: if that session was ended within the window, with a credential issued before the end (as
 * endedLately), the open came after the DELETE, whichever instance heard of it when, and undid it.
 * Removes the row that open created and returns true (the stream is refused). Only a row that is
 * still the open's alone: no available presence set on it and no other stream on it since (a
 * client that came back meanwhile keeps its session, and the stream is served).
 */
export async function undoResumedOpen(pool: pg.Pool, accountId: number, resource: string, windowSeconds: number, issuedAt: number | null): Promise<boolean> {
  const r = await pool.query(
    `DELETE FROM session s WHERE s.account_id = $1 AND s.resource = $2 AND NOT s.available AND s.streams <= 1
       AND EXISTS (SELECT 1 FROM session_end e WHERE ${ENDED_FOR})`,
    [accountId, resource, windowSeconds, issuedAt],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * Whether the session has no row: an open that made it and heard of an end of it meanwhile tells
 * so an end that came first (the row is the open's: the session's return) from one that came after
 * (the DELETE removed the row the open made, and the stream is on an ended session).
 */
export async function sessionGone(pool: pg.Pool, accountId: number, resource: string): Promise<boolean> {
  const { rows } = await pool.query("SELECT 1 FROM session WHERE account_id = $1 AND resource = $2", [accountId, resource]);
  return rows.length === 0;
}

/** The janitor's: marks older than the window refuse nothing any more. */
export async function purgeSessionEnds(pool: pg.Pool, windowSeconds: number): Promise<number> {
  const r = await pool.query("DELETE FROM session_end WHERE ended_at < now() - make_interval(secs => $1)", [windowSeconds]);
  return r.rowCount ?? 0;
}
