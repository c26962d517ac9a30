// Who holds the component link. XMPP_LINK_MODE=all: every instance (ejabberd balances several
// connections of one component). XMPP_LINK_MODE=single (Prosody accepts one connection per
// component domain): the instance holding the lease (src/db/lease.ts) holds the link; the others
// are standbys that try to take the lease every second, and at once when the holder announces it
// let go. A holder whose lease connection drops stops claiming rows at once (claims are fenced by
// the lease) and tries to take the lease back: while Postgres is unreachable nobody else can take
// it or send anything, so the link stays up (inbound stanzas still get their bounce); once
// Postgres answers that another instance holds it, the link closes. A holder also gives the lease
// up when its link has been down for longer than the grace period (another instance may reach the
// server), and on shutdown (after closing its link, so the next holder is accepted). A holder
// that hangs (SIGSTOP, a stuck event loop) keeps its lease connection, so it proves it is alive
// several times within leaseTimeoutMs (livenessBeatMs: a beat on that connection, a task of its own
// and not part of the tick, which may wait on the link); a standby that finds no beat for
// leaseTimeoutMs ends the hung holder's lease backend and takes over. Resumed, the old holder
// finds its lease connection gone (regaining), then taken: it closes its link. (On Prosody the new
// link replaces the hung one: component_conflict_resolve = "kick_old".)
// In all mode, the answer to an instance's barrier ping may reach another instance's link, which
// passes it on over NOTIFY (src/xmpp/link.ts share()), and every instance holds the lease shared,
// which keeps the two modes apart on one database (src/db/lease.ts).
import { LEASE_KEY, type LinkLease } from "../db/lease.js";
import { CHANNELS, type Notifications } from "../db/notify.js";
import { atMost, cadence } from "../cadence.js";
import { livenessBeatMs } from "../domain/duration.js";
import { CONFIRM_TIMEOUT_MS, type ServiceLog } from "./ports.js";

export type LinkMode = "single" | "all";
/** How long stop() waits for the tick under way before it hands over anyway. */
const STOP_WAIT_MS = 2000;
export type Readiness = "up" | "standby" | "down";

/** An instance in XMPP_LINK_MODE=all found one in single mode holding the link on its database: it does not start. */
export class LinkModeConflict extends Error {
  constructor() {
    super("another instance on this database holds the component link in XMPP_LINK_MODE=single: run every instance of a database in one mode (both would send every message); stop the single-mode ones first");
    this.name = "LinkModeConflict";
  }
}

/** The component link as the leadership needs it (src/xmpp/link.ts). */
export interface LinkDriver {
  readonly online: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Answers every instance's barrier pings, and hands `relay` the answers to theirs. */
  share(relay: (id: string) => void): void;
  /** Another instance got the answer to this one's barrier ping `id`. */
  answered(id: string): void;
}

export interface LinkControlOptions {
  mode: LinkMode;
  pollMs: number;
  /** How long a holder keeps the lease while its link is down. */
  downGraceMs: number;
  /** How long a holder may go without proving it is alive before a standby replaces it. */
  leaseTimeoutMs: number;
}

export class LinkControl {
  /** Stop the poll and the beat (src/cadence.ts). */
  private stopTimers: (() => void)[] = [];
  private downSince: number | null = null;
  private pauseUntil = 0;
  /** The tick under way: stop() waits for it, or a lease it took or a link it started would outlive stop(). */
  private ticking: Promise<void> | null = null;
  private stopped = false;
  /** The lease connection dropped while this instance held it; it is trying to take it back. */
  private regaining = false;
  /** A standby said once that all-mode instances hold the lease (and so the link) on its database. */
  private saidMixed = false;

  constructor(
    private readonly lease: LinkLease,
    private readonly link: LinkDriver,
    private readonly notifications: Notifications,
    private readonly opts: LinkControlOptions,
    private readonly log: ServiceLog,
    /**
     * This instance took the lease back with its link still up: what was queued meanwhile (posts
     * while the lease connection was gone) can go out now. Nothing else would send it before the
     * next sweep: the link did not come up, so nothing else kicks the drain.
     */
    private readonly regained: () => void = () => undefined,
  ) {}

  /** Whether this instance may write to the link (and claim outbound rows). */
  get holder(): boolean {
    return this.opts.mode === "all" || this.lease.held;
  }

  /** In single-link mode only the lease holder writes to the link. */
  get exclusive(): boolean {
    return this.opts.mode === "single";
  }

  /**
   * A live instance's drain step is idle in its transaction at most while it waits for the
   * server's confirmation; beyond that and the lease timeout (how long an instance may go
   * without a sign of life), the instance hung.
   */
  get drainIdleLimitMs(): number {
    return CONFIRM_TIMEOUT_MS + this.opts.leaseTimeoutMs;
  }

  /** What a claim of outbound rows must check: that this instance still holds the lease. */
  fence(): { key: [number, number]; pid: number } | null {
    if (this.opts.mode === "all") return null;
    return this.lease.pid === null ? { key: LEASE_KEY, pid: -1 } : { key: LEASE_KEY, pid: this.lease.pid };
  }

