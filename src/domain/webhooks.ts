// Webhooks (API.md "Webhooks (1.1)", Standard Webhooks 1.0): what a subscription may name, what
// its view and each delivery look like, and when a failed delivery is tried again. Pure rules:
// signing lives in the webhook adapter (src/webhook/), storage in src/db/webhook*.ts.
import { Type, type Static } from "@sinclair/typebox";
import { EVENT_TYPES, type EventType } from "./events.js";

/**
 * Event types a webhook can subscribe to: every type API.md lists. `resync` is accepted but never
 * fires for a webhook: it tells a stream that its cursor fell out of the retained log, and
 * webhooks are pushed in order without cursors.
 */
export const WEBHOOK_EVENT_TYPES: readonly EventType[] = EVENT_TYPES;

/** Longest webhook URL accepted: browsers and proxies agree on 2,048 characters. */
export const WEBHOOK_URL_MAX = 2048;
/** Bytes of a receiver's response body kept with a delivery. */
export const RESPONSE_EXCERPT_BYTES = 1024;
/** After a rotation, the previous secret signs as well for this long (Standard Webhooks: "during rotation"). */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;
/**
 * Attempts of one delivery kept in its `history` (the newest ones): the default schedule makes 8,
 * and a replay's attempts follow the earlier ones, so the row stays bounded however often it is replayed.
 */
export const ATTEMPT_HISTORY = 10;
/** How many endpoints one account may have. */
export const WEBHOOKS_PER_ACCOUNT = 20;

/** The default retry schedule: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (API.md). */
export const DEFAULT_RETRY_SCHEDULE_MS = [5e3, 300e3, 1800e3, 7200e3, 18000e3, 36000e3, 36000e3];

/**
 * When to try again after `failed` attempts of one event, or null when the schedule is used up
 * (the delivery is then `failed`). Jitter: each delay is scaled by a factor in [1, 1.2), so that
 * endpoints that failed together do not retry together. Upward only: a retry never comes before
 * the scheduled delay (WEBHOOK_RETRY_SCHEDULE is a minimum a receiver can count on).
 */
export function retryDelay(schedule: readonly number[], failed: number, random: number): number | null {
  const base = schedule[failed - 1];
  if (base === undefined) return null;
  // Whole milliseconds from base to the last one below 1.2 x base: rounding
  // base x (1 + 0.2 x random) reaches 1.2 x base itself when random is close to 1.
  const high = Math.ceil((base * 6) / 5);
  return high > base ? Math.min(base + Math.floor(random * (high - base)), high - 1) : base;
}

/**
 * The longest wait `schedule` can leave between two attempts of one event: its largest delay with
 * the most jitter retryDelay adds (random close to 1). Derived from retryDelay, so that the two
 * cannot disagree.
 */
export function longestRetryGapMs(schedule: readonly number[]): number {
  return Math.max(0, ...schedule.map((_, i) => retryDelay(schedule, i + 1, 1)!));
}

/**
 * How long after a failed attempt the endpoint's next failed attempt still continues its failure
 * streak (README "Failing endpoints stop"); one after that starts a new streak, as the endpoint
 * was quiet meanwhile (nothing to send) and nobody saw it fail. WEBHOOK_DISABLE_AFTER measures
 * how long attempts kept failing, not how long ago a failure once began. It is the longest gap
 * the schedule leaves between attempts of one event, or the wait this failure scheduled if
 * longer (a receiver's Retry-After may ask for more), plus `lateMs`: how much later than due the
 * next attempt may end (its own duration, and the dispatcher's pace).
 */
export function failureStreakHoldMs(schedule: readonly number[], waitMs: number, lateMs: number): number {
  return Math.max(longestRetryGapMs(schedule), waitMs) + lateMs;
}

/**
 * A receiver's `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) in milliseconds from
 * `now`, or null when it has none or none that parses. Standard Webhooks: it "should be taken into
 * consideration when scheduling the next attempt" (see laterRetry).
 */
