// The statement that settles a page of a lane (WebhookLanes.settle, src/db/webhook-lanes.ts): the
// lanes move on, the deliveries are recorded (each attempt appended to its delivery's bounded
// history), the endpoint's failure streak is kept (and it is disabled when the streak is too
// long), and the lease is renewed, all at once; if the lease was lost meanwhile, nothing is written.
import { ATTEMPT_HISTORY, type DeliveryStatus } from "../domain/webhooks.js";

/**
 * A lane's move: from `from` to `to`, read in `epoch`. A replay meanwhile moves the lane back
 * before `from` (the move is void), or caps it at the replay's `since` (the move goes no further).
 */
export interface LaneMove {
  accountId: number;
  from: number;
  to: number;
  epoch: number;
  attempts: number;
  /** When to try the next event, from now. */
  delayMs: number;
}

export interface DeliveryRecord {
  accountId: number;
  seq: number;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  responseExcerpt: string | null;
  error: string | null;
  /** When the attempt's outcome was known. */
  at: Date;
  /** How long the attempt took (whole milliseconds). */
  durationMs: number;
  nextAttemptAt: Date | null;
}

/**
 * When a failure disables the endpoint: once its streak (STREAK: each failure continues it for
 * `holdMs`) is older than `afterMs`; or at once, with the reason `now` (a 410 Gone).
 */
export interface StreakRule {
  afterMs: number;
  holdMs: number;
  now: string | null;
}

const CAPPED = `(l.epoch <> m.epoch AND m.to_seq > COALESCE(l.replay_cap, m.to_seq))`;
/** A failure read before a replay or a fresh start (another epoch: Webhooks.replay, update) schedules nothing: the lane stays due now. */
const VOID = `(l.epoch <> m.epoch AND m.to_seq = m.from_seq)`;

/**
 * Whether a failure now continues the endpoint's failure streak: one is under way, and the
 * failures so far hold it until now at least (failing_until: each holds it for `holdMs` after it,
 * domain failureStreakHoldMs). Otherwise the endpoint was quiet for longer, nothing tried and
 * nobody seeing it fail, and this failure starts a new streak. A streak begun by a version that
 * kept no failing_until goes on as that version counted it.
 */
const STREAK = `(failing_since IS NOT NULL AND (failing_until IS NULL OR failing_until >= now()))`;
const TOO_LONG = `($4 = false AND ${STREAK} AND failing_since < now() - $5 * interval '1 millisecond')`;

