// Delivery of everything the gateway sends. Use cases record outbound stanzas in Postgres with the
// state change that caused them (messages in the message queue, other stanzas in the outbox); the
// instance holding the link drains them in sequence order: claim a batch, write it in one socket
// write, wait for the XMPP server's confirmation (OutboundPort.confirm), then take it out of the
// queue in the same transaction (a message reads `sent` from then on: src/db/message-status.ts).
// Nothing is written that was not recorded first, and what was not confirmed stays queued for the
// next drain. Other instances wake the holder through NOTIFY.
//
// The direct path: when this instance alone writes to the link (single-link mode) and nothing else
// is queued ahead, the messages it inserts go on the link right after their insert commits, with
// no claim: no other instance sends, and the insert statement tells whether anything unknown to us
// is queued ahead of them (Messages.insertOutboundChecked). They are confirmed by a shared
// barrier and taken out of the queue in bulk (src/services/direct-sends.ts). Any doubt (a
// wake-up, a failed barrier, a refused stanza) falls back to the drain, which first settles what
// went out directly.
import { randomUUID } from "node:crypto";
import { cadence } from "../cadence.js";
import type { AnyTx, Database, SqlTx, Tx } from "../db/client.js";
import { drainOnce, enqueue, markSent, queuedCounts, tidyQueue, wakeHolder } from "../db/outbox.js";
import { isSendable, type OutboundMessage } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import { DirectSends } from "./direct-sends.js";
import { sendClaimed } from "./send-claimed.js";
import { QueueTidy } from "./queue-tidy.js";
import { LINK_BACKLOG_BYTES, type InsertCheck, type OutboundPort, type SendGate, type ServiceLog, type ServiceMetrics } from "./ports.js";

export type { InsertCheck, SendGate };

const BATCH = 500;
const RETRY_MS = 1000;
/** How long confirmed direct sends wait for an insert to carry their "sent" record. */
const MARK_LINGER_MS = 20;

