// Delivers the event log to webhook endpoints (API.md "Webhooks (1.1)"). An instance leases an
// endpoint (one instance at a time; a dead instance's lease runs out) and works through its lanes
// (one per account) round-robin, one request in flight per endpoint: each lane's events go out in
// sequence order, a failed one is retried on the schedule before anything after it (then recorded
// `failed`, and the lane moves on). Progress is settled in Postgres after every failure and at
// least every SETTLE_MS, so a crash repeats at most those deliveries, with the same webhook-id
// (at least once). Woken by NOTIFY (events appended, endpoints changed) and by a timer for the
// next retry or another instance's lease running out; idle, it costs one timer per 30 s.
import { randomUUID } from "node:crypto";
import type { Notifications } from "../db/notify.js";
import { CHANNELS } from "../db/notify.js";
import type { DeliveryRecord, Lane, LeasedWebhook, WebhookLanes } from "../db/webhook-lanes.js";
import { accountJid } from "../domain/account.js";
import { deliveryId, retryDelay, type WebhookPayload } from "../domain/webhooks.js";
import type { ServiceLog, WebhookPort, WebhookResult } from "./ports.js";

export interface DispatchOptions {
  retryScheduleMs: number[];
  timeoutMs: number;
  disableAfterMs: number;
  /** Endpoints served at once by this instance (one request in flight each). */
  concurrency: number;
}

export type AttemptOutcome = "delivered" | "retry" | "failed";

export interface DispatchMetrics {
  attempt(outcome: AttemptOutcome, seconds: number): void;
}

/** Events read from a lane at a time; lanes take turns after each page. */
const PAGE = 100;
/** Deliveries are settled at least this often (and after every failure). */
const SETTLE_EVERY = 50;
const SETTLE_MS = 200;
const LANES_PER_ROUND = 20;
const SAFETY_SWEEP_MS = 30_000;

