// Readiness: Postgres reachable, and the component link up on this instance ("up") or on the
// instance holding it ("standby": this one hands its stanzas over through Postgres). Redis, when
// configured, is reported beside them but never makes the instance unready: the limits it counts
// fail open while it is unreachable (README, "Configuration"), so the instance still serves.
import { atMost } from "../cadence.js";
import type { Database } from "../db/client.js";
import type { LinkControl } from "./link-control.js";
import type { OutboundPort } from "./ports.js";

export interface Readiness {
  database: "up" | "down";
  xmpp: "up" | "standby" | "down";
  /** Only with REDIS_URL. */
  redis?: "up" | "down";
}

/**
 * How long /readyz waits for a part's answer: a PostgreSQL that keeps the connection but answers
 * nothing (a partition, a hung server) is down to a load balancer's check, which gives up itself
 * after a few seconds (the ops audit of stop 65: /readyz gave no answer at all).
 */
export const READY_WAIT_MS = 2000;
const bounded = <T>(p: Promise<T>, late: T): Promise<T> => atMost(p, READY_WAIT_MS, late);

export class Status {
  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
    private readonly control: LinkControl,
    /** Redis's state (src/db/redis-probe.ts); null without REDIS_URL. */
    private readonly redis: (() => Promise<"up" | "down">) | null = null,
  ) {}

  get linkUp(): boolean {
    return this.out.online;
  }

  async ready(): Promise<Readiness> {
    const [database, xmpp, redis] = await Promise.all([bounded(this.db.ping(), false), bounded(this.control.readiness(), "down" as const), this.redis && bounded(this.redis(), "down" as const)]);
    return { database: database ? "up" : "down", xmpp, ...(redis ? { redis } : {}) };
  }
}