export function retryAfterMs(header: string | undefined, now: number): number | null {
  const v = header?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP-date starts with its day name in all three of its forms (IMF-fixdate, RFC 850, asctime);
  // Date.parse alone would take "-5" or "1.5" for a year.
  if (!/^[A-Z][a-z]{2}/.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The longest wait a receiver's Retry-After is granted: a day (an endpoint failing for 5 days is disabled anyway). */
export const RETRY_AFTER_MAX_MS = 24 * 3600_000;

/**
 * The delay before the next attempt when the receiver asked for one (`asked`, its Retry-After):
 * never sooner than the schedule's `delay`, and never later than RETRY_AFTER_MAX_MS. Null (the
 * schedule is used up) stays null: a Retry-After adds no attempt.
 */
export function laterRetry(delay: number | null, asked: number | null): number | null {
  if (delay === null || asked === null) return delay;
  return Math.max(delay, Math.min(asked, RETRY_AFTER_MAX_MS));
}

/** Standard Webhooks: "410 Gone: ... Sender should disable the webhook endpoint, and stop sending it messages". */
export const GONE = 410;

/**
 * What a URI or IRI never holds as such (RFC 3986 §2, RFC 3987 §2.2: percent-encoded only): white
 * space, control characters, lone surrogates. The URL parser would quietly drop or encode them,
 * while the stored URL is the one given (a NUL cannot even be stored).
 */
function notInUrl(raw: string): boolean {
  for (const ch of raw) {
    // By code point: a surrogate alone here is a lone one (a pair is one astral code point).
    const c = ch.codePointAt(0)!;
    if (c <= 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/** Why a URL cannot be a webhook target, or null when it can (the host's addresses are checked apart). */
export function urlProblem(raw: string): string | null {
  if (raw.length > WEBHOOK_URL_MAX) return `is longer than ${WEBHOOK_URL_MAX} characters`;
  if (notInUrl(raw)) return "contains white space, a control character or a lone surrogate (RFC 3986 §2): percent-encode it";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http or https URL";
  // RFC 9110 §4.2.4: senders must not put credentials in http(s) URIs (they would also be logged).
  if (url.username || url.password) return "must not contain credentials (user:password@)";
  if (url.href.includes("#")) return "must not contain a fragment";
  if (!url.hostname) return "has no host";
  return null;
}

/**
 * `webhook-id`: one per event and endpoint, the same on every attempt (receivers drop duplicates by
 * it). A resync names the last event gone (its `id`, as a stream's resync does), which the
 * endpoint may have had: it is another message, so another id (`…_resync`).
 */
export function deliveryId(webhookId: string, accountId: number, seq: number, type?: string): string {
  return `msg_${webhookId.replaceAll("-", "")}_${accountId}_${seq}${type === "resync" ? "_resync" : ""}`;
}

/** The body POSTed for an event: the event as the stream shows it, with its account. */
export interface WebhookPayload {
  id: number;
  account: string;
  type: string;
  data: unknown;
  createdAt: string;
}

/**
 * A WebhookPayload as JSON, around the event's data as the log stores it (JSON text): the data is
 * not parsed and serialised again for every delivery.
 */
export function payloadJson(id: number, account: string, type: string, dataJson: string, createdAt: Date): string {
  return `{"id":${id},"account":${JSON.stringify(account)},"type":${JSON.stringify(type)},"data":${dataJson},"createdAt":"${createdAt.toISOString()}"}`;
}

/** A secret from before the previous one, still signing until `until` (ms since the epoch): Webhooks.rotate. */
export interface OlderSecret {
  secret: string;
  until: number;
}

/** How many secrets from before the previous one go on signing at most (each one more signature a delivery). */
export const OLDER_SECRETS = 3;

/** Every secret a delivery is signed with now: the current one, the previous and older ones whose overlap is not over. */
export function signingSecrets(w: { secret: string; previousSecret: string | null; previousSecretUntil: Date | null; olderSecrets: OlderSecret[] }, now = Date.now()): string[] {
  const previous = w.previousSecret && w.previousSecretUntil && w.previousSecretUntil.getTime() > now ? [w.previousSecret] : [];
  return [w.secret, ...previous, ...w.olderSecrets.filter((o) => o.until > now && o.secret !== w.previousSecret).map((o) => o.secret)];
}

/**
 * The data of the `resync` a lane delivers before the events after a gap: those up to `from` were
 * purged before the endpoint got them (as a stream resuming from a cursor older than the retained
 * log is told, API.md Events). Its id is `from`, where the lane goes on.
 */
export const resyncDataJson = (from: number): string => JSON.stringify({ reason: "events purged from the retained log before this endpoint got them", from });

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Timestamp = Type.String({ format: "date-time" });

export type WebhookEventType = EventType;
export const WebhookEventTypeSchema = Type.Unsafe<WebhookEventType>(
  Type.Union(
    WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)),
    { description: "An event type (API.md). `resync` is delivered whatever the list: when events the endpoint had yet to get were purged (while it was disabled, or before a replay's since), ahead of the events after them" },
  ),
);

export const WebhookViewSchema = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    account: Type.String({ description: 'The account whose events are delivered (bare JID), or "*" for every account' }),
    url: Type.String(),
    events: Type.Union([Type.Array(WebhookEventTypeSchema), Type.Null()], { description: "Subscribed event types; null: all of them" }),
    description: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal("enabled"), Type.Literal("disabled")]),
    disabledAt: Nullable(Timestamp),
    disabledReason: Type.Union([Type.String(), Type.Null()]),
    failingSince: Type.Union([Timestamp, Type.Null()], {
      description:
        "The first failed attempt of the current failure streak, which a success ends, and so does a quiet spell (no attempt for longer than the retry schedule's longest gap with jitter, or a Retry-After's wait, plus 2 x WEBHOOK_TIMEOUT + 5 s: README \"Failing endpoints stop\"); null: not failing",
    }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false, title: "Webhook" },
);
export type WebhookView = Static<typeof WebhookViewSchema>;