const SETTLE = `
  WITH w AS (
    UPDATE webhook SET
      lease_until = now() + $3 * interval '1 millisecond',
      failing_since = CASE WHEN $4::boolean IS NULL THEN failing_since WHEN $4 THEN NULL WHEN ${STREAK} THEN failing_since ELSE now() END,
      failing_until = CASE WHEN $4::boolean IS NULL THEN failing_until WHEN $4 THEN NULL
        ELSE GREATEST(CASE WHEN ${STREAK} THEN failing_until END, now() + $24 * interval '1 millisecond') END,
      disabled_at = CASE WHEN $23::text IS NOT NULL OR ${TOO_LONG} THEN now() ELSE disabled_at END,
      disabled_reason = CASE WHEN $23::text IS NOT NULL THEN $23::text
        WHEN ${TOO_LONG} THEN 'every attempt failed since ' || to_char(failing_since, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ELSE disabled_reason END
    WHERE id = $1 AND lease_owner = $2
    RETURNING id, disabled_at IS NOT NULL AS disabled
  ), moved AS (
    -- A move read before a replay (another epoch) that would take the lane past the replay's since
    -- (replay_cap) stops there, and the lane sends the rest again at once. A move read in the
    -- lane's epoch clears the cap.
    UPDATE webhook_lane l SET
      seq = CASE WHEN ${CAPPED} THEN l.replay_cap ELSE m.to_seq END,
      attempts = CASE WHEN ${CAPPED} OR ${VOID} THEN 0 ELSE m.attempts END,
      next_attempt_at = now() + CASE WHEN ${CAPPED} OR ${VOID} THEN 0 ELSE m.delay END * interval '1 millisecond',
      replay_cap = CASE WHEN l.epoch = m.epoch THEN NULL ELSE l.replay_cap END
    FROM w, unnest($6::int[], $7::bigint[], $8::bigint[], $9::int[], $10::int[], $21::int[]) AS m(account_id, from_seq, to_seq, attempts, delay, epoch)
    WHERE l.webhook_id = w.id AND l.account_id = m.account_id AND l.seq = m.from_seq
    RETURNING l.account_id, l.seq = m.to_seq AS planned
  ), recorded AS (
    -- The attempt also joins the delivery's history (its last ATTEMPT_HISTORY attempts), in this
    -- same row write: no statement and no row more per attempt.
    INSERT INTO webhook_delivery (webhook_id, account_id, seq, type, status, attempts, response_status, response_excerpt, error, last_attempt_at, next_attempt_at, history)
    SELECT $1, d.account_id, d.seq, d.type, d.status, d.attempts, d.response_status, d.response_excerpt, d.error, d.at, d.next_at,
      jsonb_build_array(jsonb_build_object('at', to_char(d.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'responseStatus', d.response_status, 'error', d.error, 'durationMs', d.duration_ms))
    FROM unnest($11::int[], $12::bigint[], $13::text[], $14::text[], $15::int[], $16::int[], $17::text[], $18::text[], $19::timestamptz[], $20::timestamptz[], $22::int[])
      AS d(account_id, seq, type, status, attempts, response_status, response_excerpt, error, at, next_at, duration_ms)
    WHERE d.account_id IN (SELECT account_id FROM moved)
    -- A resync names the last event gone (its seq): it takes that event's record over, as a
    -- delivery of its own (its type, its time, its attempts alone).
    ON CONFLICT (webhook_id, account_id, seq) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
      response_status = EXCLUDED.response_status, response_excerpt = EXCLUDED.response_excerpt, error = EXCLUDED.error,
      last_attempt_at = EXCLUDED.last_attempt_at, next_attempt_at = EXCLUDED.next_attempt_at, type = EXCLUDED.type,
      created_at = CASE WHEN webhook_delivery.type = EXCLUDED.type THEN webhook_delivery.created_at ELSE now() END,
      history = CASE WHEN webhook_delivery.type = EXCLUDED.type
        THEN jsonb_path_query_array(webhook_delivery.history || EXCLUDED.history, '$[last - ${ATTEMPT_HISTORY - 1} to last]')
        ELSE EXCLUDED.history END
    RETURNING 1
  )
  SELECT w.disabled, (SELECT array_agg(account_id) FROM moved WHERE planned) AS moved, (SELECT count(*) FROM recorded) AS n FROM w`;

export function settleQuery(webhookId: string, owner: string, leaseMs: number, success: boolean | null, disable: StreakRule, moves: LaneMove[], records: DeliveryRecord[]) {
  return {
    name: "webhook-settle",
    text: SETTLE,
    values: [
      webhookId,
      owner,
      leaseMs,
      success,
      disable.afterMs,
      moves.map((m) => m.accountId),
      moves.map((m) => m.from),
      moves.map((m) => m.to),
      moves.map((m) => m.attempts),
      moves.map((m) => m.delayMs),
      records.map((r) => r.accountId),
      records.map((r) => r.seq),
      records.map((r) => r.type),
      records.map((r) => r.status),
      records.map((r) => r.attempts),
      records.map((r) => r.responseStatus),
      records.map((r) => r.responseExcerpt),
      records.map((r) => r.error),
      records.map((r) => r.at),
      records.map((r) => r.nextAttemptAt),
      moves.map((m) => m.epoch),
      records.map((r) => r.durationMs),
      disable.now,
      disable.holdMs,
    ],
  };
}