  async start(): Promise<void> {
    if (this.opts.mode === "all") {
      const r = await this.lease.tryAcquire(true);
      if (r === "taken") throw new LinkModeConflict();
      if (r === "unreachable") throw new Error("PostgreSQL did not answer while taking the link lease (shared, XMPP_LINK_MODE=all)");
      this.lease.on("lost", () => void this.regainShared());
      this.notifications.on(CHANNELS.barrier, (id) => id && this.link.answered(id));
      this.link.share((id) => void this.notifications.send(CHANNELS.barrier, id).catch(() => undefined));
      return this.link.start();
    }
    this.lease.on("lost", () => {
      this.log.warn({}, "lost the link lease connection; sending nothing until it is back");
      this.regaining = true;
      void this.tick();
    });
    this.notifications.on(CHANNELS.link, () => void this.tick());
    this.stopTimers = [cadence.every(this.opts.pollMs, () => void this.tick()), cadence.every(livenessBeatMs(this.opts.leaseTimeoutMs), () => this.lease.beat())];
    await this.tick();
  }

  /** The link went up or down on this instance. */
  linkChanged(up: boolean): void {
    this.downSince = up ? null : Date.now();
    if (this.opts.mode === "single") void this.lease.setLinkState(up);
    else this.notifications.advertiseLink(up);
  }

  private tick(): Promise<void> {
    if (this.ticking || this.stopped) return Promise.resolve();
    return (this.ticking = this.step().finally(() => (this.ticking = null)));
  }

  private async step(): Promise<void> {
    if (this.regaining) {
      const r = await this.lease.tryAcquire();
      if (r === "unreachable") return;
      this.regaining = false;
      if (r === "held") {
        this.log.info({}, "took the link lease back");
        await this.lease.setLinkState(this.link.online);
        this.regained();
      } else {
        this.log.warn({}, "another instance holds the link lease now; closing the link");
        await this.link.stop();
      }
    } else if (!this.lease.held) {
      if (Date.now() < this.pauseUntil) return;
      let r = await this.lease.tryAcquire();
      if (r === "taken" && this.lease.takenShared) return this.sayMixed();
      if (r === "taken" && (await this.replacedStaleHolder())) r = await this.lease.tryAcquire();
      // stop() came while the lease was being taken (and may have given up waiting for this tick).
      if (r === "held" && this.stopped) return void (await this.lease.release());
      if (r === "held") {
        this.log.info({}, "holding the component link lease; connecting");
        this.downSince = Date.now();
        await this.link.start();
      }
    } else if (!this.link.online && this.downSince !== null && Date.now() - this.downSince > this.opts.downGraceMs) {
      this.log.warn({ downMs: Date.now() - this.downSince }, "link down past the grace period; handing the lease to another instance");
      await this.handOver();
      this.pauseUntil = Date.now() + 3 * this.opts.pollMs;
    }
  }

  private sayMixed(): void {
    if (this.saidMixed) return;
    this.saidMixed = true;
    this.log.warn({}, "instances in XMPP_LINK_MODE=all hold the component link on this database: this one (single) stays a standby until they stop; run every instance of a database in one mode");
  }

  /**
   * XMPP_LINK_MODE=all: the shared lease's connection dropped. Taken back once PostgreSQL answers;
   * if a single-mode instance took the lease meanwhile, this link closes (both would send).
   */
  private async regainShared(): Promise<void> {
    while (!this.stopped) {
      const r = await this.lease.tryAcquire(true);
      if (r === "held") return this.log.info({}, "took the shared link lease back");
      if (r === "taken") {
        this.log.warn({}, "an instance in XMPP_LINK_MODE=single took the link lease: closing this link (run every instance of a database in one mode)");
        return this.link.stop();
      }
      await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs));
    }
  }

  /** Ends the lease of a holder that has not proven it is alive for leaseTimeoutMs (src/db/lease.ts takeOverStale). */
  private async replacedStaleHolder(): Promise<boolean> {
    const stale = await this.lease.takeOverStale(this.opts.leaseTimeoutMs).catch(() => null);
    if (!stale) return false;
    this.log.warn(
      { oldBackendPid: stale.pid, oldClient: stale.client, heartbeatAgeMs: stale.ageMs, timeoutMs: this.opts.leaseTimeoutMs },
      "the link holder has not proven it is alive within XMPP_LINK_LEASE_TIMEOUT; ended its lease connection so a standby takes the link over",
    );
    return true;
  }

  /** Closes the link, then releases the lease and tells the standbys. */
  private async handOver(): Promise<void> {
    await this.link.stop();
    const had = this.lease.held;
    await this.lease.release();
    if (had) await this.notifications.send(CHANNELS.link).catch(() => undefined);
  }

  /** For /readyz: up (this instance's link), standby (another instance's link is up), or down. */
  async readiness(): Promise<Readiness> {
    // XMPP_LINK_MODE=all: while this instance's link is down, its stanzas go out on the others'
    // (Delivery wakes them through NOTIFY), so it is a standby while any other link is up.
    if (this.opts.mode === "all" && !this.link.online) return (await this.notifications.otherLinkUp().catch(() => false)) ? "standby" : "down";
    if (this.holder || this.regaining) return this.link.online ? "up" : "down";
    return (await this.lease.holderState().catch(() => "none" as const)) === "up" ? "standby" : "down";
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const stop of this.stopTimers) stop();
    if (this.opts.mode === "all") {
      await this.link.stop();
      return this.lease.release();
    }
    // Bounded: a tick stuck on an unreachable PostgreSQL must not hold the shutdown.
    if (this.ticking) await atMost(this.ticking, STOP_WAIT_MS, undefined);
    await this.handOver();
  }
}
