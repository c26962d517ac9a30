// Cross-instance signals over PostgreSQL LISTEN/NOTIFY. One dedicated connection listens on every
// channel; it reconnects when it drops and then tells every listener that it may have missed
// something (payload null), so each can re-read what it follows from Postgres.
// Postgres keeps every NOTIFY in one queue (8 GB, shared by the whole cluster) until every
// listening backend has read it, and once it is full every transaction that notifies fails at
// commit: one hung instance (SIGSTOP, a stuck event loop) that keeps its listening connection but
// stops reading it would take every instance down. So each listener proves it is alive by a
// statement on its connection at least four times within the timeout (livenessBeatMs in
// src/domain/duration.ts: every 2 s at the default 10 s), which Postgres stamps as
// pg_stat_activity.state_change, and that same statement ends the other instances' listening
// backends (told by their application_name) whose stamp is older than the timeout. Resumed, the
// hung instance finds its connection gone: it reconnects and tells its listeners, as after any drop.
import pg from "pg";
import { cadence } from "../cadence.js";
import { livenessBeatMs } from "../domain/duration.js";
import { BACKEND_AGE, type BackendAge } from "./backend-age.js";
import { discardClient, exec, type AnyTx } from "./client.js";

export const CHANNELS = {
  /** An account's event log grew; payload: the account id. */
  events: "balcony_events",
  /** The stanza outbox or the message queue has rows for the link holder. */
  outbox: "balcony_outbox",
  /** The link holder released the link; standbys try to take it now. */
  link: "balcony_link",
  /** A webhook endpoint was created, changed, replayed or deleted; payload: its id. */
  webhooks: "balcony_webhooks",
  /** A cached row changed; payload: what to forget, e.g. "account:romeo". */
  cache: "balcony_cache",
  /** A session was ended (DELETE /v1/sessions/{resource}); payload: JSON [account id, resource]. */
  sessions: "balcony_sessions",
  /** XMPP_LINK_MODE=all: an instance got the answer to another's barrier ping; payload: the ping's id (src/xmpp/link.ts share()). */
  barrier: "balcony_barrier",
} as const;
export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/** The application_name of every instance's listening connection: what the sweep ends, and nothing else. */
export const LISTENER_APP = "balcony-listen";
/**
 * The same, on an instance whose own component link is up (XMPP_LINK_MODE=all, where every
 * instance holds a link): /readyz of an instance whose link is down reports `standby` while any
 * other instance advertises this (API.md "Several instances"). It goes with the connection: an
 * instance that dies loses it at once, one that hangs when the sweep ends its listener.
 */
export const LISTENER_LINK_APP = "balcony-listen+link";
/** How often a listener proves it is alive when it sweeps no others (no staleAfterMs). */
const BEAT_MS = 1000;

/**
 * The beat and the sweep in one statement, on Postgres's clock: the other listeners of this
 * database (not this one: pg_backend_pid()) whose state last changed more than $2 ms ago. Any other
 * backend (a long transaction, the lease) has another application_name and is left alone, as is a
 * listener whose activity Postgres hides (another role's session: no stamp). pg_terminate_backend
 * is in the select list, so it runs only for the rows the WHERE kept, and does not wait for the
 * backend to exit: nothing here depends on it, and the beat is this listener's too.
 */
const SWEEP = `SELECT s.pid, s.client, s.age_ms, pg_terminate_backend(s.pid) AS ended
  FROM (SELECT ${BACKEND_AGE}
        FROM pg_stat_activity a WHERE a.application_name = ANY($1::text[]) AND a.datname = current_database() AND a.pid <> pg_backend_pid()) s
  WHERE s.age_ms > $2`;

/**
 * Liveness locks: a session advisory lock on the listening connection, keyed by a text's hash,
 * held as long as that connection lives. Postgres drops it the moment the instance dies (its
 * connections close) or its listener is ended as hung (SWEEP), so another instance can tell a
 * dead owner's lease from a live one without waiting for it to run out (db/webhook-lanes.ts).
 */
