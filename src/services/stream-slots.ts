// What an open event stream holds on this instance: its place under the per-account cap (a
// StreamSlot: src/services/local-stream-slots.ts or src/db/redis-slots.ts), and its Follower, fed
// by the account's shared AccountReader.
// Positions are log positions: a follower at P has been handed every event of the account up to
// seq P that is for its session (the account's events commit in seq order, so a read that returned
// up to P, or nothing after P, has seen all of them). A joined follower is never behind its
// reader (P >= reader.pos), so the reader's next read covers everything it still needs; a
// follower behind the reader reads on its own until it can join.
import type { Account } from "../domain/account.js";
import { PAGE_BYTES } from "../domain/page.js";
import { sseFrame } from "../domain/sse-frame.js";
import type { StreamSlot } from "../domain/stream-cap.js";
import { withPurgeGap, type EventItem, type FeedPort, type LiveSession, type LogEvent } from "./feed-port.js";

export const PAGE = 500;
/**
 * A joined follower with more events than this waiting for its consumer, or more characters of
 * their SSE frames than MAX_QUEUED_CHARS, reads on its own again: its queue is dropped, and it reads
 * the log a page at a time as its consumer takes them. The frames are built here, once per event
 * and shared by every stream that writes it (src/domain/sse-frame.ts), instead of at the write.
 */
const MAX_QUEUED = 2 * PAGE;
const MAX_QUEUED_CHARS = 2 * PAGE_BYTES;

/** One account's log, read once for all its followers on this instance that are live at `pos`. */
export class AccountReader {
  /** Read up to here; null while no follower has joined. */
  pos: number | null = null;
  /** Opens in flight and followers: the reader goes when none is left. */
  refs = 0;
  /** Every follower of the account here, joined or catching up. */
  readonly all = new Set<Follower>();
  readonly joined = new Set<Follower>();
  /** Receipts a stream here has answered (claimReceipts is exactly-once anyway: this saves the others a transaction). */
  readonly answered = new Set<number>();
  /**
   * The log may have grown since the last read started (set by NOTIFY, cleared by a read). False
   * at first: the reader subscribes before its first follower reads the head it joins at (at the
   * open, or at the end of its own catch-up read), so only growth heard since needs a read; a
   * stream that opens at the head costs no read of the log.
   */
  private dirty = false;
  private reading = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly feed: FeedPort,
    readonly accountId: number,
  ) {
    this.unsubscribe = feed.subscribe(accountId, (g) => {
      for (const f of this.all) if (!f.isJoined) f.poke();
      // This instance's own append: taken as it is if the reader is exactly before it, else read.
      if (g?.appended && this.take(g.appended)) return;
      // A NOTIFY for what the reader already has (its own append, taken): no read.
      if (g && this.pos !== null && this.pos >= g.head) return;
      this.dirty = true;
      void this.pump();
    });
  }

  /** Every event of the account in (base, base + n]: pushed to the joined followers if the reader is exactly at base. */
  private take(a: { base: number; events: LogEvent[] }): boolean {
    if (this.reading || this.pos !== a.base || this.joined.size === 0) return false;
    this.pos = a.base + a.events.length;
    for (const f of this.joined) f.push(a.events, this.pos);
    return true;
  }

  /** The highest position a follower here has written (a new session starts after it). */
  delivered(): number {
    let max = 0;
    for (const f of this.all) max = Math.max(max, f.delivered);
    return max;
  }

  /** A follower at `pos` joins, unless the reader is ahead of it (it then reads on its own first). */
  join(f: Follower, pos: number): boolean {
    if (this.pos === null) this.pos = pos;
    else if (this.pos > pos) return false;
    this.joined.add(f);
    void this.pump();
    return true;
  }

  leave(f: Follower): void {
    this.all.delete(f);
    this.joined.delete(f);
    if (this.joined.size === 0 && !this.reading) this.pos = null;
  }

  stop(): void { this.unsubscribe(); } // prettier-ignore

  private async pump(): Promise<void> {
    if (this.reading || !this.dirty || this.joined.size === 0) return;
    this.reading = true;
    try {
      let more = false;
      do {
        this.dirty = false;
        const from = this.pos!;
        let page: LogEvent[];
        ({ events: page, more } = await this.feed.read(this.accountId, from));
        page = withPurgeGap(page, from);
        const upTo = page.length ? page[page.length - 1]!.seq : from;
        this.pos = upTo;
        for (const f of this.joined) f.push(page, upTo);
      } while ((this.dirty || more) && this.joined.size > 0);
    } catch (err) {
      // Its streams end and their clients resume with Last-Event-ID (as when a stream's own read fails).
      for (const f of this.joined) f.fail(err);
      this.joined.clear();
    } finally {
      this.reading = false;
      if (this.joined.size === 0) this.pos = null;
    }
  }
}

type Batch = { events: LogEvent[]; upTo: number; chars: number };

/**
 * One open stream: an async iterable of event batches. The consumer writes each batch before
 * asking for the next; only then does the stream count it as delivered (receipts, session cursor).
 */
