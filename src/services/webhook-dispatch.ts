// Delivers the event log to webhook endpoints (API.md "Webhooks (1.1)"). An instance leases an
// endpoint (one instance at a time; a dead instance's lease is free at once, by its liveness lock
// on the instance's listening connection, db/notify.ts) and works through its lanes
// (one per account) round-robin, one request in flight per endpoint (src/services/webhook-lane.ts
// serves a lane's page). A leased endpoint stays with its worker while events keep coming (held up
// to IDLE_HOLD_MS idle): a new event wakes the local worker, with no claim and no release. Woken
// by NOTIFY (events appended, endpoints changed) and by a timer for the next retry or another
// instance's lease running out or its owner dying; idle, it costs two queries per SWEEP_MS.
import { randomUUID } from "node:crypto";
import type { Notifications } from "../db/notify.js";
import { CHANNELS } from "../db/notify.js";
import { parseEventsNotice } from "../db/events.js";
import { LIVENESS_OWNER_PREFIX, type LeasedWebhook, type Watched, type WebhookLanes } from "../db/webhook-lanes.js";
import type { ServiceLog, WebhookPort } from "./ports.js";
import { serveLane, type DispatchMetrics, type LaneContext } from "./webhook-lane.js";

export type { AttemptOutcome, DispatchMetrics } from "./webhook-lane.js";

export interface DispatchOptions {
  retryScheduleMs: number[];
  timeoutMs: number;
  disableAfterMs: number;
  /** Endpoints served at once by this instance (one request in flight each). */
  concurrency: number;
}

const LANES_PER_ROUND = 20;
/** The timer's longest sleep (it also catches anything a lost notification left behind). */
const SWEEP_MS = 10_000;
/**
 * How soon an instance looks again at endpoints another instance holds, whether that owner is
 * still alive (db/webhook-lanes.ts DEAD_OWNER): after an event for one, and while any are held.
 */
const LIVENESS_POLL_MS = 2_000;
/** How long an idle worker keeps its endpoint for the next event before handing it back. */
const IDLE_HOLD_MS = 2_000;

/** A running worker: the claim it serves, which accounts' events concern it (null: all), how to wake it. */
interface Worker {
  lease: LeasedWebhook;
  accountId: number | null;
  wake: () => void;
}

export class WebhookDispatcher {
  /** Names this dispatcher's liveness lock, too (db/webhook-lanes.ts). */
  private readonly owner = LIVENESS_OWNER_PREFIX + randomUUID();
  /** An attempt takes at most timeoutMs; the lease is renewed at every settle. */
  private readonly leaseMs: number;
  private readonly workers = new Map<string, Worker>();
  /** Endpoints changed since their worker loaded them: it stops, and the next claim reloads them. */
  private readonly stale = new Set<string>();
  /** When each held lease was last renewed (performance.now()): a worker renews before sending on an old one. */
  private readonly renewed = new Map<string, number>();
  private watched: Watched = { all: 0, accounts: new Map() };
  /** Bumped by every relevant notification: a worker that saw it change while releasing looks again. */
  private generation = 0;
  private pumping = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly unsubscribe: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private readonly ctx: LaneContext;

  constructor(
    private readonly lanes: WebhookLanes,
    port: WebhookPort,
    private readonly notifications: Notifications,
    domain: string,
    private readonly opts: DispatchOptions,
    metrics: DispatchMetrics,
    private readonly log: ServiceLog,
    /** XEP-0184 receipts for messages delivered to a webhook (as for those written to a stream). */
    receipts: (account: { id: number; localpart: string }, seqs: number[]) => Promise<void>,
  ) {
    this.leaseMs = 2 * opts.timeoutMs + 5_000;
    this.ctx = {
      lanes, port, domain, metrics, log,
      owner: this.owner, leaseMs: this.leaseMs, signal: this.abort.signal,
      retryScheduleMs: opts.retryScheduleMs, disableAfterMs: opts.disableAfterMs,
      interrupted: (w) => this.stopped || this.stale.has(w.id) || !this.serving(w),
      retryIn: (ms) => this.wakeIn(ms),
      // Half the lease: a process that stood still (GC, SIGSTOP, an overloaded host) renews, or
      // learns it lost the endpoint, before it sends anything more.
      leaseFresh: (id) => performance.now() - (this.renewed.get(id) ?? 0) < this.leaseMs / 2,
      leaseRenewed: (id) => void this.renewed.set(id, performance.now()),
      delivered: (account, seqs) => void receipts(account, seqs).catch((err: unknown) => log.warn({ err: String(err) }, "webhook dispatch: answering receipts failed")),
    };
  }

