// Webhook endpoints: create, read, change, delete, rotate, replay. Every change NOTIFYs
// CHANNELS.webhooks with the endpoint's id, so the dispatcher of every instance picks it up (a
// deleted or disabled endpoint gets no new attempt, a replayed one starts again).
import type pg from "pg";
import { pgTransaction } from "./client.js";
import { CHANNELS } from "./notify.js";
import { OLDER_SECRETS, type DeliveryAttempt } from "../domain/webhooks.js";
import type { DeliveryRecord } from "./webhook-lanes.js";

/** Taken shared by account creation and exclusively by creating an every-account webhook (see createWebhook). */
export const WEBHOOK_LANES_LOCK = 0x42a1c1;

export interface WebhookRow {
  id: string;
  accountId: number | null;
  /** The account's localpart; null for an every-account webhook. */
  localpart: string | null;
  url: string;
  events: string[] | null;
  description: string | null;
  secret: string;
  previousSecret: string | null;
  previousSecretUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
  failingSince: Date | null;
  disabledAt: Date | null;
  disabledReason: string | null;
}

export interface NewWebhook {
  id: string;
  accountId: number | null;
  url: string;
  events: string[] | null;
  description: string | null;
  secret: string;
}

/** A delivery as listed: the record the dispatcher settled, with its row id, account, times and attempts. */
export interface DeliveryRow extends Omit<DeliveryRecord, "at" | "durationMs"> {
  id: number;
  localpart: string;
  createdAt: Date;
  lastAttemptAt: Date;
  /** Its last attempts, oldest first, as WebhookLanes.settle appended them (already in the view's shape). */
  history: DeliveryAttempt[];
}

export type WebhookChange = Partial<Pick<NewWebhook, "url" | "events" | "description">> & { enabled?: boolean };

const COLUMNS = `w.id, w.account_id AS "accountId", a.localpart, w.url, w.events, w.description, w.secret,
  w.previous_secret AS "previousSecret", w.previous_secret_until AS "previousSecretUntil", w.created_at AS "createdAt",
  w.updated_at AS "updatedAt", w.failing_since AS "failingSince", w.disabled_at AS "disabledAt", w.disabled_reason AS "disabledReason"`;
const FROM = `webhook w LEFT JOIN account a ON a.id = w.account_id`;