export class Follower implements AsyncIterable<EventItem[]> {
  isJoined = false;
  /** Position the consumer has written. */
  delivered: number;
  private closedFlag = false;
  /** Catching up: the log may have grown since this follower's last read. */
  private dirty = true;
  private wake: (() => void) | null = null;
  /** Joined: batches from the reader, waiting for the consumer. */
  private queue: Batch[] = [];
  private queued = 0;
  private queuedChars = 0;
  /** The consumer holds a batch up to `handed` and has not written it yet. */
  private busy = false;
  private handed: number;
  private failure: unknown = null;

  constructor(
    private readonly feed: FeedPort,
    private readonly reader: AccountReader,
    private readonly account: Account,
    private readonly live: LiveSession,
    /** Handed to the consumer (or skipped as another session's) up to here. */
    private pos: number,
    /** A `resync` event to send first, when the cursor was older than the retained log. */
    readonly resync: EventItem | null,
    private readonly slot: StreamSlot,
    atHead: boolean,
  ) {
    this.delivered = this.handed = pos;
    reader.all.add(this);
    // At the head of the log when the stream opened: nothing to replay, it follows the shared reader.
    if (atHead && reader.join(this, pos)) this.isJoined = true;
  }

  get resource(): string { return this.live.resource; } // prettier-ignore

  /** A heartbeat: the client is still there. */
  alive(): void {
    this.slot.refresh();
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.slot.release();
    this.reader.leave(this);
    this.feed.release(this.reader);
    this.wake?.();
    this.feed.closed(this.live, this.delivered);
  }

  /** @internal The log grew (while catching up). */
  poke(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** @internal The reader's read (pos, upTo]: this session's events after this follower's position. */
  push(page: LogEvent[], upTo: number): void {
    const mine = page.filter((e) => e.seq > this.pos && (e.resource === null || e.resource === this.live.resource));
    this.pos = Math.max(this.pos, upTo);
    const last = this.queue[this.queue.length - 1];
    if (mine.length === 0 && last) last.upTo = this.pos;
    else if (mine.length === 0 && !this.busy) this.setDelivered(this.pos);
    else {
      const chars = mine.reduce((n, e) => n + sseFrame(e.item).length, 0);
      this.queue.push({ events: mine, upTo: this.pos, chars });
      this.queued += mine.length;
      this.queuedChars += chars;
      // A slow consumer: drop the queue and read on its own from what it was handed.
      if (this.queued > MAX_QUEUED || this.queuedChars > MAX_QUEUED_CHARS) this.fallBehind();
      this.wake?.();
    }
  }

  fail(err: unknown): void {
    this.failure = err;
    this.wake?.();
  }

  private fallBehind(): void {
    this.reader.joined.delete(this);
    this.isJoined = false;
    this.queue = [];
    this.queued = this.queuedChars = 0;
    this.pos = Math.max(this.handed, this.delivered);
    this.dirty = true;
  }

  private setDelivered(pos: number): void {
    this.delivered = Math.max(this.delivered, pos);
    this.live.delivered = Math.max(this.live.delivered, this.delivered);
  }

  /** Hands `events` to the consumer; once it has written them (even after close()), they count as delivered. */
  private async *hand(events: LogEvent[], upTo: number): AsyncGenerator<EventItem[]> {
    this.busy = true;
    this.handed = upTo;
    yield events.map((e) => e.item);
    this.busy = false;
    const receipts = events.filter((e) => e.receipt && !this.reader.answered.has(e.seq)).map((e) => e.seq);
    if (receipts.length) {
      await this.feed.answerReceipts(this.account, receipts);
      if (this.reader.answered.size > 10_000) this.reader.answered.clear();
      for (const s of receipts) this.reader.answered.add(s);
    }
    this.setDelivered(upTo);
    if (this.closedFlag) this.feed.deliveredAfterClose(this.live, upTo);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EventItem[]> {
    while (!this.closedFlag) {
      if (this.failure) throw this.failure;
      const batch = this.queue.shift();
      if (batch) {
        this.queued -= batch.events.length;
        this.queuedChars -= batch.chars;
        if (batch.events.length) yield* this.hand(batch.events, batch.upTo);
        else this.setDelivered(batch.upTo);
        continue;
      }
      if (!this.isJoined && this.dirty) {
        // Catching up on its own, then joining the reader (or reading again if it is ahead).
        this.dirty = false;
        let more: boolean;
        do {
          let page: LogEvent[];
          ({ events: page, more } = await this.feed.read(this.account.id, this.pos));
          if (this.closedFlag) return;
          page = withPurgeGap(page, this.pos);
          const upTo = page.length ? page[page.length - 1]!.seq : this.pos;
          const mine = page.filter((e) => e.resource === null || e.resource === this.live.resource);
          this.pos = upTo;
          if (mine.length) yield* this.hand(mine, upTo);
          else this.setDelivered(upTo);
        } while (more && !this.closedFlag);
        if (this.closedFlag) return;
        if (this.reader.join(this, this.pos)) this.isJoined = true;
        else this.dirty = true;
        continue;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}
