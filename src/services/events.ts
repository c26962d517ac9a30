// Following an account's event log: the JSON pages for pollers, and streams that replay from a
// cursor (or from where their session left off) and then follow the log live. A stream is woken
// by NOTIFY from any instance and reads Postgres from its cursor, so it can neither skip nor
// repeat an event. Streams keep their session alive; once a stream has written a message that
// asked for a XEP-0184 receipt, the receipt goes out (exactly once across streams).
import { randomUUID } from "node:crypto";
import type { Database } from "../db/client.js";
import { claimReceipts, logBounds, readEvents, type EventNotifier, type StoredEvent } from "../db/events.js";
import type { SessionRow, Sessions } from "../db/sessions.js";
import { accountJid, type Account } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import type { EventType } from "../domain/events.js";
import type { Stanza } from "../domain/stanza.js";
import type { Delivery } from "./delivery.js";
import type { StreamCap, StreamSlot } from "../domain/stream-cap.js";

const PAGE = 500;

export interface EventItem {
  id: number;
  event: EventType;
  data: unknown;
  createdAt: string;
}

const item = (e: StoredEvent): EventItem => ({ id: e.seq, event: e.type as EventType, data: e.data, createdAt: e.createdAt.toISOString() });
const resyncItem = (from: number): EventItem => ({ id: from, event: "resync", data: { reason: "cursor older than the retained event log", from }, createdAt: new Date().toISOString() });

/** An event id from a cursor (Last-Event-ID or ?since=); null when absent. */
export function parseCursor(raw: string | undefined, field: string): number | null {
  if (raw === undefined || raw === "") return null;
  if (!/^[0-9]{1,18}$/.test(raw)) throw new AppError("invalid-cursor", `${field} must be an event id`, { field });
  return Number(raw);
}

export class EventFeed {
  constructor(
    private readonly db: Database,
    private readonly sessions: Sessions,
    private readonly notifier: EventNotifier,
    private readonly delivery: Delivery,
    private readonly slots: StreamCap,
    private readonly domain: string,
  ) {}

  /** A cursor older than the retained log gets a `resync` first; returns where to read from. */
  private async resyncPoint(accountId: number, after: number): Promise<{ resync: boolean; after: number }> {
    const { oldest, head } = await logBounds(this.db.prisma, accountId);
    const firstKept = oldest ?? head + 1;
    if (after < firstKept - 1 && after < head) return { resync: true, after: firstKept - 1 };
    return { resync: false, after };
  }

  /** GET /v1/events as JSON: one page of the log after `cursor`. */
  async page(account: Account, cursor: number | null, limit: number, resource: string | null): Promise<{ items: EventItem[]; nextSince: string }> {
    const start = await this.resyncPoint(account.id, cursor ?? 0);
    const items = start.resync ? [resyncItem(start.after)] : [];
    for (const e of await readEvents(this.db.prisma, account.id, start.after, limit - items.length, resource)) items.push(item(e));
    return { items, nextSince: String(items.length ? items[items.length - 1]!.id : start.after) };
  }

  /** Opens a stream on a session (created if new); `cursor` null resumes where the session left off. */
  async open(account: Account, resource: string, cursor: number | null): Promise<Follower> {
    const slot = await this.slots.acquire(account.id);
    try {
      const session = await this.sessions.streamOpened(account.id, resource);
      const after = cursor ?? (session.existed ? session.deliveredSeq : await this.sessions.accountDeliveredSeq(account.id));
      const start = await this.resyncPoint(account.id, after);
      return new Follower(this, account, resource, start.after, start.resync ? resyncItem(start.after) : null, slot);
    } catch (err) {
      slot.release();
      throw err;
    }
  }

  /** @internal Used by Follower. */
  read(accountId: number, after: number, resource: string): Promise<StoredEvent[]> {
    return readEvents(this.db.prisma, accountId, after, PAGE, resource);
  }

  /** @internal Wakes `fn` whenever the account's log grows (on any instance). */
  subscribe(accountId: number, fn: () => void): () => void {
    return this.notifier.subscribe(accountId, fn);
  }

  /** @internal Session bookkeeping of a stream. */
  touch(accountId: number, resource: string, delivered: number): void {
    void this.sessions.touch(accountId, resource, delivered).catch(() => undefined);
  }

  /** @internal */
  closed(accountId: number, resource: string): void {
    void this.sessions.streamClosed(accountId, resource).catch(() => undefined);
  }

  /** @internal XEP-0184 §5: `received` for messages a stream has written, each once. */
  async answerReceipts(account: Account, seqs: number[]): Promise<void> {
    const from = accountJid(account.localpart, this.domain);
    await this.delivery.transaction(async (tx, send) => {
      const receipts: Stanza[] = (await claimReceipts(tx, account.id, seqs)).map((r) => ({ kind: "receipt", from, to: r.to, id: r.id, stanzaId: randomUUID() }));
      await send(account.id, receipts);
    });
  }

  /** GET /v1/sessions. */
  listSessions(accountId: number): Promise<SessionRow[]> {
    return this.sessions.list(accountId);
  }
}

/**
 * One open stream: an async iterable of event batches. The consumer writes each batch before
 * asking for the next; only then does the stream count it as delivered (receipts, session cursor).
 */
export class Follower implements AsyncIterable<EventItem[]> {
  private closedFlag = false;
  private dirty = true;
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly feed: EventFeed,
    private readonly account: Account,
    readonly resource: string,
    private after: number,
    /** A `resync` event to send first, when the cursor was older than the retained log. */
    readonly resync: EventItem | null,
    private readonly slot: StreamSlot,
  ) {
    this.unsubscribe = feed.subscribe(account.id, () => {
      this.dirty = true;
      this.wake?.();
    });
  }

  /** A heartbeat: the client is still there. */
  alive(): void {
    this.slot.refresh();
    this.feed.touch(this.account.id, this.resource, this.after);
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.slot.release();
    this.unsubscribe();
    this.wake?.();
    this.feed.closed(this.account.id, this.resource);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EventItem[]> {
    while (!this.closedFlag) {
      if (!this.dirty) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      this.dirty = false;
      let batch: StoredEvent[];
      do {
        batch = await this.feed.read(this.account.id, this.after, this.resource);
        if (this.closedFlag || batch.length === 0) break;
        yield batch.map(item);
        // Resumed: the consumer has written the batch.
        this.after = batch[batch.length - 1]!.seq;
        const receipts = batch.filter((e) => e.receiptTo && !e.receiptSent).map((e) => e.seq);
        if (receipts.length) await this.feed.answerReceipts(this.account, receipts);
        this.alive();
      } while (batch.length === PAGE);
    }
  }
}
