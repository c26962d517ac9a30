// One page of one lane (endpoint x account) of the webhook dispatcher: the next events of the
// subscribed types, POSTed one at a time in sequence order, and what came of them settled in
// Postgres (src/db/webhook-lanes.ts): after every failure, at least every SETTLE_MS and at the end.
// A failed event is retried on the schedule before anything after it; when the schedule is used
// up it is recorded `failed` and the lane moves on.
import type { DeliveryRecord, Lane, LeasedWebhook, WebhookLanes } from "../db/webhook-lanes.js";
import { accountJid } from "../domain/account.js";
import { deliveryId, failureStreakHoldMs, GONE, laterRetry, payloadJson, resyncDataJson, retryDelay, signingSecrets } from "../domain/webhooks.js";
import type { ServiceLog, WebhookPort, WebhookResult } from "./ports.js";

export type AttemptOutcome = "delivered" | "retry" | "failed";

export interface DispatchMetrics {
  attempt(outcome: AttemptOutcome, seconds: number): void;
}

/** Events read from a lane at a time; lanes take turns after each page. */
const PAGE = 100;
/** Deliveries are settled at least this often (and after every failure). */
const SETTLE_EVERY = 50;
const SETTLE_MS = 200;

/** What a page needs from the dispatcher that runs it. */
export interface LaneContext {
  readonly lanes: WebhookLanes;
  readonly port: WebhookPort;
  readonly domain: string;
  readonly owner: string;
  readonly leaseMs: number;
  readonly retryScheduleMs: number[];
  readonly disableAfterMs: number;
  readonly metrics: DispatchMetrics;
  readonly log: ServiceLog;
  /** Aborted when the instance stops: the attempt in flight is cut short (and made again later). */
  readonly signal: AbortSignal;
  /** The instance is stopping, the endpoint changed since it was leased, or this claim was superseded: stop after this attempt. */
  interrupted(w: LeasedWebhook): boolean;
  /** A retry was scheduled this far ahead: make sure to look again then. */
  retryIn(ms: number): void;
  /** Whether the endpoint's lease was renewed recently enough to send on it without renewing first. */
  leaseFresh(webhookId: string): boolean;
  /** The lease was just renewed (a settle went through). */
  leaseRenewed(webhookId: string): void;
  /** XEP-0184: these events asked for a receipt and were delivered (and settled): answer them. */
  delivered(account: { id: number; localpart: string }, seqs: number[]): void;
}

function logFailure(log: ServiceLog, w: LeasedWebhook, lane: Lane, seq: number, attempts: number, delay: number | null, result: WebhookResult): void {
  log.info(
    { webhook: w.id, account: lane.localpart, seq, attempts, status: result.status, error: result.error, retryInMs: delay },
    delay === null ? "webhook delivery failed for good" : "webhook delivery failed; will retry",
  );
}

/**
 * Serves one page of a lane. Returns false when the worker must stop (lease lost, endpoint
 * disabled, changed, or the instance stopping); "retry" when an attempt failed and is due again
 * later (the worker then hands the endpoint back: src/services/webhook-dispatch.ts).
 */
