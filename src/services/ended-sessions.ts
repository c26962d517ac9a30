// What this instance knows of sessions DELETE /v1/sessions/{resource} ended lately (src/db/session-ends.ts):
// which ones, so that only their streams' reconnects pay the statement that decides whether to
// refuse them, and since when, so that a stream whose open was under way when the end was heard
// is ended like the streams already open.
import { LRUCache } from "lru-cache";
import type { Database } from "../db/client.js";
import { endedLately, recentSessionEnds, sessionGone, undoResumedOpen } from "../db/session-ends.js";

/** Ended sessions remembered per instance: far more than DELETEs in a window. */
const REMEMBERED = 100_000;
const key = (accountId: number, resource: string) => `${accountId}/${resource}`;

export class EndedSessions {
  /** Ends heard so far: an open notes it when it starts (heardSince). */
  private heard = 0;
  /** Session → the `heard` count its end was heard at (0: read from the table, not heard). */
  private readonly ends: LRUCache<string, number>;

  constructor(
    private readonly db: Database,
    /** How long (s) a stream resuming an ended session is refused (endedWindowSeconds). */
    private readonly windowSeconds: number,
  ) {
    this.ends = new LRUCache({ max: REMEMBERED, ttl: windowSeconds * 1000 });
  }

  /** The end of a session was heard (its NOTIFY, from any instance). */
  heardOf(accountId: number, resource: string): void {
    this.ends.set(key(accountId, resource), ++this.heard);
  }

  /** Where the ends heard stand now: an open takes it when it starts. */
  mark(): number {
    return this.heard;
  }

  /** The session's end was heard after `mark` (an open under way since then). */
  heardSince(accountId: number, resource: string, mark: number): boolean {
    return (this.ends.get(key(accountId, resource)) ?? 0) > mark;
  }

  /**
   * Whether a stream resuming the session is to be refused (endedLately). Every reconnect asks, and
   * a mass reconnect after a restart makes thousands a second: only those of a session this
   * instance knows ended lately pay the statement, which also tells whether a stream opened it again since.
   */
  async resumesEnded(accountId: number, resource: string, issuedAt: number | null): Promise<boolean> {
    if (!this.ends.has(key(accountId, resource))) return false;
    return endedLately(this.db.pool, accountId, resource, this.windowSeconds, issuedAt);
  }

  /** A resume whose open created the session's row: undone and refused if it followed an end (undoResumedOpen). */
  undoResume(accountId: number, resource: string, issuedAt: number | null): Promise<boolean> {
    return undoResumedOpen(this.db.pool, accountId, resource, this.windowSeconds, issuedAt);
  }

  /** Whether the session has no row now (sessionGone). */
  gone(accountId: number, resource: string): Promise<boolean> {
    return sessionGone(this.db.pool, accountId, resource);
  }

  /**
   * Reads the ends inside the window from the table: at start and whenever the listener
   * (re)connected, as the caches forget everything then, since an end committed while it was down
   * (or before this instance started) was never heard here. One statement per (re)connect. Returns
   * the sessions that have no row now (nothing opened them again): streams of theirs still open
   * here missed their end.
   */
  async load(): Promise<{ accountId: number; resource: string }[]> {
    const window = this.windowSeconds * 1000;
    const marks = await recentSessionEnds(this.db.pool, this.windowSeconds, REMEMBERED);
    // Oldest first, so that the newest stay when there are more than the cache holds.
    for (const m of marks.reverse()) {
      const k = key(m.accountId, m.resource);
      if (m.ageMs < window) this.ends.set(k, this.ends.get(k) ?? 0, { ttl: Math.max(1, Math.ceil(window - m.ageMs)) });
    }
    return marks.filter((m) => m.gone);
  }
}
