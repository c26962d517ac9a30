// Delivery of accepted outbound messages. Fresh messages are written as soon as their insert
// committed; anything still `queued` (the link was down, an instance crashed, a send raced a
// reconnect) is drained from Postgres in `seq` order. A message counts as sent only once the
// XMPP server confirmed everything written before it (OutboundPort.confirm).
import type { Database } from "../db/client.js";
import { claimQueued, markSent, markUnsendable } from "../db/outbox.js";
import { isSendable, type OutboundMessage } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import { Batcher } from "./batcher.js";
import type { OutboundPort, ServiceLog, ServiceMetrics } from "./ports.js";

const DRAIN_BATCH = 500;
const asStanza = (m: OutboundMessage): Stanza => ({ kind: "message", ...m });

export class Delivery {
  private draining = false;
  /** A full drain (after reconnect) sends in seq order, so fresh messages must wait behind it. */
  private ordered = false;
  private drainAgain = false;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly sentMarker: Batcher<string, void>;

  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
    private readonly log: ServiceLog,
    private readonly metrics: Pick<ServiceMetrics, "messagesWritten">,
    private readonly staleMs = 10_000,
  ) {
    this.sentMarker = new Batcher<string, void>(async (ids) => {
      await markSent(db.pool, ids);
      return ids.map(() => undefined);
    }, 2000, 1);
  }

  /** Sweeps for stragglers (a crashed instance's, a failed mark-sent) every few seconds. */
  start(): void {
    this.sweeper = setInterval(() => void this.drain(new Date(Date.now() - this.staleMs)), this.staleMs / 2);
    this.sweeper.unref();
    if (this.out.online) void this.drain();
  }

  /** Stops sweeping and waits until what was sent is recorded as sent. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.sentMarker.idle();
  }

  /**
   * Sends messages whose rows just committed and records them as sent once the server confirmed
   * them. What is not written or not confirmed stays queued for the drain.
   */
  async sendNow(msgs: OutboundMessage[]): Promise<void> {
    if (this.draining && this.ordered) {
      this.drainAgain = true;
      return;
    }
    // Anything not sendable stays queued; the drain marks it failed.
    msgs = msgs.filter(isSendable);
    if (this.out.write(msgs.map(asStanza)) === null) return;
    this.metrics.messagesWritten(msgs.length);
    if (!(await this.out.confirm())) return;
    await Promise.all(msgs.map((m) => this.sentMarker.push(m.id))).catch((err: unknown) =>
      this.log.warn({ err: String(err) }, "marking messages sent failed; the sweep will resend them"),
    );
  }

  /**
   * Sends every queued message in order, in claimed batches, while the link is up. With
   * `olderThan` it is a sweep for stragglers and fresh messages keep going straight out meanwhile.
   */
  async drain(olderThan?: Date): Promise<number> {
    if (this.draining || !this.out.online) return 0;
    this.draining = true;
    this.ordered = olderThan === undefined;
    let total = 0;
    try {
      do {
        this.drainAgain = false;
        for (;;) {
          const n = await this.drainBatch(olderThan ?? null);
          total += n;
          if (n === 0) break;
        }
      } while (this.drainAgain && this.out.online);
    } catch (err) {
      this.log.warn({ err: String(err) }, "outbox drain failed; will retry");
    } finally {
      this.draining = false;
      this.ordered = false;
    }
    if (total > 0) this.log.info({ sent: total }, "outbox drained");
    return total;
  }

  private drainBatch(olderThan: Date | null): Promise<number> {
    return this.db.transaction(async (tx) => {
      const msgs = await claimQueued(tx, olderThan, DRAIN_BATCH);
      if (msgs.length === 0) return 0;
      // A stanza the server would refuse (too big, not well-formed) closes the link on every attempt
      // and would block the queue behind it for good: fail it instead.
      const unsendable = msgs.filter((m) => !isSendable(m)).map((m) => m.id);
      const sendable = msgs.filter(isSendable);
      const refused = this.out.write(sendable.map(asStanza));
      if (refused === null) return 0;
      const failed = [...unsendable, ...refused.map((s) => (s.kind === "message" ? s.id : ""))];
      if (failed.length) {
        await markUnsendable(tx, failed, { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" });
        this.log.warn({ ids: failed }, "queued messages that cannot be sent marked failed");
      }
      this.metrics.messagesWritten(sendable.length - refused.length);
      // Unconfirmed: roll back, so the rows stay queued and go out again after reconnection.
      if (!(await this.out.confirm())) throw new Error("the XMPP server did not confirm the batch");
      await markSent(tx, sendable.filter((m) => !failed.includes(m.id)).map((m) => m.id));
      return msgs.length;
    });
  }
}