export async function serveLane(ctx: LaneContext, w: LeasedWebhook, lane: Lane): Promise<boolean | "retry"> {
  const { events: read, head, gap } = await ctx.lanes.read(lane.accountId, lane.seq, w.events, PAGE);
  // Events gone before the endpoint got them: a resync first, whatever types it takes, as a stream
  // from a purged cursor gets one. Retried like an event, under the same id (its own: deliveryId).
  const resync = gap && { seq: gap.upTo, type: "resync", dataJson: resyncDataJson(gap.upTo), createdAt: gap.at, receiptPending: false };
  const events = resync ? [resync, ...read] : read;
  const account = accountJid(lane.localpart, ctx.domain);
  const signing = signingSecrets(w);
  let from = lane.seq;
  let attempts = lane.attempts;
  let records: DeliveryRecord[] = [];
  let lastSettle = performance.now();
  /** Events of this page whose sender asked for a receipt (answered once delivered and settled). */
  const asked = new Set(events.filter((e) => e.receiptPending).map((e) => e.seq));
  /** Writes progress: the lane at `to`, the records so far. "stop": the worker ends; "moved-away": a replay took the lane. */
  const settle = async (to: number, success: boolean | null, next: { attempts: number; delayMs: number }, disable: string | null = null): Promise<"ok" | "stop" | "moved-away"> => {
    // A failure keeps the endpoint's failure streak going for as long as the next attempt may
    // take to come (the schedule's longest gap, or this retry's wait if longer) and a lease more:
    // the lease allows for that attempt's own duration (up to WEBHOOK_TIMEOUT) and a late start.
    const holdMs = failureStreakHoldMs(ctx.retryScheduleMs, next.delayMs, ctx.leaseMs);
    const s = await ctx.lanes.settle(w.id, ctx.owner, ctx.leaseMs, success, { afterMs: ctx.disableAfterMs, holdMs, now: disable }, [{ accountId: lane.accountId, from, to, epoch: lane.epoch, ...next }], records);
    const settled = records;
    records = [];
    lastSettle = performance.now();
    if (!s.leased || s.disabled) return "stop";
    ctx.leaseRenewed(w.id);
    const receipts = settled.filter((r) => r.status === "delivered" && asked.has(r.seq)).map((r) => r.seq);
    if (receipts.length > 0 && s.moved.includes(lane.accountId)) ctx.delivered({ id: lane.accountId, localpart: lane.localpart }, receipts);
    if (!s.moved.includes(lane.accountId)) return "moved-away";
    from = to;
    return "ok";
  };
  let at = from;
  let complete = true;
  for (const e of events) {
    if (ctx.interrupted(w)) {
      complete = false;
      break;
    }
    // Never send on a lease that may have run out meanwhile (a settle renews it, or says it is lost).
    if (!ctx.leaseFresh(w.id)) {
      const r = await settle(at, records.length > 0 ? true : null, { attempts, delayMs: 0 });
      if (r !== "ok") return r === "moved-away";
    }
    const body = payloadJson(e.seq, account, e.type, e.dataJson, e.createdAt);
    const result = await ctx.port.post({ url: w.url, msgId: deliveryId(w.id, lane.accountId, e.seq, e.type), body, secrets: signing }, ctx.signal);
    // An attempt cut short by shutdown is not the receiver's failure: it is simply made again.
    // What succeeded before it is recorded, so a restart does not repeat it.
    if (ctx.signal.aborted) {
      if (records.length > 0) await settle(at, true, { attempts: 0, delayMs: 0 });
      return false;
    }
    const record = (status: DeliveryRecord["status"], n: number, next: Date | null): DeliveryRecord => ({
      accountId: lane.accountId,
      seq: e.seq,
      type: e.type,
      status,
      attempts: n,
      responseStatus: result.status,
      responseExcerpt: result.excerpt,
      error: result.error,
      at: new Date(),
      durationMs: Math.round(result.ms),
      nextAttemptAt: next,
    });
    if (result.ok) {
      ctx.metrics.attempt("delivered", result.ms / 1000);
      records.push(record("delivered", attempts + 1, null));
      at = e.seq;
      attempts = 0;
      if (records.length >= SETTLE_EVERY || performance.now() - lastSettle >= SETTLE_MS) {
        const r = await settle(at, true, { attempts: 0, delayMs: 0 });
        if (r !== "ok") return r === "moved-away";
      }
      continue;
    }
    // A failure: what succeeded before it is settled first (and clears the failure streak).
    if (records.length > 0) {
      const r = await settle(at, true, { attempts: 0, delayMs: 0 });
      if (r !== "ok") return r === "moved-away";
    }
    const failed = attempts + 1;
    // Standard Webhooks: a 410 disables the endpoint, which stops at this event (enabled again, it
    // resumes here); a Retry-After pushes the next attempt back (laterRetry says how far).
    const gone = result.status === GONE;
    const delay = laterRetry(retryDelay(ctx.retryScheduleMs, failed, Math.random()), result.retryAfterMs ?? null);
    logFailure(ctx.log, w, lane, e.seq, failed, delay, result);
    if (delay !== null || gone) {
      const wait = delay ?? 0;
      ctx.metrics.attempt("retry", result.ms / 1000);
      records.push(record("pending", failed, gone ? null : new Date(Date.now() + wait)));
      const r = await settle(at, false, { attempts: failed, delayMs: wait }, gone ? "the endpoint answered 410 Gone" : null);
      // Once settled: the retry is due `wait` after the settle's now(), so a look set up before
      // it could come a little early, find nothing due, and leave the worker idle for IDLE_HOLD_MS.
      if (!gone) ctx.retryIn(wait);
      return r === "stop" ? false : "retry";
    }
    // The schedule is used up: the delivery is failed for good and the lane moves on.
    ctx.metrics.attempt("failed", result.ms / 1000);
    records.push(record("failed", failed, null));
    at = e.seq;
    attempts = 0;
    const r = await settle(at, false, { attempts: 0, delayMs: 0 });
    if (r !== "ok") return r === "moved-away";
  }
  // Fewer than a page: every event up to the head was seen, the other types included.
  const to = complete && read.length < PAGE ? Math.max(at, head) : at;
  if (to === from && records.length === 0) return !ctx.interrupted(w);
  const r = await settle(to, records.length > 0 ? true : null, { attempts: 0, delayMs: 0 });
  return r !== "stop";
}