  async start(): Promise<void> {
    this.unsubscribe.push(
      this.notifications.on(CHANNELS.events, (payload) => this.eventsAppended(payload === null ? null : (parseEventsNotice(payload)?.accountId ?? null))),
      this.notifications.on(CHANNELS.webhooks, (payload) => {
        if (payload && this.workers.has(payload)) {
          this.stale.add(payload);
          this.workers.get(payload)!.wake();
        }
        this.generation++;
        void this.refresh().finally(() => this.pump());
      }),
    );
    // Before any claim: the leases this dispatcher takes count as alive while this lock is held.
    await this.notifications.holdLiveness(this.owner);
    await this.refresh();
    await this.sweep();
  }

  /** Stops taking work, aborts requests in flight (they are not counted as failures) and hands the leases back. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe.forEach((u) => u());
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    this.workers.forEach((w) => w.wake());
    if (this.workers.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.lanes.releaseAll(this.owner).catch(() => undefined);
    await this.notifications.dropLiveness(this.owner);
  }

  private async refresh(): Promise<void> {
    // If it cannot be read, every account counts as watched by endpoints held elsewhere: claim on every event.
    this.watched = await this.lanes.watched().catch(() => ({ all: Infinity, accounts: new Map() }));
  }

  /**
   * An account's log grew (null: notifications may have been missed). Wakes the local workers it
   * concerns; claims only when some enabled endpoint it concerns is not held here.
   */
  private eventsAppended(accountId: number | null): void {
    const concerned = accountId === null ? Infinity : this.watched.all + (this.watched.accounts.get(accountId) ?? 0);
    if (concerned === 0) return;
    this.generation++;
    let held = 0;
    for (const w of this.workers.values()) {
      if (accountId === null || w.accountId === null || w.accountId === accountId) {
        held++;
        w.wake();
      }
    }
    if (held < concerned) {
      this.pump();
      // The event may be for an endpoint another instance holds: if that one dies, go on soon.
      this.wakeIn(LIVENESS_POLL_MS);
    }
  }