export class Webhooks {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Creates an endpoint with its lanes, starting at each account's current head: a new webhook
   * delivers what happens from now on (replay reaches back). An every-account webhook takes
   * WEBHOOK_LANES_LOCK exclusively and then (a new statement, a new snapshot) sees every account
   * committed before it; an account created later gets its lane with its own creation
   * (Accounts.create, which holds the lock shared), so no account is ever left without one.
   * Returns null when the account (or, for every-account endpoints, all of them together) already
   * has `max` endpoints.
   */
  create(w: NewWebhook, max: number): Promise<WebhookRow | null> {
    return pgTransaction(this.pool, async (c) => {
      if (w.accountId === null) {
        // The exclusive lock also serialises concurrent creations against the limit (every-account endpoints count together).
        await c.query("SELECT pg_advisory_xact_lock($1)", [WEBHOOK_LANES_LOCK]);
        const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook WHERE account_id IS NULL");
        if (rows[0]!.n >= max) return null;
      } else {
        // The account row's lock serialises concurrent creations against the limit.
        const { rows } = await c.query<{ n: number }>(
          "SELECT (SELECT count(*)::int FROM webhook WHERE account_id = a.id) AS n FROM account a WHERE a.id = $1 FOR UPDATE",
          [w.accountId],
        );
        if ((rows[0]?.n ?? 0) >= max) return null;
      }
      await c.query("INSERT INTO webhook (id, account_id, url, events, description, secret) VALUES ($1, $2, $3, $4, $5, $6)", [
        w.id,
        w.accountId,
        w.url,
        w.events,
        w.description,
        w.secret,
      ]);
      await c.query("INSERT INTO webhook_lane (webhook_id, account_id, seq) SELECT $1, id, last_seq FROM account WHERE $2::int IS NULL OR id = $2", [w.id, w.accountId]);
      await c.query("SELECT pg_notify($1, $2)", [CHANNELS.webhooks, w.id]);
      return (await c.query<WebhookRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE w.id = $1`, [w.id])).rows[0]!;
    });
  }

  async find(id: string): Promise<WebhookRow | null> {
    const { rows } = await this.pool.query<WebhookRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE w.id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** One account's endpoints (`accountId`), or all of them (null), by id after `cursor`. */
  async list(accountId: number | null, cursor: string | null, limit: number): Promise<WebhookRow[]> {
    const { rows } = await this.pool.query<WebhookRow>(
      `SELECT ${COLUMNS} FROM ${FROM} WHERE ($1::int IS NULL OR w.account_id = $1) AND ($2::uuid IS NULL OR w.id > $2::uuid) ORDER BY w.id LIMIT $3`,
      [accountId, cursor, limit],
    );
    return rows;
  }

  /**
   * Applies a change; re-enabling forgets the failure streak. Null when the endpoint is gone.
   * Enabling a disabled endpoint, or giving it another URL, also ends the wait for a retry: the
   * event it stopped at goes now, with a fresh retry count and failure streak ("resumes where it
   * stopped" means now; a disabling failure may have scheduled its next try hours ahead). The
   * lanes' new epoch voids what an attempt in flight meanwhile would schedule (WebhookLanes.settle).
   * Another list of `events` starts the lanes afresh too (the failure streak stays: the endpoint is
   * the same): the next event the lane reads may be of another type than the one it was retrying,
   * and must not inherit that one's attempts. A delivery waiting for a retry whose type the new
   * list leaves out will never be tried again: it is failed, saying so.
   * A PATCH that repeats the current state (a form saved whole) changes none of that.
   */
  async update(id: string, change: WebhookChange): Promise<WebhookRow | null> {
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH prev AS (
        SELECT ($7::boolean IS NOT FALSE AND (($7::boolean AND disabled_at IS NOT NULL) OR $2::text <> url)) IS TRUE AS fresh,
          ($3::boolean AND events IS DISTINCT FROM $4::text[]) AS refiltered FROM webhook WHERE id = $1
      ), u AS (
        UPDATE webhook SET
          url = COALESCE($2, url),
          events = CASE WHEN $3::boolean THEN $4::text[] ELSE events END,
          description = CASE WHEN $5::boolean THEN $6 ELSE description END,
          disabled_at = CASE WHEN $7::boolean IS NULL THEN disabled_at WHEN $7 THEN NULL ELSE COALESCE(disabled_at, now()) END,
          disabled_reason = CASE WHEN $7::boolean IS NULL THEN disabled_reason WHEN $7 THEN NULL ELSE COALESCE(disabled_reason, 'disabled by a PATCH') END,
          failing_since = CASE WHEN (SELECT fresh FROM prev) THEN NULL ELSE failing_since END,
          failing_until = CASE WHEN (SELECT fresh FROM prev) THEN NULL ELSE failing_until END,
          updated_at = now()
        WHERE id = $1 RETURNING id
      ), lanes AS (
        -- The lanes with something to send (waiting for a retry, due, or in flight).
        UPDATE webhook_lane l SET attempts = 0, next_attempt_at = now(), epoch = l.epoch + 1
        WHERE l.webhook_id = $1 AND (SELECT fresh OR refiltered FROM prev)
          AND (l.attempts > 0 OR l.next_attempt_at > now() OR EXISTS (SELECT 1 FROM account a WHERE a.id = l.account_id AND a.last_seq > l.seq))
      ), skipped AS (
        -- A delivery waiting for a retry whose type the new list leaves out: the lane reads past it.
        UPDATE webhook_delivery d SET status = 'failed', next_attempt_at = NULL, error = 'no longer among the endpoint''s events (a PATCH changed them)'
        WHERE d.webhook_id = $1 AND d.status = 'pending' AND (SELECT refiltered FROM prev) AND $4::text[] IS NOT NULL AND d.type <> ALL($4::text[])
      ) SELECT u.id FROM u CROSS JOIN LATERAL pg_notify($8, u.id::text) AS n`,
      [
        id,
        change.url ?? null,
        change.events !== undefined,
        change.events ?? null,
        change.description !== undefined,
        change.description ?? null,
        change.enabled ?? null,
        CHANNELS.webhooks,
      ],
    );
    return rows[0] ? this.find(id) : null;
  }

  async delete(id: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ id: string }>(
      "WITH d AS (DELETE FROM webhook WHERE id = $1 RETURNING id) SELECT d.id FROM d CROSS JOIN LATERAL pg_notify($2, d.id::text) AS n",
      [id, CHANNELS.webhooks],
    );
    return rows.length > 0;
  }

  /**
   * A new secret; the current one keeps signing too until `overlapMs` from now, and a previous one
   * whose overlap is not over goes on signing until its own end, among the latest OLDER_SECRETS.
   */
  async rotate(id: string, secret: string, overlapMs: number): Promise<WebhookRow | null> {
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH u AS (
        UPDATE webhook SET older_secrets = (SELECT COALESCE(jsonb_agg(k.o ORDER BY (k.o->>'until')::float8), '[]') FROM (
            SELECT o FROM jsonb_array_elements(older_secrets || CASE WHEN previous_secret_until > now()
              THEN jsonb_build_array(jsonb_build_object('secret', previous_secret, 'until', floor(extract(epoch FROM previous_secret_until) * 1000))) ELSE '[]' END) o
            WHERE (o->>'until')::float8 > extract(epoch FROM now()) * 1000 ORDER BY (o->>'until')::float8 DESC LIMIT ${OLDER_SECRETS}) k),
          previous_secret = secret, previous_secret_until = now() + $3 * interval '1 millisecond', secret = $2, updated_at = now()
        WHERE id = $1 RETURNING id
      ) SELECT u.id FROM u CROSS JOIN LATERAL pg_notify($4, u.id::text) AS n`,
      [id, secret, overlapMs, CHANNELS.webhooks],
    );
    return rows[0] ? this.find(id) : null;
  }

  /**
   * Sends again every event after `since` (of one account, or of all the endpoint's accounts), now
   * and with a fresh retry count (an event waiting for its next retry is tried at once). Lanes
   * past it go back to it; the others get a new epoch and a cap at `since`, so an attempt in
   * flight meanwhile does not take them past it (WebhookLanes.settle).
   * Returns the lanes concerned: those of accounts with events after `since`.
   */
  async replay(id: string, since: number, accountId: number | null): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH u AS (
        UPDATE webhook_lane l SET
          seq = LEAST(l.seq, $2),
          attempts = 0,
          next_attempt_at = now(),
          epoch = l.epoch + 1,
          replay_cap = LEAST(l.replay_cap, $2)
        FROM account a
        WHERE l.webhook_id = $1 AND ($3::int IS NULL OR l.account_id = $3) AND a.id = l.account_id AND a.last_seq > $2 RETURNING 1
      ) SELECT count(*)::int AS n FROM u CROSS JOIN LATERAL (SELECT pg_notify($4, $1::text)) AS n`,
      [id, since, accountId, CHANNELS.webhooks],
    );
    return rows[0]?.n ?? 0;
  }

  /** An endpoint's deliveries, newest first, before the cursor (a delivery's row id). */
  async deliveries(id: string, status: string | null, before: number | null, limit: number): Promise<DeliveryRow[]> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `SELECT d.id, d.account_id AS "accountId", a.localpart, d.seq, d.type, d.status, d.attempts, d.response_status AS "responseStatus",
        d.response_excerpt AS "responseExcerpt", d.error, d.created_at AS "createdAt", d.last_attempt_at AS "lastAttemptAt", d.next_attempt_at AS "nextAttemptAt", d.history
      FROM webhook_delivery d JOIN account a ON a.id = d.account_id
      WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::bigint IS NULL OR d.id < $3)
      ORDER BY d.id DESC LIMIT $4`,
      [id, status, before, limit],
    );
    return rows;
  }

  /** Forgets deliveries recorded before `olderThan` (the event retention), their attempts' history with them (a column of the row). */
  async purgeDeliveries(olderThan: Date): Promise<number> {
    return (await this.pool.query("DELETE FROM webhook_delivery WHERE created_at < $1", [olderThan])).rowCount ?? 0;
  }
}
