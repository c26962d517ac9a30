// The component link lease (XMPP_LINK_MODE=single): a PostgreSQL advisory lock held on a
// connection of its own. Postgres releases it the moment that connection ends (the holder died,
// or its connection was cut), so a crashed holder needs no timeout to be replaced; and the claim
// of outbound rows checks the lock by the holder's backend pid (src/db/outbox.ts), so a holder
// that lost it cannot send another row. The holder also names its link state in its connection's
// application_name, which lets every other instance report it in /readyz.
// A holder that hangs (SIGSTOP, a stuck event loop) keeps its connection and so the lock: it proves
// it is alive by a statement on that connection at least four times within the lease timeout
// (beat(), run by LinkControl every livenessBeatMs of src/domain/duration.ts), which Postgres
// stamps as pg_stat_activity.state_change; a standby that finds that stamp older than the lease
// timeout ends the holder's backend (takeOverStale()) and with it the lock.
// XMPP_LINK_MODE=all: every instance holds the same lock shared (tryAcquire(true)), for as long as
// it runs. Shared and exclusive exclude each other, so the two modes never both send on one
// database (each would send every message once: the sending audit of stop 65). An instance of the
// other mode refuses to start (all) or stays a standby (single), saying why.
import { EventEmitter } from "node:events";
import pg from "pg";
import { BACKEND_AGE, type BackendAge } from "./backend-age.js";
import { discardClient } from "./client.js";

/** Two 32-bit keys (pg_try_advisory_lock(int, int)): "balcony", "component link". */
export const LEASE_KEY: [number, number] = [0x42a1c0, 0x11c4];
const APP_UP = "balcony-link-up";
const APP_DOWN = "balcony-link-down";
/** The shared lease of an instance in XMPP_LINK_MODE=all. */
const APP_ALL = "balcony-link-all";
/** What a drain transaction of the holder whose lease backend is `pid` names itself (src/db/outbox.ts). */
const DRAIN_APP = "balcony-drain-";
export const drainAppName = (pid: number): string => `${DRAIN_APP}${pid}`;

/** The lease lock in pg_locks, granted in this database; held exclusive by a single-mode holder, shared by all-mode instances. */
const LEASE_LOCK = `l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2 AND l.granted`;
const HOLDER_LOCK = `${LEASE_LOCK} AND l.mode = 'ExclusiveLock'`;

export type LinkState = "up" | "down" | "none";

export class LinkLease extends EventEmitter<{ lost: [] }> {
  private client: pg.Client | null = null;
  /** The backend pid of the connection holding the lock, while held. */
  pid: number | null = null;
  private appName = APP_DOWN;
  private beating = false;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
  ) {
    super();
  }

  /** The state of the link as its holder (this instance or another) reports it. */
  holderState(): Promise<LinkState> {
    return holderLinkState(this.pool);
  }

  get held(): boolean {
    return this.pid !== null;
  }

  /** The last tryAcquire() that found the lease taken found it held shared (instances in XMPP_LINK_MODE=all). */
  takenShared = false;

  /**
   * Takes the lease if nobody holds it: "held" (this instance holds it now), "taken" (Postgres
   * answered: another instance holds it) or "unreachable" (Postgres did not answer).
   */
  async tryAcquire(shared = false): Promise<"held" | "taken" | "unreachable"> {
    if (this.held) return "held";
    const app = shared ? APP_ALL : APP_DOWN;
    // Bounded as the pool's connections are (src/db/client.ts): a tick waits on it, and stop() on the tick.
    const client = new pg.Client({ connectionString: this.url, application_name: app, connectionTimeoutMillis: 5000 });
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    try {
      await client.connect();
      const r = await client.query<{ ok: boolean; pid: number; shared: boolean }>(
        `SELECT ${shared ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock"}($1, $2) AS ok, pg_backend_pid() AS pid,
                EXISTS (SELECT 1 FROM pg_locks l WHERE ${LEASE_LOCK} AND l.mode = 'ShareLock' AND l.pid <> pg_backend_pid()) AS shared`,
        LEASE_KEY,
      );
      if (!r.rows[0]?.ok) {
        this.takenShared = r.rows[0]?.shared ?? false;
        await discardClient(client);
        return "taken";
      }
      this.client = client;
      this.pid = r.rows[0].pid;
      this.appName = app;
      return "held";
    } catch {
      await discardClient(client);
      return "unreachable";
    }
  }

  private lost(client: pg.Client): void {
    if (client !== this.client) return;
    this.client = null;
    this.pid = null;
    void discardClient(client);
    this.emit("lost");
  }

  /** Publishes the holder's link state to the other instances. */
  async setLinkState(up: boolean): Promise<void> {
    this.appName = up ? APP_UP : APP_DOWN;
    await this.client?.query(`SET application_name = '${this.appName}'`).catch(() => undefined);
  }

  /**
   * Proves the holder is alive: a statement on the lease connection (its link state again), which
   * Postgres stamps in pg_stat_activity.state_change. One at a time: while Postgres does not
   * answer, beats do not pile up behind each other.
   */
  beat(): void {
    const client = this.client;
    if (!client || this.beating) return;
    this.beating = true;
    void client
      .query(`SET application_name = '${this.appName}'`)
      .catch(() => undefined)
      .finally(() => (this.beating = false));
  }

  /**
   * When the lease's holder has not proven it is alive (beat()) for `timeoutMs`, ends its lease
   * backend, and its drain transaction if it hung in one (so the rows it claimed are free again,
   * in order), waiting up to 2 s for them to exit. Returns the ended holder's backend pid and how
   * old its last beat was, or null (nobody holds the lease, or its holder is alive). One statement
   * finds the holder, checks its staleness and ends it, all on Postgres's clock: a holder that
   * beat meanwhile is left alone. A holder whose activity Postgres hides (another database role's
   * session: no stamp) is never taken over. The drain is looked for in this database only: a pid is
   * unique on the server, not in time, so a connection of that name in another database (another
   * deployment's drain, named after a holder pid of its own that PostgreSQL later gave to ours) is
   * not ours to end.
   */
  async takeOverStale(timeoutMs: number): Promise<{ pid: number; client: string; ageMs: number } | null> {
    const { rows } = await this.pool.query<BackendAge & { ended: number }>(
      `WITH holder AS (
         SELECT ${BACKEND_AGE}
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE ${HOLDER_LOCK})
       SELECT h.pid, h.client, h.age_ms,
              (SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid, 2000)) FROM pg_stat_activity a
                WHERE a.pid = h.pid OR (a.application_name = $4 || h.pid AND a.datname = current_database()))::int AS ended
       FROM holder h WHERE h.age_ms > $3`,
      [...LEASE_KEY, timeoutMs, DRAIN_APP],
    );
    const row = rows[0];
    return row && row.ended > 0 ? { pid: row.pid, client: row.client, ageMs: Math.round(row.age_ms) } : null;
  }

  /** Gives the lease up (the lock goes with the connection). */
  async release(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.pid = null;
    if (!client) return;
    await discardClient(client);
  }
}

/** The state of the link as its holder reports it: up, down (held but not connected), or none (nobody holds it). */
export async function holderLinkState(pool: pg.Pool): Promise<LinkState> {
  const r = await pool.query<{ app: string }>(`SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE ${HOLDER_LOCK}`, LEASE_KEY);
  const app = r.rows[0]?.app;
  return app === undefined ? "none" : app === APP_UP ? "up" : "down";
}
