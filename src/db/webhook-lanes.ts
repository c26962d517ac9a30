// What the webhook dispatcher reads and writes. An instance leases an endpoint (one instance at a
// time delivers to it; the lease is free once the instance dies, or when it runs out), reads each
// lane's next events straight from the event log, and settles what happened in one statement
// (src/db/webhook-settle.ts): the lanes move on, the deliveries are recorded (each attempt
// appended to its delivery's bounded history), the endpoint's failure streak is kept (and it is
// disabled when the streak is too long), and the lease is renewed; if the lease was lost
// meanwhile, nothing is written.
import type pg from "pg";
import type { OlderSecret } from "../domain/webhooks.js";
import { CHANNELS, LIVE_KEYS } from "./notify.js";
import { settleQuery, type DeliveryRecord, type LaneMove, type StreakRule } from "./webhook-settle.js";

// Declared with the statement that writes them; imported from here by the rest of the code.
export type { DeliveryRecord, LaneMove } from "./webhook-settle.js";

export interface LeasedWebhook {
  id: string;
  /** Null: every account's events. */
  accountId: number | null;
  url: string;
  events: string[] | null;
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: Date | null;
  olderSecrets: OlderSecret[];
}

export interface Lane {
  accountId: number;
  localpart: string;
  /** Every event up to here is settled. */
  seq: number;
  /** Failed attempts of the next event. */
  attempts: number;
  /** The lane's replays so far, as read: settled with every move (see LaneMove). */
  epoch: number;
}

export interface LaneEvent {
  seq: number;
  type: string;
  /** The event's data as JSON text (delivered as it is). */
  dataJson: string;
  createdAt: Date;
  /** XEP-0184: the sender asked for a receipt that no stream has answered yet. */
  receiptPending: boolean;
}

/** The enabled endpoints: every-account ones (`all`), and per account. */
export interface Watched { all: number; accounts: Map<number, number> } // prettier-ignore

export interface Settled {
  /** False when another instance holds the endpoint now (or it is gone): stop. */
  leased: boolean;
  disabled: boolean;
  /** Accounts whose lane moved as asked (not a lane a replay moved back or capped meanwhile). */
  moved: number[];
}

const DUE = `l.seq < a.last_seq AND l.next_attempt_at <= now()`;

/**
 * An owner id that names a liveness lock (WebhookDispatcher's): an instance of a version before
 * these locks names none, and its leases only run out, so a rolling upgrade does not take them.
 */
export const LIVENESS_OWNER_PREFIX = "live:";
/**
 * A lease whose owner is gone: the dispatcher holds a liveness lock named by its owner id on its
 * instance's listening connection (db/notify.ts), which Postgres drops when the instance dies or
 * its listener is ended as hung. Such a lease is free at once, not when it runs out.
 */
const DEAD_OWNER = (w: string) =>
  `(starts_with(${w}.lease_owner, '${LIVENESS_OWNER_PREFIX}') AND hashtextextended(${w}.lease_owner, 0) NOT IN (${LIVE_KEYS}))`;
/** The endpoint has an event due on some lane. */
const HAS_DUE = (w: string) => `EXISTS (SELECT 1 FROM webhook_lane l JOIN account a ON a.id = l.account_id WHERE l.webhook_id = ${w}.id AND ${DUE})`;

const CLAIM = `
  UPDATE webhook w SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
  FROM (
    SELECT w2.id FROM webhook w2
    WHERE w2.disabled_at IS NULL AND (w2.lease_until IS NULL OR w2.lease_until < now() OR ${DEAD_OWNER("w2")})
      AND ${HAS_DUE("w2")}
    LIMIT $3 FOR UPDATE OF w2 SKIP LOCKED
  ) c
  WHERE w.id = c.id
  RETURNING w.id, w.account_id AS "accountId", w.url, w.events, w.secret, w.previous_secret AS "previousSecret", w.previous_secret_until AS "previousSecretUntil", w.older_secrets AS "olderSecrets"`;