  /**
   * Leases endpoints with something due, as many as there are free slots. Called on
   * notifications, when a worker ends while slots were short, and by the timer.
   */
  pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.again = false;
          const free = this.opts.concurrency - this.workers.size;
          if (free > 0) for (const w of await this.lanes.claim(this.owner, this.leaseMs, free)) void this.run(w);
        } while (this.again && !this.stopped);
      } catch (err) {
        this.log.warn({ err: String(err) }, "webhook dispatch: claiming endpoints failed; retrying");
        this.wakeIn(1000);
      } finally {
        this.pumping = false;
      }
      if (this.again) this.pump();
    })();
  }

  /** Makes sure the timer fires within `ms` (a retry this instance scheduled, a failed claim). */
  private wakeIn(ms: number): void {
    const at = Date.now() + Math.max(ms, 10);
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => void this.sweep(), at - Date.now());
    this.timer.unref();
  }

  /**
   * The timer: asks Postgres when something next will be due (any instance's retry, or another
   * instance's lease running out after it died), then claims what is due now; at least every
   * SWEEP_MS. Notifications do the rest: the timer is not on the path of a live event.
   */
  private async sweep(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    // A retry may have come due on an endpoint a worker here holds (idle): it looks again.
    this.workers.forEach((w) => w.wake());
    // Asked before the claim: it counts only what is due after its now(), so a retry falling due
    // between an earlier claim's now() and its own was neither claimed nor waited for (SWEEP_MS late).
    const next = await this.lanes.nextWake(this.owner, LIVENESS_POLL_MS).catch(() => 1000);
    this.pump();
    if (!this.stopped) this.wakeIn(Math.min(next ?? SWEEP_MS, SWEEP_MS));
  }

  /**
   * Whether `w` is still the claim this instance's worker for that endpoint serves. A worker that
   * stood still past its lease (the endpoint claimed again meanwhile, here) stops at once, and
   * neither releases the lease nor unregisters: both are its successor's now.
   */
  private serving(w: LeasedWebhook): boolean {
    return this.workers.get(w.id)?.lease === w;
  }

  private async run(w: LeasedWebhook): Promise<void> {
    let wake: () => void = () => undefined;
    let woken = false;
    /** Since when the worker found nothing due (null: it just did some work). */
    let idleSince: number | null = null;
    this.workers.set(w.id, { lease: w, accountId: w.accountId, wake: () => ((woken = true), wake()) });
    this.renewed.set(w.id, performance.now());
    this.stale.delete(w.id);
    try {
      for (;;) {
        if (this.stopped || !this.serving(w)) return;
        // The notification's own claim ran while this worker still held the endpoint: claim it
        // again now, as changed (a replay meanwhile has something due at once).
        if (this.stale.has(w.id)) return await this.handBack(w);
        woken = false;
        const due = await this.lanes.due(w.id, LANES_PER_ROUND);
        let failing = false;
        for (const lane of due) {
          const served = await serveLane(this.ctx, w, lane);
          failing ||= served === "retry";
          if (served) continue;
          if (!this.serving(w)) return;
          // Disabled, changed or lost: give the endpoint back if it is still ours, so that enabling
          // it again claims it at once rather than after this lease has run out; a change's own
          // claim ran while this worker held it, so it is claimed again now (as in the stale case).
          return await this.handBack(w);
        }
        // A failing endpoint keeps no slot while its retry waits (the load audit: a receiver that
        // hangs held one through its whole backlog, healthy ones waiting): claimed again when due.
        if (failing) return await this.handBack(w);
        if (due.length > 0) idleSince = null;
        if (due.length > 0 || woken) continue;
        // Nothing due: keep the endpoint a while for the next event (a notification wakes us)...
        // The hold counts from the last work, not from the last wake: the timer wakes every worker
        // (every 2 s while another instance holds leases), and a hold begun anew at each wake
        // would never end, keeping this slot from endpoints that wait for one.
        idleSince ??= performance.now();
        const left = IDLE_HOLD_MS - (performance.now() - idleSince);
        if (left > 0) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, left);
            wake = () => (clearTimeout(t), resolve());
          });
          wake = () => undefined;
          if (woken) continue;
        }
        if (!this.serving(w)) return;
        // ...then give it back, unless something became due meanwhile (one statement); a
        // notification that came in while that ran means another look.
        const seen = this.generation;
        const outcome = await this.lanes.release(w.id, this.owner, false, this.leaseMs);
        if (outcome === "kept") {
          this.renewed.set(w.id, performance.now());
          idleSince = null;
          continue;
        }
        // Released, or lost (this process stood still longer than its lease): either way, stop.
        if (seen !== this.generation) this.pump();
        return;
      }
    } catch (err) {
      // The lease runs out and the endpoint is claimed again (here or elsewhere).
      this.log.warn({ err: String(err), webhook: w.id }, "webhook dispatch: endpoint worker failed");
      this.wakeIn(this.leaseMs);
    } finally {
      // Superseded: the slot, the registration and the lease are the successor's.
      if (this.serving(w)) this.unregister(w);
    }
  }

  /** Gives the endpoint back (if still ours) and claims what is due. */
  private async handBack(w: LeasedWebhook): Promise<void> {
    await this.lanes.release(w.id, this.owner, true, this.leaseMs);
    this.pump();
  }

  private unregister(w: LeasedWebhook): void {
    // Another endpoint may have waited for this slot.
    const full = this.workers.size >= this.opts.concurrency;
    this.workers.delete(w.id);
    this.renewed.delete(w.id);
    if (this.workers.size === 0) this.idleWaiters.splice(0).forEach((f) => f());
    if (full && !this.stopped) this.pump();
  }
}
