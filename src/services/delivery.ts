// Delivery of everything the gateway sends. Use cases record outbound stanzas in Postgres with the
// state change that caused them (messages as `queued` rows, other stanzas in the outbox); the
// instance holding the link drains them in sequence order: claim a batch, write it in one socket
// write, wait for the XMPP server's confirmation (OutboundPort.confirm), then record it as sent in
// the same transaction. Nothing is written that was not recorded first, and what was not
// confirmed stays queued for the next drain. Other instances wake the holder through NOTIFY.
import type { Database } from "../db/client.js";
import type { Tx } from "../db/client.js";
import { drainOnce, enqueue, wakeHolder, type DrainOutcome, type Queued } from "../db/outbox.js";
import { isSendable } from "../domain/message.js";
import type { Stanza } from "../domain/stanza.js";
import type { OutboundPort, ServiceLog, ServiceMetrics } from "./ports.js";

const BATCH = 500;
const RETRY_MS = 1000;

/** Whether this instance may write to the link now, and how its claims are fenced. */
export interface SendGate {
  readonly holder: boolean;
  fence(): { key: [number, number]; pid: number } | null;
}

const asStanza = (q: Queued): Stanza => (q.message ? { kind: "message", ...q.message } : q.stanza!);

export class Delivery {
  private wanted = false;
  private running: Promise<void> | null = null;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
    private readonly gate: SendGate,
    private readonly log: ServiceLog,
    private readonly metrics: Pick<ServiceMetrics, "messagesWritten">,
    private readonly sweepMs = 5000,
  ) {}

  private stopped = false;

  private get canSend(): boolean {
    return !this.stopped && this.gate.holder && this.out.online;
  }

  /** A safety net: drain every few seconds in case a wake-up was missed. */
  start(): void {
    this.sweeper = setInterval(() => this.kick(), this.sweepMs);
    this.sweeper.unref();
    this.kick();
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
    let recorded = false;
    const result = await this.db.transaction((tx) =>
      fn(tx, async (accountId, stanzas) => {
        if (stanzas.length === 0) return;
        recorded = true;
        await enqueue(tx, accountId, stanzas);
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

  /** Waits for a drain in progress (for an orderly shutdown). */
  async stop(): Promise<void> {
    // Stop first: otherwise wake-ups from other instances keep the drain going and the link
    // handover waits for their traffic to pause. What is left stays queued for the next holder.
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    await this.running;
  }

  private async pump(): Promise<void> {
    try {
      while (this.wanted && this.canSend) {
        this.wanted = false;
        // Until a batch comes back short: what is recorded meanwhile kicks again (`wanted`).
        while ((await drainOnce(this.db.pool, BATCH, this.gate.fence(), (rows) => this.send(rows))).more && this.canSend);
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, "outbound drain failed; retrying");
      setTimeout(() => this.kick(), RETRY_MS).unref();
    }
  }

  /** Writes one claimed batch and waits for the server's confirmation; null when nothing could be written. */
  private async send(rows: Queued[]): Promise<DrainOutcome | null> {
    if (!this.canSend) return null;
    // A message the server would refuse (malformed, too big) would close the link on every
    // attempt and block the queue behind it for good: it fails instead.
    const unsendable = rows.filter((q) => q.message && !isSendable(q.message));
    const sendable = rows.filter((q) => !unsendable.includes(q));
    const stanzas = sendable.map(asStanza);
    const refused = this.out.write(stanzas);
    if (refused === null) return null;
    const refusedRows = sendable.filter((_, i) => refused.includes(stanzas[i]!));
    const failed = [...unsendable, ...refusedRows].flatMap((q) => (q.message ? [q.message.id] : []));
    const refusedOther = refusedRows.filter((q) => q.stanza);
    if (refusedOther.length) this.log.warn({ seqs: refusedOther.map((q) => q.seq) }, "outbound stanzas over MAX_STANZA_BYTES dropped");
    if (failed.length) this.log.warn({ ids: failed }, "queued messages that cannot be sent marked failed");
    this.metrics.messagesWritten(sendable.filter((q) => q.message && !refusedRows.includes(q)).length);
    // Unconfirmed: roll back, so the rows stay queued and go out again after reconnection.
    if (!(await this.out.confirm())) throw new Error("the XMPP server did not confirm the batch");
    const sent = sendable.filter((q) => q.message && !failed.includes(q.message.id)).map((q) => q.message!.id);
    const error = { type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" };
    return { sent, failed, error, done: rows.filter((q) => q.stanza).map((q) => q.seq) };
  }
}