export const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const DeliveryAttemptSchema = Type.Object(
  {
    at: Type.String({ format: "date-time", description: "When the attempt's outcome was known (the newest one's is lastAttemptAt); it started durationMs before" }),
    responseStatus: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's status; null when it gave none" }),
    error: Type.Union([Type.String(), Type.Null()], { description: "Why it failed without a response (timeout, connection, forbidden target); null when a response came" }),
    durationMs: Type.Integer({ minimum: 0, description: "From sending the request to its outcome" }),
  },
  { additionalProperties: false, title: "WebhookDeliveryAttempt" },
);
export type DeliveryAttempt = Static<typeof DeliveryAttemptSchema>;

export const DeliveryViewSchema = Type.Object(
  {
    webhookId: Type.String({ description: "The webhook-id header of every attempt" }),
    account: Type.String(),
    eventId: Type.Integer({ description: "The event's sequence number in the account's log" }),
    type: Type.String(),
    status: Type.Unsafe<DeliveryStatus>(Type.Union(DELIVERY_STATUSES.map((s) => Type.Literal(s)))),
    attempts: Type.Integer({ description: "Attempts of this delivery (since its last replay, or the endpoint was enabled again or given another url)" }),
    responseStatus: Type.Union([Type.Integer(), Type.Null()]),
    responseExcerpt: Type.Union([Type.String(), Type.Null()], { description: `At most ${RESPONSE_EXCERPT_BYTES} bytes of the last response body` }),
    error: Type.Union([Type.String(), Type.Null()], { description: "Why the last attempt failed without a response (timeout, connection, forbidden target)" }),
    createdAt: Timestamp,
    lastAttemptAt: Timestamp,
    nextAttemptAt: Nullable(Timestamp),
    history: Type.Array(DeliveryAttemptSchema, {
      maxItems: ATTEMPT_HISTORY,
      description: `Each attempt, oldest first (the last ${ATTEMPT_HISTORY}; a replay's attempts follow the earlier ones). responseStatus and error above are the newest one's`,
    }),
  },
  { additionalProperties: false, title: "WebhookDelivery" },
);
export type DeliveryView = Static<typeof DeliveryViewSchema>;