export class WebhookDispatcher {
  private readonly owner = randomUUID();
  /** An attempt takes at most timeoutMs; the lease is renewed at every settle. */
  private readonly leaseMs: number;
  private readonly workers = new Set<string>();
  /** Endpoints changed since their worker loaded them: it stops, and the next claim reloads them. */
  private readonly stale = new Set<string>();
  private watched: "all" | Set<number> = new Set();
  /** Bumped by every relevant notification: a worker that saw it change while releasing looks again. */
  private generation = 0;
  private pumping = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly unsubscribe: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly lanes: WebhookLanes,
    private readonly port: WebhookPort,
    private readonly notifications: Notifications,
    private readonly domain: string,
    private readonly opts: DispatchOptions,
    private readonly metrics: DispatchMetrics,
    private readonly log: ServiceLog,
  ) {
    this.leaseMs = 2 * opts.timeoutMs + 5_000;
  }

  async start(): Promise<void> {
    this.unsubscribe.push(
      this.notifications.on(CHANNELS.events, (payload) => {
        if (payload !== null && this.watched !== "all" && !this.watched.has(Number(payload))) return;
        this.generation++;
        this.pump();
      }),
      this.notifications.on(CHANNELS.webhooks, (payload) => {
        if (payload && this.workers.has(payload)) this.stale.add(payload);
        this.generation++;
        void this.refresh().finally(() => this.pump());
      }),
    );
    await this.refresh();
    this.pump();
  }

  /** Stops taking work, aborts requests in flight (they are not counted as failures) and hands the leases back. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe.forEach((u) => u());
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    if (this.workers.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.lanes.releaseAll(this.owner).catch(() => undefined);
  }

  private async refresh(): Promise<void> {
    this.watched = await this.lanes.watched().catch(() => "all" as const);
  }

  /** Leases endpoints with something due, as many as there are free slots; then sets the timer. */
  pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      let wake: number | null = SAFETY_SWEEP_MS;
      try {
        do {
          this.again = false;
          const free = this.opts.concurrency - this.workers.size;
          if (free > 0) for (const w of await this.lanes.claim(this.owner, this.leaseMs, free)) void this.run(w);
        } while (this.again && !this.stopped);
        wake = await this.lanes.nextWake(this.owner);
      } catch (err) {
        this.log.warn({ err: String(err) }, "webhook dispatch: claiming endpoints failed; retrying");
        wake = 1000;
      } finally {
        this.pumping = false;
      }
      if (this.stopped) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), Math.min(Math.max(wake ?? SAFETY_SWEEP_MS, 10), SAFETY_SWEEP_MS));
      this.timer.unref();
      if (this.again) this.pump();
    })();
  }

  private async run(w: LeasedWebhook): Promise<void> {
    this.workers.add(w.id);
    this.stale.delete(w.id);
    try {
      for (;;) {
        if (this.stopped) return;
        if (this.stale.has(w.id)) {
          await this.lanes.release(w.id, this.owner, true);
          return;
        }
        const due = await this.lanes.due(w.id, LANES_PER_ROUND);
        if (due.length === 0) {
          const seen = this.generation;
          if (await this.lanes.release(w.id, this.owner, false)) {
            if (seen !== this.generation) this.pump();
            return;
          }
          continue;
        }
        for (const lane of due) if (!(await this.serve(w, lane))) return;
      }
    } catch (err) {
      // The lease runs out and the endpoint is claimed again (here or elsewhere).
      this.log.warn({ err: String(err), webhook: w.id }, "webhook dispatch: endpoint worker failed");
    } finally {
      this.workers.delete(w.id);
      if (this.workers.size === 0) this.idleWaiters.splice(0).forEach((f) => f());
      if (!this.stopped) this.pump();
    }
  }

  private secrets(w: LeasedWebhook): string[] {
    return w.previousSecret && w.previousSecretUntil && w.previousSecretUntil.getTime() > Date.now() ? [w.secret, w.previousSecret] : [w.secret];
  }

  /**
   * One page of a lane. Returns false when the worker must stop (lease lost, endpoint disabled,
   * changed or the instance stopping).
   */
  private async serve(w: LeasedWebhook, lane: Lane): Promise<boolean> {
    const { events, head } = await this.lanes.read(lane.accountId, lane.seq, w.events, PAGE);
    const account = accountJid(lane.localpart, this.domain);
    const secrets = this.secrets(w);
    let from = lane.seq;
    let attempts = lane.attempts;
    let records: DeliveryRecord[] = [];
    let lastSettle = performance.now();
    /** Writes progress: the lane at `to`, the records so far. "stop": the worker ends; "moved-away": a replay took the lane. */
    const settle = async (to: number, success: boolean | null, next: { attempts: number; delayMs: number }): Promise<"ok" | "stop" | "moved-away"> => {
      const s = await this.lanes.settle(w.id, this.owner, this.leaseMs, success, this.opts.disableAfterMs, [{ accountId: lane.accountId, from, to, ...next }], records);
      records = [];
      lastSettle = performance.now();
      if (!s.leased || s.disabled) return "stop";
      if (!s.moved.includes(lane.accountId)) return "moved-away";
      from = to;
      return "ok";
    };
    let at = from;
    let complete = true;
    for (const e of events) {
      if (this.stopped || this.stale.has(w.id)) {
        complete = false;
        break;
      }
      const payload: WebhookPayload = { id: e.seq, account, type: e.type, data: e.data, createdAt: e.createdAt.toISOString() };
      const result = await this.port.post({ url: w.url, msgId: deliveryId(w.id, lane.accountId, e.seq), body: JSON.stringify(payload), secrets }, this.abort.signal);
      // An attempt cut short by shutdown is not the receiver's failure: it is simply made again.
      // What succeeded before it is recorded, so a restart does not repeat it.
      if (this.stopped) {
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
        nextAttemptAt: next,
      });
      if (result.ok) {
        this.metrics.attempt("delivered", result.ms / 1000);
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
      const delay = retryDelay(this.opts.retryScheduleMs, failed, Math.random());
      this.logFailure(w, lane, e.seq, failed, delay, result);
      if (delay !== null) {
        this.metrics.attempt("retry", result.ms / 1000);
        records.push(record("pending", failed, new Date(Date.now() + delay)));
        const r = await settle(at, false, { attempts: failed, delayMs: delay });
        return r !== "stop";
      }
      // The schedule is used up: the delivery is failed for good and the lane moves on.
      this.metrics.attempt("failed", result.ms / 1000);
      records.push(record("failed", failed, null));
      at = e.seq;
      attempts = 0;
      const r = await settle(at, false, { attempts: 0, delayMs: 0 });
      if (r !== "ok") return r === "moved-away";
    }
    // Fewer than a page: every event up to the head was seen, the other types included.
    const to = complete && events.length < PAGE ? Math.max(at, head) : at;
    if (to === from && records.length === 0) return !this.stale.has(w.id);
    const r = await settle(to, records.length > 0 ? true : null, { attempts: 0, delayMs: 0 });
    return r !== "stop";
  }

  private logFailure(w: LeasedWebhook, lane: Lane, seq: number, attempts: number, delay: number | null, result: WebhookResult): void {
    this.log.info(
      { webhook: w.id, account: lane.localpart, seq, attempts, status: result.status, error: result.error, retryInMs: delay },
      delay === null ? "webhook delivery failed for good" : "webhook delivery failed; will retry",
    );
  }
}