export class Delivery {
  private wanted = false;
  private running: Promise<void> | null = null;
  /** A drain is under way: it sends what is inserted meanwhile (see pump()). */
  private draining = false;
  private stopSweeper: (() => void) | null = null;
  /** An insert of ours waited for the drain's last pass (see record()). */
  private heldBack = false;
  /** Names this instance in the NOTIFYs of what it records: it kicks its own drain after commit (see woken()). */
  readonly origin = randomUUID();
  /** Drain steps (claims) run so far (tests count them: delivery-wakeups, the lease fence in messaging). */
  readonly stats = { drainSteps: 0 };

  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
    private readonly gate: SendGate,
    private readonly log: ServiceLog,
    private readonly metrics: Pick<ServiceMetrics, "messagesWritten">,
    private readonly sweepMs = 5000,
  ) {}

  private stopped = false;
  /** Messages written whose confirmation never came: the peer may have them (src/db/outbox.ts drainOnce). */
  private readonly unconfirmed = new Set<string>();
  private readonly direct = new DirectSends(() => this.out.confirm(), () => this.scheduleMark(), (lost) => (lost.forEach((id) => this.unconfirmed.add(id)), this.kick()));
  private readonly tidy = new QueueTidy(() => tidyQueue(this.db.pool), (err) => this.log.warn({ err: String(err) }, "vacuuming the outbound queue failed"));
  /** Statements that depend on what `direct` tracks run one at a time (see record()). */
  private serial: Promise<unknown> = Promise.resolve();
  private markTimer: NodeJS.Timeout | null = null;

  private get canSend(): boolean {
    return !this.stopped && this.gate.holder && this.out.online;
  }

  /** A safety net: look every few seconds in case a wake-up was missed (see sweep()). */
  start(): void {
    this.stopSweeper = cadence.every(this.sweepMs, () => this.sweep());
    this.kick();
  }

  /**
   * The safety net's look. While the direct path is open, a drain would hold this instance's
   * inserts back while it runs (a latency spike every few seconds under steady load): first ask
   * whether anything this instance does not know of is queued, and drain only then.
   */
  private sweep(): void {
    if (this.canSend) this.tidy.run();
    if (!this.directOpen) return this.kick();
    void this.exclusively(async () => {
      const { queued, other } = await queuedCounts(this.db.pool, this.direct.tracked + 1);
      if (queued !== this.direct.tracked || other) this.kick();
    }).catch(() => this.kick());
  }

  /**
   * A NOTIFY on the outbox channel: rows recorded on some instance (null: the listener reconnected
   * and may have missed some). Our own recording already kicked the drain at its commit: a second
   * pass for its NOTIFY would find nothing.
   */
  woken(origin: string | null): void {
    if (origin !== this.origin) this.kick();
  }

  /** Rows were recorded (or the link came up): drain now if this instance holds the link. */
  kick(): void {
    this.wanted = true;
    if (!this.running && this.canSend)
      this.running = this.pump().finally(() => {
        this.running = null;
        // A kick that came after the pump's last look: start again rather than wait for the sweep.
        if (this.wanted) this.kick();
      });
  }

  /**
   * Runs a use case's transaction with a `send` that records stanzas in it: they commit with the
   * state change or not at all, and go out (from whichever instance holds the link) after commit.
   */
  async transaction<T>(fn: (tx: Tx, send: (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>) => Promise<T>): Promise<T> {
    return this.recording((body) => this.db.transaction(body), fn);
  }

  /** The same on a raw pg transaction (Database.sqlTransaction), for use cases that need no Prisma model. */
  async sqlTransaction<T>(fn: (tx: SqlTx, send: (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>) => Promise<T>): Promise<T> {
    return this.recording((body) => this.db.sqlTransaction(body), fn);
  }

  private async recording<X extends AnyTx, T>(
    run: (body: (tx: X) => Promise<T>) => Promise<T>,
    fn: (tx: X, send: (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    let recorded = false;
    const result = await run((tx) =>
      fn(tx, async (accountId, stanzas) => {
        if (stanzas.length === 0) return;
        recorded = true;
        await enqueue(tx, accountId, stanzas, this.origin);
      }),
    );
    if (recorded) this.kick();
    return result;
  }

  /** Rows this instance recorded outside a stanza-outbox transaction (messages): here or at the holder. */
  recorded(): void {
    if (this.canSend) this.kick();
    else void wakeHolder(this.db.pool).catch(() => undefined);
  }

  private exclusively<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs the insert of outbound messages made on this instance. `insert` gets the confirmed direct
   * sends to record as sent in the same statement and, when the direct path is open, how far to
   * count the queued messages ahead; it returns the messages it created and what it found ahead.
   * When nothing but our own direct sends is ahead, the new messages go on the link at once;
   * otherwise the drain sends them in sequence order, here or at the holder.
   */
  async record<T>(
    insert: (markSent: string[], countQueuedUpTo: number | null) => Promise<{ value: T; created: OutboundMessage[]; check: InsertCheck }>,
  ): Promise<T> {
    return this.exclusively(async () => {
      const open = this.directOpen;
      const marks = this.direct.takeConfirmed();
      const tracked = this.direct.tracked;
      let result: Awaited<ReturnType<typeof insert>>;
      try {
        result = await insert(marks, open ? tracked + 1 : null);
      } catch (err) {
        this.direct.marked(marks, false);
        throw err;
      }
      this.direct.marked(marks, true);
      this.tidy.took(marks.length);
      const { created, check } = result;
      if (created.length === 0) return result.value;
      // Ahead of these: exactly the direct sends we track (a count above means rows we do not
      // know of: drain; they stay queued whatever a receipt or error did to them meanwhile).
      const clear = open && this.directOpen && check.queuedBefore === tracked && !check.otherBefore;
      if (clear) this.writeDirect(created);
      // While a drain runs, the holder's own inserts do not wake it again (under steady load it
      // would never end): its last pass holds inserts back and takes them.
      else if (!(this.draining && this.gate.exclusive)) this.recorded();
      else this.heldBack = true;
      return result.value;
    });
  }

  /** The direct path is open: exclusive holder, link up, no drain running or wanted. */
  private get directOpen(): boolean {
    return this.canSend && this.gate.exclusive && !this.draining && !this.wanted && !this.backedUp;
  }

  /** The XMPP server has not read LINK_BACKLOG_BYTES of what was written to it. */
  private get backedUp(): boolean {
    return (this.out.backlogBytes ?? 0) >= LINK_BACKLOG_BYTES;
  }

  private writeDirect(messages: OutboundMessage[]): void {
    // A message the server would refuse goes through the drain, which marks it failed in order.
    if (!messages.every(isSendable)) return this.kick();
    const stanzas: Stanza[] = messages.map((m) => ({ kind: "message", ...m }));
    const refused = this.out.write(stanzas);
    if (refused === null) return this.kick();
    const written = messages.filter((_, i) => !refused.includes(stanzas[i]!));
    this.metrics.messagesWritten(written.length);
    if (written.length > 0) this.direct.wrote(written.map((m) => m.id));
    if (refused.length > 0) this.kick();
  }

  private scheduleMark(): void {
    if (this.markTimer) return;
    this.markTimer = setTimeout(() => {
      this.markTimer = null;
      void this.markConfirmed().catch((err: unknown) => {
        this.log.warn({ err: String(err) }, "recording sent messages failed; retrying");
        this.scheduleMark();
      });
    }, MARK_LINGER_MS);
  }

  /** Records the confirmed direct sends as sent (unless an insert already carried them). */
  private markConfirmed(): Promise<void> {
    return this.exclusively(async () => {
      if (!this.direct.hasConfirmed) return;
      const ids = this.direct.takeConfirmed();
      try {
        await markSent(this.db.pool, ids);
        this.direct.marked(ids, true);
        this.tidy.took(ids.length);
      } catch (err) {
        this.direct.marked(ids, false);
        throw err;
      }
    });
  }

  /** Before a drain: what went out directly is confirmed (or given up) and recorded as sent, so no claim picks it up again. */
  private async settleDirect(): Promise<void> {
    await this.direct.settled();
    await this.markConfirmed();
  }

  /** Resolves once no drain is running (tests that change the link's state between drains). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Waits for a drain in progress (for an orderly shutdown). */
  async stop(): Promise<void> {
    // Stop first: otherwise wake-ups from other instances keep the drain going and the link
    // handover waits for their traffic to pause. What is left stays queued for the next holder.
    this.stopped = true;
    this.stopSweeper?.();
    await this.running;
    await this.settleDirect().catch(() => undefined);
    if (this.markTimer) clearTimeout(this.markTimer);
  }

  private async pump(): Promise<void> {
    this.draining = true;
    try {
      while (this.wanted && this.canSend) {
        this.wanted = false;
        await this.settleDirect();
        // Until a batch comes back short: what other instances record meanwhile kicks again (`wanted`).
        await this.drainAll();
        // The last pass holds this instance's inserts back: after it nothing queued is unknown to
        // us, and the direct path opens for the inserts that waited. It reads the queue only if
        // one of them waited for it (anything else recorded meanwhile kicked: `wanted`).
        if (!this.wanted && this.canSend && this.gate.exclusive) {
          await this.exclusively(async () => {
            if (this.heldBack) {
              this.heldBack = false;
              await this.drainAll();
            }
            if (!this.wanted) this.draining = false;
          });
        }
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, "outbound drain failed; retrying");
      setTimeout(() => this.kick(), RETRY_MS).unref();
    } finally {
      this.draining = false;
    }
  }

  private async drainAll(): Promise<void> {
    let step = { claimed: 0, more: true };
    while (step.more && this.canSend) {
      this.stats.drainSteps++;
      // The XMPP server has not taken what it was given: the next batch waits, in PostgreSQL.
      while (this.out.writable && this.canSend && this.backedUp) await this.out.writable(LINK_BACKLOG_BYTES, RETRY_MS);
      step = await drainOnce(this.db.pool, BATCH, this.gate.fence(), (rows) => (this.canSend ? sendClaimed(rows, this.out, this.log, this.metrics, this.unconfirmed, (id) => this.direct.wasConfirmed(id)) : Promise.resolve(null)), this.unconfirmed, this.gate.drainIdleLimitMs);
      this.tidy.took(step.claimed);
    }
  }
}
