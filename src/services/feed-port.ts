// What an open event stream's Follower and its account's AccountReader (src/services/stream-slots.ts)
// are handed and need: the events as read from the log, and the EventFeed's side (src/services/events.ts).
import type { Account } from "../domain/account.js";
import type { EventType } from "../domain/events.js";

export interface EventItem {
  id: number;
  event: EventType;
  data: unknown;
  createdAt: string;
}

/**
 * The resync a reader gets first when its cursor is no longer a position it can resume from
 * exactly (src/db/event-reads.ts replayStarts): older than the retained log, or (`beyond`) past its
 * head; `from`: where it resumes.
 */
export const resyncItem = (from: number, beyond = false): EventItem => ({
  id: from,
  event: "resync",
  data: { reason: beyond ? "cursor beyond the event log's head: it is no position in this log" : "cursor older than the retained event log", from },
  createdAt: new Date().toISOString(),
});

/**
 * `page`, read from the log after `after`, with a resync first when it does not start right after
 * it. An account's events are numbered one by one, so the ones between were purged (EVENT_RETENTION)
 * while this reader was still behind them, a slow client's stream catching up say: it is told, as
 * a stream opened there is (replayStarts), rather than skip them in silence (the retention audit).
 */
export function withPurgeGap(page: LogEvent[], after: number): LogEvent[] {
  const first = page[0];
  if (!first || first.seq === after + 1) return page;
  const from = first.seq - 1;
  return [{ seq: from, resource: null, receipt: false, item: resyncItem(from) }, ...page];
}

/** An event as read from the log for streams: its item (shared by every stream that writes it) and what routes it. */
export interface LogEvent {
  seq: number;
  /** The one session it is for (RFC 6121 §8.5.3, a full JID), or null: every session. */
  resource: string | null;
  /** XEP-0184: a receipt is owed once a stream has written it. */
  receipt: boolean;
  item: EventItem;
}

/**
 * The account's log grew to `head`; with `appended`, this instance wrote every event in
 * (base, head] and they are these (already committed). null: anything may have been missed.
 */
export type LogGrowth = { head: number; appended?: { base: number; events: LogEvent[] } } | null;

/** A session with streams open on this instance. */
export interface LiveSession {
  accountId: number;
  resource: string;
  streams: number;
  /** The highest position its streams have written. */
  delivered: number;
}

/** What followers and readers need from the EventFeed. */
export interface FeedPort {
  /** The log after `after` (at most PAGE events, and a bounded size); `more`: read again after the last. */
  read(accountId: number, after: number): Promise<{ events: LogEvent[]; more: boolean }>;
  subscribe(accountId: number, fn: (g: LogGrowth) => void): () => void;
  answerReceipts(account: Account, seqs: number[]): Promise<void>;
  closed(live: LiveSession, delivered: number): void;
  deliveredAfterClose(live: LiveSession, delivered: number): void;
  /** A follower is done with its account's reader (an AccountReader): the last one stops it. */
  release(reader: ReaderRef): void;
}

/** What release() needs of an AccountReader (src/services/stream-slots.ts). */
export interface ReaderRef {
  readonly accountId: number;
  refs: number;
  stop(): void;
}
