// Sends accepted outbound messages. Fresh messages go straight to the socket after their insert
// committed; anything still `queued` (link was down, an instance crashed, a send raced a
// reconnect) is drained from Postgres in `seq` order. Rows are claimed with
// FOR UPDATE SKIP LOCKED, so several gateway instances never drain the same message twice.
import type { Db } from "../db/client.js";
import { Batcher } from "../db/batch.js";
import type { Messages } from "../db/messages.js";
import { isSendable, type OutboundMessage } from "../domain/message.js";
import type { XmppLink } from "./link.js";
import { messageStanza } from "./stanzas.js";

interface QueuedRow {
  id: string;
  from: string;
  to: string;
  type: string;
  body: OutboundMessage["body"];
  subject: OutboundMessage["subject"];
  thread: string | null;
  lang: string | null;
  receipt: boolean;
  state: string | null;
}

export interface OutboxLog {
  warn(o: object, m: string): void;
  info(o: object, m: string): void;
}

export class Outbox {
  private draining = false;
  /** A full drain (after reconnect) sends in seq order, so fresh messages must wait behind it. */
  private ordered = false;
  private drainAgain = false;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly sentMarker: Batcher<string, void>;

  constructor(
    private readonly db: Db,
    messages: Messages,
    private readonly link: XmppLink,
    private readonly log: OutboxLog,
    /** Counts stanzas written (a metric). */
    private readonly onWritten: (n: number) => void = () => undefined,
    private readonly staleMs = 10_000,
  ) {
    this.sentMarker = new Batcher<string, void>(async (ids) => {
      await messages.markSent(ids);
      return ids.map(() => undefined);
    }, 2000, 1);
  }

  start(): void {
    this.link.on("online", () => void this.drain());
    this.sweeper = setInterval(() => void this.drain(new Date(Date.now() - this.staleMs)), this.staleMs / 2);
    this.sweeper.unref();
    if (this.link.online) void this.drain();
  }

  /** Stops sweeping and waits until what was sent is recorded as sent. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.sentMarker.idle();
  }

  /**
   * Sends messages whose rows just committed and records them as sent once the server confirmed
   * them (see XmppLink.barrier). What is not written or not confirmed stays queued for the drain.
   */
  async sendNow(msgs: OutboundMessage[]): Promise<void> {
    if (this.draining && this.ordered) {
      this.drainAgain = true;
      return;
    }
    // Anything not sendable stays queued; the drain marks it failed.
    msgs = msgs.filter(isSendable);
    if (!this.link.write(msgs.map((m) => messageStanza(m).toString()))) return;
    this.onWritten(msgs.length);
    if (!(await this.link.barrier())) return;
    await Promise.all(msgs.map((m) => this.sentMarker.push(m.id))).catch((err: unknown) =>
      this.log.warn({ err: String(err) }, "marking messages sent failed; the sweep will resend them"),
    );
  }

  /**
   * Sends every queued message in order, in claimed batches, while the link is up. With
   * `olderThan` it is a sweep for stragglers (a crashed instance's, a failed mark-sent) and fresh
   * messages keep going straight out meanwhile.
   */
  async drain(olderThan?: Date): Promise<number> {
    if (this.draining || !this.link.online) return 0;
    this.draining = true;
    this.ordered = olderThan === undefined;
    let total = 0;
    try {
      do {
        this.drainAgain = false;
        for (;;) {
          const n = await this.drainBatch(olderThan);
          total += n;
          if (n === 0) break;
        }
      } while (this.drainAgain && this.link.online);
    } catch (err) {
      this.log.warn({ err: String(err) }, "outbox drain failed; will retry");
    } finally {
      this.draining = false;
      this.ordered = false;
    }
    if (total > 0) this.log.info({ sent: total }, "outbox drained");
    return total;
  }

  private drainBatch(olderThan?: Date): Promise<number> {
    return this.db.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<QueuedRow[]>`
        SELECT id::text, "from", "to", type, body, subject, thread, lang, receipt, state FROM message
        WHERE status = 'queued' AND direction = 'out' AND created_at < ${olderThan ?? new Date(Date.now() + 60_000)}
        ORDER BY seq LIMIT 500 FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return 0;
      const msgs = rows.map((r) => ({ ...r, type: r.type as OutboundMessage["type"], state: r.state as OutboundMessage["state"] }));
      // A stanza the server would refuse (too big, not well-formed) closes the link on every attempt
      // and would block the queue behind it for good: fail it instead.
      const stanzas = msgs.map((m) => ({ id: m.id, xml: isSendable(m) ? messageStanza(m).toString() : null }));
      const refused = stanzas.filter((s) => s.xml === null || !this.link.fits(s.xml)).map((s) => s.id);
      if (refused.length) {
        const error = JSON.stringify({ type: "modify", condition: "policy-violation", text: "not sendable: malformed or over MAX_STANZA_BYTES" });
        await tx.$executeRaw`UPDATE message SET status = 'failed', error = ${error}::jsonb, updated_at = now() WHERE id = ANY(${refused}::uuid[])`;
        this.log.warn({ ids: refused }, "queued messages that cannot be sent marked failed");
      }
      const sendable = stanzas.filter((s): s is { id: string; xml: string } => s.xml !== null && !refused.includes(s.id));
      if (!this.link.write(sendable.map((s) => s.xml))) return 0;
      this.onWritten(sendable.length);
      // Unconfirmed: roll back, so the rows stay queued and go out again after reconnection.
      if (!(await this.link.barrier())) throw new Error("the XMPP server did not confirm the batch");
      await tx.$executeRaw`UPDATE message SET status = 'sent', updated_at = now() WHERE id = ANY(${sendable.map((s) => s.id)}::uuid[]) AND status = 'queued'`;
      return rows.length;
    });
  }
}
