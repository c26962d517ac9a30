// What `balcony doctor` asks PostgreSQL: does it answer, which version, and what time it is there
// (the gateway compares timestamps it computes with ones the database computes, e.g. retention).
import type pg from "pg";

export interface DatabaseProbe {
  /** server_version, e.g. "15.8 (Debian 15.8-0+deb12u1)". */
  version: string;
  /** The database's clock (now()), in ms since the epoch. */
  nowMs: number;
  /** This host's clock halfway through the query, in ms since the epoch: compare it with nowMs. */
  localMs: number;
  /** Round trip of the query: the uncertainty of nowMs - localMs is half of it. */
  rttMs: number;
}

/** One round trip; throws pg's own error (with its code) when Postgres does not answer. */
export async function probeDatabase(pool: pg.Pool): Promise<DatabaseProbe> {
  // Connect first, so that the round trip timed below is the query's alone.
  const client = await pool.connect();
  try {
    const start = performance.now();
    const startMs = Date.now();
    const r = await client.query<{ now_ms: number; version: string }>(
      "SELECT (extract(epoch FROM now()) * 1000)::float8 AS now_ms, current_setting('server_version') AS version",
    );
    const rttMs = performance.now() - start;
    return { version: r.rows[0]!.version, nowMs: r.rows[0]!.now_ms, localMs: startMs + rttMs / 2, rttMs };
  } finally {
    client.release();
  }
}