export class WebhookLanes {
  constructor(private readonly pool: pg.Pool) {}

  /** Leases up to `limit` enabled endpoints that have something due and no live lease. */
  async claim(owner: string, leaseMs: number, limit: number): Promise<LeasedWebhook[]> {
    const { rows } = await this.pool.query<LeasedWebhook>({ name: "webhook-claim", text: CLAIM, values: [owner, leaseMs, limit] });
    return rows;
  }

  /**
   * Milliseconds until something not due now will be (a retry, or another instance's lease running
   * out or its owner dying: looked at again after `pollMs`); null if nothing.
   */
  async nextWake(owner: string, pollMs: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ ms: number | null }>({
      name: "webhook-next-wake",
      // NULL when nothing is pending (GREATEST would turn that into 0: a busy loop).
      text: `SELECT EXTRACT(EPOCH FROM (LEAST(
          (SELECT min(l.next_attempt_at) FROM webhook_lane l JOIN webhook w ON w.id = l.webhook_id JOIN account a ON a.id = l.account_id
            WHERE w.disabled_at IS NULL AND l.seq < a.last_seq AND l.next_attempt_at > now()),
          (SELECT min(CASE WHEN d.dead THEN now() ELSE LEAST(w.lease_until, now() + $2 * interval '1 millisecond') END)
            FROM webhook w CROSS JOIN LATERAL (SELECT ${DEAD_OWNER("w")} AS dead) d
            WHERE w.lease_owner <> $1 AND w.lease_until > now() AND w.disabled_at IS NULL
              -- A dead owner's endpoint with nothing due waits for its next event (which claims it), not in a loop.
              AND (NOT d.dead OR ${HAS_DUE("w")}))
        ) - now())) * 1000 AS ms`,
      values: [owner, pollMs],
    });
    const ms = rows[0]?.ms;
    return ms == null ? null : Math.max(0, Number(ms));
  }

  /** The endpoint's lanes with an event due, longest waiting first. */
  async due(webhookId: string, limit: number): Promise<Lane[]> {
    const { rows } = await this.pool.query<Lane>({
      name: "webhook-due-lanes",
      text: `SELECT l.account_id AS "accountId", a.localpart, l.seq, l.attempts, l.epoch FROM webhook_lane l JOIN account a ON a.id = l.account_id
        WHERE l.webhook_id = $1 AND ${DUE} ORDER BY l.next_attempt_at LIMIT $2`,
      values: [webhookId, limit],
    });
    return rows;
  }

  /**
   * A lane's next events of the subscribed types, and the log's head: one snapshot, so when fewer
   * than `limit` came back, every event up to `head` has been seen (events commit in seq order).
   * `gap`: the events right after `after` are gone (purged while the endpoint was disabled, or
   * before a replay's `since`: seqs have no holes otherwise), up to `upTo`; `at`, the next one's time.
   */
  async read(accountId: number, after: number, types: string[] | null, limit: number): Promise<{ events: LaneEvent[]; head: number; gap: { upTo: number; at: Date } | null }> {
    const { rows } = await this.pool.query<{ head: number; next: number | null; next_at: Date; seq: number | null; type: string; data: string; created_at: Date; receipt: boolean }>({
      name: "webhook-read-lane",
      text: `SELECT a.last_seq AS head, nx.seq AS next, COALESCE(nx.created_at, localtimestamp) AS next_at, e.seq, e.type, e.data::text AS data, e.created_at, e.receipt FROM account a
        LEFT JOIN LATERAL (SELECT seq, created_at FROM event WHERE account_id = a.id AND seq > $2 ORDER BY seq LIMIT 1) nx ON true LEFT JOIN LATERAL (
          SELECT seq, type, data, created_at, receipt_to IS NOT NULL AND NOT receipt_sent AS receipt FROM event WHERE account_id = a.id AND seq > $2 AND ($3::text[] IS NULL OR type = ANY($3::text[]))
          ORDER BY seq LIMIT $4
        ) e ON true WHERE a.id = $1`,
      values: [accountId, after, types, limit],
    });
    const { head = after, next = null, next_at } = rows[0] ?? {};
    const gap = head > after && (next === null || next > after + 1) ? { upTo: (next ?? head + 1) - 1, at: next_at! } : null;
    return { head, gap, events: rows.filter((r) => r.seq !== null).map((r) => ({ seq: r.seq!, type: r.type, dataJson: r.data, createdAt: r.created_at, receiptPending: r.receipt })) };
  }

  /**
   * Records attempts and moves lanes (see the file's comment); `success`: null when no attempt was
   * made. `disable`: the endpoint is disabled after failing for `afterMs` (a streak that a failure
   * continues until `holdMs` after it, STREAK), or at once with the reason `now` (a 410 Gone).
   */
  async settle(webhookId: string, owner: string, leaseMs: number, success: boolean | null, disable: StreakRule, moves: LaneMove[], records: DeliveryRecord[]): Promise<Settled> {
    const { rows } = await this.pool.query<{ disabled: boolean; moved: number[] | null }>(settleQuery(webhookId, owner, leaseMs, success, disable, moves, records));
    const r = rows[0];
    return r ? { leased: true, disabled: r.disabled, moved: r.moved ?? [] } : { leased: false, disabled: false, moved: [] };
  }

  /**
   * Gives the endpoint back if nothing is due (or `force`): "released". When something became due
   * meanwhile the lease is renewed instead ("kept": the caller goes on); "lost" when this owner's
   * lease ran out or another instance holds it (the caller must stop, without sending anything).
   */
  async release(webhookId: string, owner: string, force: boolean, leaseMs: number): Promise<"released" | "kept" | "lost"> {
    const { rows } = await this.pool.query<{ outcome: "released" | "kept" | null }>({
      name: "webhook-release",
      text: `UPDATE webhook w SET
          lease_owner = CASE WHEN r.free THEN NULL ELSE w.lease_owner END,
          lease_until = CASE WHEN r.free THEN NULL ELSE now() + $4 * interval '1 millisecond' END
        FROM (SELECT $3 OR NOT EXISTS (SELECT 1 FROM webhook_lane l JOIN account a ON a.id = l.account_id WHERE l.webhook_id = $1 AND ${DUE}) AS free) r
        WHERE w.id = $1 AND w.lease_owner = $2 AND w.lease_until > now()
        RETURNING CASE WHEN r.free THEN 'released' ELSE 'kept' END AS outcome`,
      values: [webhookId, owner, force, leaseMs],
    });
    return rows[0]?.outcome ?? "lost";
  }

  /** On shutdown: every lease this instance holds, so others take over at once. Wakes them. */
  async releaseAll(owner: string): Promise<void> {
    await this.pool.query("UPDATE webhook SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1", [owner]);
    await this.pool.query("SELECT pg_notify($1, '')", [CHANNELS.webhooks]);
  }

  /** How many enabled endpoints each account's events concern: every-account ones, and per account. */
  async watched(): Promise<Watched> {
    const { rows } = await this.pool.query<{ account_id: number | null; n: number }>(
      "SELECT account_id, count(*)::int AS n FROM webhook WHERE disabled_at IS NULL GROUP BY account_id",
    );
    return { all: rows.find((r) => r.account_id === null)?.n ?? 0, accounts: new Map(rows.filter((r) => r.account_id !== null).map((r) => [r.account_id!, r.n])) };
  }

  /** Unsettled events per endpoint (an upper bound where the endpoint filters types), for /metrics. */
  async depths(): Promise<{ webhookId: string; depth: number }[]> {
    const { rows } = await this.pool.query<{ webhook_id: string; depth: number }>(
      "SELECT l.webhook_id, sum(a.last_seq - l.seq)::float8 AS depth FROM webhook_lane l JOIN account a ON a.id = l.account_id GROUP BY l.webhook_id",
    );
    return rows.map((r) => ({ webhookId: r.webhook_id, depth: r.depth }));
  }
}
