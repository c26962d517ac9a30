// Sessions (resources) of an account, kept alive by their event streams. Counters live in
// Postgres so every gateway instance sees the same sessions.
import type { LangText } from "../domain/message.js";
import type pg from "pg";
import { autocommit, isConflict, jsonParam, retryConflicts, sql, type AnyTx, type Db, type Tx } from "./client.js";
import { isForeignKeyViolation } from "./errors.js";
import { Prisma } from "./generated/client.js";
import { CHANNELS, notify, type Notifications } from "./notify.js";
import { recordSessionEnd } from "./session-ends.js";

export interface PresenceFields {
  available: boolean;
  show: string | null;
  status: LangText | null;
  priority: number;
}

export interface SessionRow {
  resource: string;
  createdAt: Date;
  streams: number;
  streamClosedAt: Date | null;
  lastSeenAt: Date;
  deliveredSeq: number;
  available: boolean;
  show: string | null;
  status: unknown;
  priority: number;
}

/** A session that `n` streams open on (distinct sessions per batch: see streamsOpened). */
export interface SessionOpen {
  accountId: number;
  resource: string;
  n: number;
}

export interface OpenedSession {
  /** The session's delivered cursor before, or null when the session is new (or never had a stream). */
  deliveredSeq: number | null;
  /** The highest delivered cursor among the account's sessions (before this open). */
  accountDeliveredSeq: number;
  head: number; // the account's log head
  /** The account was deleted before the stream could open (nothing was written for it). */
  gone: boolean;
  /** This open created the session's row (there was none): a resume that finds none may follow a DELETE (session-ends.ts undoResumedOpen). */
  inserted: boolean;
}

export interface SessionClose extends SessionOpen {
  deliveredSeq: number;
}

const select = {
  resource: true,
  createdAt: true,
  streams: true,
  streamClosedAt: true,
  lastSeenAt: true,
  deliveredSeq: true,
  available: true,
  show: true,
  status: true,
  priority: true,
} as const;

/**
 * How long a session may go untouched before the streams it counts are taken for dead: every
 * instance touches the sessions of its open streams at each heartbeat (one batched UPDATE), so a
 * session untouched for 3 heartbeats has no stream open anywhere; at least the grace period, so a
 * few missed heartbeats (a busy database) never write a live stream off.
 */
export function deadSeconds(graceSeconds: number, heartbeatMs: number): number {
  return Math.max(graceSeconds, Math.ceil((3 * heartbeatMs) / 1000));
}

export class Sessions {
  constructor(
    private readonly db: Db,
    /** For the heartbeat's bulk write: raw pg skips Prisma's parameter handling of 5,000-element arrays. */
    private readonly pool: pg.Pool,
    /** deadSeconds() of the configured grace and heartbeat: a streams count older than this is not trusted. */
    private readonly deadAfter: number,
  ) {}

  /** A stream opened on the session: creates it if new (streamsOpened, for one). */
  async streamOpened(accountId: number, resource: string): Promise<void> {
    await this.streamsOpened([{ accountId, resource, n: 1 }]);
  }

