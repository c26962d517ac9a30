// The link holder's bookkeeping for messages it wrote without a claim (src/services/delivery.ts):
// each is queued in Postgres until it is recorded as sent (taken out of the message queue), and
// goes through three states here: written (on the socket), awaiting (a barrier is under way behind
// it), confirmed (the server routed it; to be recorded as sent). One barrier serves every message
// written before it started, and the "sent" records ride on the next insert or go in one DELETE a
// moment later.
import { LRUCache } from "lru-cache";

/**
 * How many confirmed messages are remembered (see wasConfirmed): about two seconds of writes at
 * full rate (~1 MB), far longer than a hand-over waits for its drain (its NOTIFY, then one step).
 */
const REMEMBERED = 10_000;

export class DirectSends {
  private written: string[] = [];
  private awaiting: string[] = [];
  private confirmed: string[] = [];
  /** Handed to a statement that records them as sent; back to `confirmed` if it fails. */
  private marking = 0;
  private barrier: Promise<void> | null = null;
  /** Messages the server confirmed lately, recorded as sent or not yet. */
  private readonly recent = new LRUCache<string, true>({ max: REMEMBERED });

  constructor(
    private readonly confirm: () => Promise<boolean>,
    /** Called with what the server confirmed (to record it as sent soon). */
    private readonly onConfirmed: () => void,
    /** Called when a barrier failed: those messages are queued and no longer tracked. */
    private readonly onLost: (ids: string[]) => void,
    /**
     * How long a barrier waits for more writes before it starts. A barrier is a round trip through
     * the XMPP server (four stanzas to route and parse); at a steady 500 messages a second, one per
     * message cost more than the messages, and one per 10 ms still cost the XMPP server a quarter
     * of the stanzas it routed. Nothing waits for it but the "sent" record: a message reads
     * `queued` for about this long after it went out.
     */
    private readonly lingerMs = 25,
  ) {}

  /** Messages still `queued` in Postgres that this instance knows are on their way or routed. */
  get tracked(): number {
    return this.written.length + this.awaiting.length + this.confirmed.length + this.marking;
  }

  get hasConfirmed(): boolean {
    return this.confirmed.length > 0;
  }

  /** Written to the link just now: confirm them with the next barrier. */
  wrote(ids: string[]): void {
    this.written.push(...ids);
    if (!this.barrier) this.barrier = this.confirmAll().finally(() => (this.barrier = null));
  }

  private linger(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.lingerMs));
  }

  private async confirmAll(): Promise<void> {
    // A barrier at a time: what is written while one is under way waits for the next, so a burst
    // costs one or two pings however many messages it has.
    while (this.written.length > 0) {
      await this.linger();
      this.awaiting = this.written;
      this.written = [];
      const ok = await this.confirm().catch(() => false);
      const ids = this.awaiting;
      this.awaiting = [];
      if (ok) {
        for (const id of ids) this.recent.set(id, true);
        this.confirmed.push(...ids);
        this.onConfirmed();
      } else {
        // The link dropped: whatever was written since is as uncertain. They stay queued and the
        // drain sends them again after reconnection (at least once, as for a claimed batch).
        const lost = [...ids, ...this.written.splice(0)];
        this.onLost(lost);
      }
    }
  }

  /** Resolves once nothing written is waiting for its barrier. */
  async settled(): Promise<void> {
    while (this.barrier) await this.barrier;
  }

  /**
   * Whether the server confirmed this message, written here without a claim. An account's deletion
   * hands its queued messages over to the outbox (src/db/accounts.ts), a confirmed one too if its
   * "sent" record had not been written yet: the drain must not write it again.
   */
  wasConfirmed(id: string): boolean {
    return this.recent.has(id);
  }

  /** Takes the confirmed messages for a statement that records them as sent. */
  takeConfirmed(): string[] {
    const ids = this.confirmed.splice(0);
    this.marking += ids.length;
    return ids;
  }

  /** The statement that recorded `ids` as sent committed (ok) or failed (they wait for the next one). */
  marked(ids: string[], ok: boolean): void {
    this.marking -= ids.length;
    if (!ok) this.confirmed.unshift(...ids);
  }
}