const LIVENESS_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";
const LIVENESS_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
/** SQL: the keys (hashtextextended(key, 0)) of every liveness lock held in this database. A bigint lock shows its halves as classid and objid, objsubid 1. */
export const LIVE_KEYS = `SELECT (k.classid::bigint << 32) | k.objid::bigint FROM pg_locks k
  WHERE k.locktype = 'advisory' AND k.objsubid = 1 AND k.granted AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/** NOTIFY in the caller's transaction: delivered to every instance if and when it commits. */
export async function notify(tx: AnyTx, channel: Channel, payload = ""): Promise<void> {
  await exec(tx, "SELECT pg_notify($1, $2)", [channel, payload]);
}

export class Notifications {
  private readonly handlers = new Map<string, Set<(payload: string | null) => void>>();
  private client: pg.Client | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;
  private stopBeat: (() => void) | null = null;
  private beating = false;
  /** This instance's own component link is up (advertiseLink). */
  private linkUp = false;
  /** Keys whose liveness lock this listener holds, taken again on every new connection. */
  private readonly liveness = new Set<string>();

  /**
   * `staleAfterMs`: how long another instance's listener may go without proving it is alive
   * before this one ends its backend (null: never; this one still proves it is alive).
   * `log`'s `fields` come with the warning that names an ended listener.
   */
  constructor(
    private readonly url: string,
    private readonly log: (msg: string, err?: unknown, fields?: Record<string, unknown>) => void,
    private readonly staleAfterMs: number | null = null,
  ) {}

  async start(): Promise<void> {
    const appName = this.appName;
    const client = new pg.Client({ connectionString: this.url, application_name: appName });
    client.on("notification", (n) => this.handlers.get(n.channel)?.forEach((fn) => fn(n.payload ?? "")));
    // Only the connection in use reconnects: one that failed to start is ended here, and its
    // late error or end must not take the next one down.
    const lost = (err?: unknown) => {
      if (this.client === client) this.reconnect(err);
    };
    client.on("error", lost);
    client.on("end", () => lost());
    try {
      await client.connect();
      for (const channel of Object.values(CHANNELS)) await client.query(`LISTEN ${channel}`);
      for (const key of this.liveness) await client.query(LIVENESS_LOCK, [key]);
    } catch (err) {
      void discardClient(client);
      throw err;
    }
    // stop() came while a reconnect was making this connection: nobody would end it.
    if (this.stopped) return void (await discardClient(client));
    this.client = client;
    // The link went up or down while this connection was being made (advertiseLink had no client).
    if (this.appName !== appName) this.advertiseLink(this.linkUp);
    if (!this.stopBeat && !this.stopped) this.stopBeat = cadence.every(this.staleAfterMs === null ? BEAT_MS : livenessBeatMs(this.staleAfterMs), () => this.beat());
  }

  /**
   * Proves this listener is alive and ends the hung ones (SWEEP). One at a time: while Postgres
   * does not answer, beats do not pile up behind each other. Notifications keep arriving meanwhile.
   */
  private beat(): void {
    const client = this.client;
    if (!client || this.beating) return;
    this.beating = true;
    client
      // Named (prepared): planned once per connection, not every second.
      .query<BackendAge & { ended: boolean }>({ name: "listener-beat", text: SWEEP, values: [[LISTENER_APP, LISTENER_LINK_APP], this.staleAfterMs] })
      .then(({ rows }) => {
        for (const r of rows.filter((r) => r.ended)) {
          this.log("ended the notification listener of an instance that has not proven it is alive (hung?): Postgres keeps every NOTIFY until it is read", undefined, {
            backendPid: r.pid,
            client: r.client,
            proofAgeMs: Math.round(r.age_ms),
            timeoutMs: this.staleAfterMs,
          });
        }
      })
      .catch(() => undefined)
      .finally(() => (this.beating = false));
  }

  private reconnect(err?: unknown): void {
    if (this.stopped || this.retry) return;
    this.log("notification listener lost its connection; reconnecting", err);
    if (this.client) void discardClient(this.client);
    this.client = null;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start().then(
        () => this.stopped || this.handlers.forEach((set) => set.forEach((fn) => fn(null))),
        (e: unknown) => this.reconnect(e),
      );
    }, 1000);
  }

  /** Calls `fn` on every notification of `channel` (and with null after a reconnect); returns the unsubscribe. */
  on(channel: Channel, fn: (payload: string | null) => void): () => void {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  private get appName(): string {
    return this.linkUp ? LISTENER_LINK_APP : LISTENER_APP;
  }

  /** Tells the other instances whether this one's component link is up (LISTENER_LINK_APP); a reconnect keeps it. */
  advertiseLink(up: boolean): void {
    this.linkUp = up;
    // A constant, not input: SET takes no parameters.
    this.client?.query(`SET application_name = '${this.appName}'`).catch(() => undefined);
  }

  /** Whether another instance advertises its component link up (advertiseLink). */
  async otherLinkUp(): Promise<boolean> {
    if (!this.client) return false;
    const { rows } = await this.client.query<{ up: boolean }>({
      name: "listener-other-link",
      text: "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()) AS up",
      values: [LISTENER_LINK_APP],
    });
    return rows[0]?.up ?? false;
  }

  /**
   * Holds `key`'s liveness lock (LIVE_KEYS) while this listener is connected, now and after every
   * reconnect, until dropLiveness. While the connection is down the lock is not held: to others
   * the key's owner looks dead then, as it does when the instance dies.
   */
  async holdLiveness(key: string): Promise<void> {
    this.liveness.add(key);
    await this.client?.query(LIVENESS_LOCK, [key]).catch(() => undefined);
  }

  async dropLiveness(key: string): Promise<void> {
    if (!this.liveness.delete(key)) return;
    await this.client?.query(LIVENESS_UNLOCK, [key]).catch(() => undefined);
  }

  /** A NOTIFY outside any transaction. */
  async send(channel: Channel, payload = ""): Promise<void> {
    await this.client?.query("SELECT pg_notify($1, $2)", [channel, payload]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.stopBeat?.();
    this.stopBeat = null;
    const c = this.client;
    this.client = null;
    if (c) await discardClient(c);
  }
}