  async streamClosed(accountId: number, resource: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE session SET streams = greatest(streams - 1, 0), last_seen_at = now(),
        stream_closed_at = CASE WHEN streams <= 1 THEN now() ELSE stream_closed_at END
      WHERE account_id = ${accountId} AND resource = ${resource}`;
  }

  /**
   * Streams opened on many sessions at once (one statement for a burst of opens): each session is
   * created if new and counts `n` more streams. Returns per item, in order, the session's delivered
   * cursor before (null when it is new), the highest of the account's sessions, and the account's
   * log head, all from one snapshot (whether the stream resyncs is replayStarts' to say, in events.ts),
   * and whether this statement created the session's row.
   */
  async streamsOpened(items: SessionOpen[]): Promise<OpenedSession[]> {
    if (items.length === 0) return [];
    // Batched statements meet an account deletion's cascade in other row orders: a deadlock's victim
    // runs again. So does a batch with an account whose deletion committed while it ran (the foreign
    // key finds it gone): run again, it skips that account, and the other accounts' streams open.
    const rows = await retryConflicts(() => this.db.$queryRaw<{ prev: bigint | null; acct: bigint | null; head: bigint | null; inserted: boolean }[]>`
      WITH v AS (SELECT * FROM unnest(${items.map((i) => i.accountId)}::int[], ${items.map((i) => i.resource)}::text[], ${items.map((i) => i.n)}::int[])
                 WITH ORDINALITY AS v(account_id, resource, n, ord)),
      up AS (INSERT INTO session (account_id, resource, streams) SELECT account_id, resource, n FROM v
             WHERE EXISTS (SELECT 1 FROM account a WHERE a.id = v.account_id)
             ON CONFLICT (account_id, resource) DO UPDATE
             SET streams = session.streams + excluded.streams, stream_closed_at = NULL, last_seen_at = now()
             -- xmax is 0 in a row version this statement inserted, and this transaction's id in one it updated.
             RETURNING account_id, resource, xmax = 0 AS inserted)
      -- A session that never had a stream (its presence was set first) is as new as one without a row.
      SELECT (SELECT s.delivered_seq FROM session s WHERE s.account_id = v.account_id AND s.resource = v.resource
                AND NOT (s.streams = 0 AND s.stream_closed_at IS NULL AND s.delivered_seq = 0)) AS prev,
             (SELECT max(s.delivered_seq) FROM session s WHERE s.account_id = v.account_id) AS acct,
             (SELECT a.last_seq FROM account a WHERE a.id = v.account_id) AS head,
             coalesce(up.inserted, false) AS inserted
      FROM v LEFT JOIN up ON up.account_id = v.account_id AND up.resource = v.resource ORDER BY v.ord`, 3, (err) => isConflict(err) || isForeignKeyViolation(err));
    const num = (x: bigint | null) => (x === null ? null : Number(x));
    return rows.map((r) => ({ deliveredSeq: num(r.prev), accountDeliveredSeq: num(r.acct) ?? 0, head: num(r.head) ?? 0, gone: r.head === null, inserted: r.inserted }));
  }

  /** Streams closed on many sessions at once: `n` fewer each, and what they delivered. */
  async streamsClosed(items: SessionClose[]): Promise<void> {
    if (items.length === 0) return;
    await retryConflicts(() => this.db.$executeRaw`
      UPDATE session s SET streams = greatest(s.streams - v.n, 0), last_seen_at = now(),
        stream_closed_at = CASE WHEN s.streams <= v.n THEN now() ELSE s.stream_closed_at END,
        delivered_seq = greatest(s.delivered_seq, v.d)
      FROM unnest(${items.map((i) => i.accountId)}::int[], ${items.map((i) => i.resource)}::text[], ${items.map((i) => i.n)}::int[], ${items.map((i) => BigInt(i.deliveredSeq))}::bigint[])
        AS v(account_id, resource, n, d)
      WHERE s.account_id = v.account_id AND s.resource = v.resource`);
  }

  /** One heartbeat for many sessions with open streams: still there, and what they delivered. */
  async touchMany(items: { accountId: number; resource: string; deliveredSeq: number }[]): Promise<void> {
    if (items.length === 0) return;
    await retryConflicts(() =>
      this.pool.query({
        // Prepared once per connection: it runs every heartbeat interval for every open stream.
        name: "sessions-touch-many",
        text: `UPDATE session s SET last_seen_at = now(), delivered_seq = greatest(s.delivered_seq, v.d)
               FROM unnest($1::int[], $2::text[], $3::bigint[]) AS v(account_id, resource, d)
               WHERE s.account_id = v.account_id AND s.resource = v.resource`,
        values: [items.map((i) => i.accountId), items.map((i) => i.resource), items.map((i) => i.deliveredSeq)],
      }),
    );
  }

  /**
   * A client polling the JSON events view is still there (API.md Presence: a session it keeps alive
   * does not expire, see expire()). Touches an existing session only: polling never creates one.
   */
  async keepAlive(accountId: number, resource: string): Promise<void> {
    await this.pool.query({
      name: "sessions-keep-alive",
      text: "UPDATE session SET last_seen_at = now() WHERE account_id = $1 AND resource = $2",
      values: [accountId, resource],
    });
  }

  async touch(accountId: number, resource: string, deliveredSeq: number): Promise<void> {
    await this.db.$executeRaw`
      UPDATE session SET last_seen_at = now(), delivered_seq = greatest(delivered_seq, ${deliveredSeq})
      WHERE account_id = ${accountId} AND resource = ${resource}`;
  }

  /** Where a brand-new session starts: after what any session of the account already got. */
  async accountDeliveredSeq(accountId: number): Promise<number> {
    const r = await this.db.session.aggregate({ where: { accountId }, _max: { deliveredSeq: true } });
    return Number(r._max.deliveredSeq ?? 0);
  }

  /**
   * Whether a message to this full JID goes to this session (RFC 6121 §8.5.3.1): it is available,
   * or connected (a stream is open). A session that went unavailable with no stream (expired,
   * or ended its presence and left) no longer has the resource: §8.5.3.2.1 applies.
   */
  async reachable(accountId: number, resource: string, tx: AnyTx = autocommit(this.pool)): Promise<boolean> {
    // A count nobody has touched for deadAfter is of streams that died with their instance (expire()
    // sets it to 0 at its next sweep): no stream is open. In the caller's transaction (`tx`), which
    // may hold locks that the requests holding the pool's other connections wait on.
    const live = "available OR (streams > 0 AND last_seen_at >= now() - make_interval(secs => $3::float8))";
    return (await sql(tx, `SELECT 1 FROM session WHERE account_id = $1 AND resource = $2 AND (${live})`, [accountId, resource, this.deadAfter])).length > 0;
  }

  async list(accountId: number): Promise<SessionRow[]> {
    const rows = await this.db.session.findMany({ where: { accountId }, orderBy: { createdAt: "asc" }, select });
    return rows.map((r) => ({ ...r, deliveredSeq: Number(r.deliveredSeq) }));
  }

  /**
   * Sets one session's own presence, in the caller's transaction. Available presence creates the
   * session if new; unavailable presence changes only a session that exists: one that never did has
   * nothing to make unavailable, and a row made for it would list a session nobody opened.
   */
  async setPresence(tx: Tx, accountId: number, resource: string, p: PresenceFields): Promise<void> {
    // Seen by the database's clock, as the sweep that expires sessions reads it (expire).
    const status = jsonParam(p.status);
    if (!p.available) {
      await tx.$executeRaw`
        UPDATE session SET available = false, show = ${p.show}, status = ${status}::jsonb, priority = ${p.priority}, last_seen_at = now()
        WHERE account_id = ${accountId} AND resource = ${resource}`;
      return;
    }
    await tx.$executeRaw`
      INSERT INTO session (account_id, resource, available, show, status, priority)
      VALUES (${accountId}, ${resource}, true, ${p.show}, ${status}::jsonb, ${p.priority})
      ON CONFLICT (account_id, resource) DO UPDATE
      SET available = true, show = excluded.show, status = excluded.status, priority = excluded.priority, last_seen_at = now()`;
  }

  /**
   * Ends a session; returns whether it was available (null when there was none). Every instance
   * hears of it on commit (onSessionEnded), and ends the session's open streams; their clients'
   * reconnects are refused for a while (session-ends.ts).
   */
  async end(tx: Tx, accountId: number, resource: string): Promise<{ available: boolean } | null> {
    const rows = await tx.$queryRaw<{ available: boolean }[]>`
      DELETE FROM session WHERE account_id = ${accountId} AND resource = ${resource} RETURNING available`;
    if (!rows[0]) return null;
    await recordSessionEnd(tx, accountId, resource);
    await notify(tx, CHANNELS.sessions, JSON.stringify([accountId, resource]));
    return rows[0];
  }

  /**
   * Sessions without a stream for longer than `graceSeconds` become unavailable. So do sessions untouched for deadAfter
   * (the constructor's), available or not, and their streams count goes to 0 (closed when last seen): those streams
   * were counted on an instance that died, and nothing will close them (a live stream's session is touched every
   * heartbeat, on whichever instance holds it). The candidates' accounts (at most `accounts`, in id order) are locked
   * first, then their sessions claimed with the conditions checked again: the broadcast reads subscribers and sessions
   * as the presence and roster use cases (under lockAccount's lock) left them, so a subscriber approved meanwhile hears
   * of the end, or was never told available. FOR NO KEY UPDATE orders the sweep with lockAccount (FOR UPDATE) but not
   * with a foreign key's key-share lock: a message sent or a session new to the database neither waits for the sweep
   * nor deadlocks with it over the account's row (reopens of the sessions it claims still may, over theirs: PostgreSQL
   * breaks that, both retry). Each session is claimed once, by any instance; an account deleted meanwhile is skipped. A
   * sweep that finds nothing costs the one statement. Returns the sessions claimed, with whether each was available (to
   * broadcast), and how many accounts were locked (the claim may take fewer): under `accounts`, no other was due.
   */
  async expire(tx: Tx, graceSeconds: number, accounts = 100): Promise<{ locked: number; claimed: { account_id: number; resource: string; localpart: string; available: boolean }[] }> {
    const due = Prisma.sql`(s.available AND s.streams = 0 AND s.last_seen_at < now() - make_interval(secs => ${graceSeconds}))
           OR ((s.available OR s.streams > 0) AND s.last_seen_at < now() - make_interval(secs => ${this.deadAfter}))`;
    const locked = await tx.$queryRaw<{ id: number }[]>`
      SELECT a.id FROM account a WHERE a.id IN (SELECT s.account_id FROM session s WHERE ${due}) ORDER BY a.id LIMIT ${accounts} FOR NO KEY UPDATE OF a`;
    if (locked.length === 0) return { locked: 0, claimed: [] };
    return { locked: locked.length, claimed: await tx.$queryRaw<{ account_id: number; resource: string; localpart: string; available: boolean }[]>`
      WITH c AS (
        SELECT s.account_id, s.resource, s.available, s.last_seen_at < now() - make_interval(secs => ${this.deadAfter}) AS dead
        FROM session s WHERE s.account_id = ANY(${locked.map((r) => r.id)}::int[]) AND (${due})
        FOR UPDATE)
      UPDATE session s SET available = false, show = NULL, status = NULL, priority = 0,
        streams = CASE WHEN c.dead THEN 0 ELSE s.streams END,
        stream_closed_at = CASE WHEN c.dead AND s.streams > 0 THEN s.last_seen_at ELSE s.stream_closed_at END
      FROM c JOIN account a ON a.id = c.account_id
      WHERE s.account_id = c.account_id AND s.resource = c.resource
      RETURNING s.account_id, s.resource, a.localpart, c.available` };
  }

  /**
   * Forgets sessions that are gone for good: unavailable, no stream open, and not seen since
   * `olderThan` (the event retention: a stream resuming such a session would get a resync anyway).
   * Every stream opened without a resource makes a session; without this they piled up forever.
   * A streams count untouched for deadAfter is of streams that died with their instance: none.
   */
  async purgeStale(olderThan: Date): Promise<number> {
    return this.db.$executeRaw`
      DELETE FROM session WHERE NOT available AND last_seen_at < ${olderThan}
        AND (streams = 0 OR last_seen_at < now() - make_interval(secs => ${this.deadAfter}))`;
  }
}

/**
 * Calls `fn` on every instance when a session was ended (Sessions.end), or all of an account's with the account
 * (resource null: endAllSessions), after its commit; `missed` after the listener reconnected (some went unheard).
 */
export function onSessionEnded(notifications: Notifications, fn: (accountId: number, resource: string | null) => void, missed: () => void): void {
  notifications.on(CHANNELS.sessions, (payload) => {
    // null: the listener reconnected, and endings meanwhile went unheard (session-ends.ts keeps them).
    if (!payload) return missed();
    const [accountId, resource] = JSON.parse(payload) as [number, string | null];
    fn(accountId, resource);
  });
}

/** In an account's deletion: every instance ends the account's open streams once it commits. */
export async function endAllSessions(tx: Tx, accountId: number): Promise<void> {
  await notify(tx, CHANNELS.sessions, JSON.stringify([accountId, null]));
}
