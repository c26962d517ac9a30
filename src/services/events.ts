// Following an account's event log: the JSON pages for pollers, and streams that replay from a
// cursor (or from where their session left off) and then follow the log live. On each instance
// one AccountReader per account reads the log once for all the account's streams that are live at
// its position (woken by NOTIFY from any instance, reading Postgres from that position, so no
// event is skipped or repeated); a stream behind replays on its own, then joins it. Sessions: one
// UPDATE a heartbeat, one statement a burst of opens or closes. Receipts (XEP-0184): once, when written.
import { randomUUID } from "node:crypto";
import type { Database } from "../db/client.js";
import type { EventNotifier } from "../db/event-notifier.js";
import { readEvents, replayStarts, type ReplayStart } from "../db/event-reads.js";
import { claimReceipts, type StoredEvent } from "../db/events.js";
import type { OpenedSession, SessionClose, SessionOpen, SessionRow, Sessions } from "../db/sessions.js";
import { accountJid, type Account } from "../domain/account.js";
import { occupantJid } from "../domain/muc.js";
import { AppError } from "../domain/errors.js";
import type { EventType } from "../domain/events.js";
import { ackType, type Stanza } from "../domain/stanza.js";
import type { StreamCap, StreamSlot } from "../domain/stream-cap.js";
import { Batcher } from "./batcher.js";
import { EndedSessions } from "./ended-sessions.js";
import type { Delivery } from "./delivery.js";
import { NO_BLOCKS, type BlockCheck } from "./ports.js";
import { resyncItem, type EventItem, type FeedPort, type LiveSession, type LogEvent, type LogGrowth } from "./feed-port.js";
import { AccountReader, Follower, PAGE } from "./stream-slots.js";

export { Follower, type EventItem, type LogEvent };

const item = (e: StoredEvent): EventItem => ({ id: e.seq, event: e.type as EventType, data: e.data, createdAt: e.createdAt.toISOString() });
const logEvent = (e: StoredEvent): LogEvent => ({ seq: e.seq, resource: e.resource, receipt: e.receiptTo !== null && !e.receiptSent, item: item(e) });
const key = (accountId: number, resource: string) => `${accountId}\u0000${resource}`;

/** Same-session items of a batch merged: `n` streams, the highest cursor. */
function merge<T extends SessionOpen & { deliveredSeq?: number }>(items: T[]): { distinct: T[]; index: number[] } {
  const at = new Map<string, number>();
  const distinct: T[] = [];
  const index = items.map((i) => {
    const k = key(i.accountId, i.resource);
    const j = at.get(k);
    if (j === undefined) {
      at.set(k, distinct.length);
      distinct.push({ ...i });
      return distinct.length - 1;
    }
    const d = distinct[j]!;
    d.n += i.n;
    if (d.deliveredSeq !== undefined) d.deliveredSeq = Math.max(d.deliveredSeq, i.deliveredSeq ?? 0);
    return j;
  });
  return { distinct, index };
}

/** An event id from a cursor (Last-Event-ID or ?since=); null when absent. */
export function parseCursor(raw: string | undefined, field: string): number | null {
  if (raw === undefined || raw === "") return null;
  if (!/^[0-9]{1,18}$/.test(raw)) throw new AppError("invalid-cursor", `${field} must be an event id`, { field });
  return Number(raw);
}

export class EventFeed implements FeedPort {
  /** Reads of the event log for streams (shared readers and streams catching up), for /metrics. */
  readonly stats = { logReads: 0 };
  private readonly readers = new Map<number, AccountReader>();
  /** Sessions with a stream open on this instance: what heartbeat() keeps alive. */
  private readonly live = new Map<string, LiveSession>();
  private touching = false;
  private readonly opens = new Batcher<SessionOpen, OpenedSession>(async (items) => {
    const { distinct, index } = merge(items);
    const rows = await this.sessions.streamsOpened(distinct);
    return index.map((j) => rows[j]!);
  }, 1000);
  private readonly closes = new Batcher<SessionClose, void>(async (items) => {
    await this.sessions.streamsClosed(merge(items).distinct);
    return items.map(() => undefined);
  }, 1000);

  /** Where replaying streams start (resync or not): one statement for a burst of opens. */
  private readonly starts = new Batcher<{ accountId: number; after: number }, ReplayStart>((items) => replayStarts(this.db.pool, items, this.retentionMs), 1000);

  constructor(
    private readonly db: Database,
    private readonly sessions: Sessions,
    private readonly notifier: EventNotifier,
    private readonly delivery: Delivery,
    private readonly slots: StreamCap,
    private readonly domain: string,
    /** EVENT_RETENTION: events older than this are gone for readers, purged or not (API.md Events). */
    private readonly retentionMs: number,
    /** The account's blocklist: a receipt owed to a JID it blocked since is not sent (XEP-0191 §3.3). */
    private readonly blocks: Pick<BlockCheck, "confirmBlocks" | "warm"> = NO_BLOCKS,
    /** How long a stream resuming a session that DELETE ended is refused (endedWindowSeconds). */
    endedWindowSeconds = 60,
  ) {
    this.ended = new EndedSessions(db, endedWindowSeconds);
  }

  /**
   * Sessions DELETE /v1/sessions/{resource} ended within the window that this instance heard of
   * (their NOTIFY: every instance hears it, well before the ended streams' clients reconnect after
   * SSE_RETRY) or read from the table when its listener (re)connected (loadEnds).
   */
  private readonly ended: EndedSessions;

  /**
   * GET /v1/events as JSON: one page of the log after `cursor` (`resource`: that session's events
   * only). A cursor older than the retention window gets a `resync` first (replayStarts); no cursor
   * reads from the oldest event inside the window: there is nothing the caller missed. XEP-0184
   * receipts owed for the messages on the page are answered before it is returned, as a stream
   * does once it has written them (API.md Messages); not for a page nobody reads (`receipts` false: HEAD).
   */
  async page(account: Account, cursor: number | null, limit: number, resource: string | null, receipts = true): Promise<{ items: EventItem[]; nextSince: number }> {
    const [start] = await replayStarts(this.db.pool, [{ accountId: account.id, after: cursor ?? 0 }], this.retentionMs);
    // An id that is gone reads an empty log: it is no account's (a caller's cached id, src/http/context.ts).
    if (start!.gone) throw new AppError("account-not-found", `${account.localpart} was deleted`);
    const resync = start!.resync && cursor !== null;
    const items = resync ? [resyncItem(start!.after, start!.beyond)] : [];
    const room = limit - items.length;
    const { events, more } = await readEvents(this.db.pool, account.id, start!.after, room, resource);
    for (const e of events) items.push(item(e));
    const owed = events.filter((e) => e.receiptTo !== null && !e.receiptSent).map((e) => e.seq);
    if (receipts && owed.length) await this.answerReceipts(account, owed);
    const last = items.length ? items[items.length - 1]!.id : start!.after;
    // A short page read everything up to the head it started from: a session's cursor moves past
    // the other sessions' events too, or it would stay behind them until it read as older than the
    // retained log (a false resync) and every poll would read them again.
    return { items, nextSince: more ? last : Math.max(last, start!.head) };
  }

  /** A JSON poll: the caller's session (if there is one) is still there, as an open stream would say. */
  keepAlive(accountId: number, resource: string): Promise<void> {
    return this.sessions.keepAlive(accountId, resource);
  }

  /**
   * A stream that resumes (Last-Event-ID: an SSE client's own reconnect) a session DELETE ended a
   * short while ago, and that nothing opened again since: answered 204, so that the client gives
   * up rather than open it again (src/db/session-ends.ts).
   */
  resumesEndedSession(accountId: number, resource: string, issuedAt: number | null): Promise<boolean> {
    return this.ended.resumesEnded(accountId, resource, issuedAt);
  }

  /** HEAD of the stream view: refused (429 too-many-streams) exactly when a GET would be, without opening one. */
  async canOpen(account: Account): Promise<void> {
    (await this.slots.acquire(account.id)).release();
  }

  /** Opens a stream on a session (created if new); `cursor` null resumes where the session left off. */
  async open(account: Account, resource: string, cursor: number | null): Promise<Follower> {
    return (await this.start(account, resource, cursor, null))!;
  }

  /**
   * A stream that resumes its session (Last-Event-ID, after resumesEndedSession let it through),
   * with a credential issued at `issuedAt`: null when it turns out to follow the session's end
   * after all (a DELETE that committed while it was being opened, not heard here yet), refused as
   * resumesEndedSession would have; the session row its open re-created is gone again.
   */
  resume(account: Account, resource: string, cursor: number, issuedAt: number | null): Promise<Follower | null> {
    return this.start(account, resource, cursor, { issuedAt });
  }

  private async start(account: Account, resource: string, cursor: number | null, resume: { issuedAt: number | null } | null): Promise<Follower | null> {
    // Ends heard from here on may be of this session, committed after its row was opened below.
    const heard = this.ended.mark();
    const slot: StreamSlot = await this.slots.acquire(account.id);
    // Subscribed to the account's NOTIFY before the log's head is read below: nothing is missed.
    let reader = this.readers.get(account.id);
    if (!reader) this.readers.set(account.id, (reader = new AccountReader(this, account.id)));
    reader.refs++;
    try {
      const s = await this.opens.push({ accountId: account.id, resource, n: 1 });
      if (s.gone) throw new AppError("account-not-found", `${account.localpart} was deleted`);
      // A resume that found no session made one: after a DELETE (on any instance, heard here or
      // not) that is the ended session opened again. Rare (a session's row outlives its streams by
      // the event retention), so this statement costs an ordinary reconnect nothing.
      if (resume && s.inserted && (await this.ended.undoResume(account.id, resource, resume.issuedAt))) {
        slot.release();
        this.release(reader);
        return null;
      }
      // A new session starts after what the account's other sessions got (here: not yet flushed too).
      // A cursor beyond the head is no position in this log: a resync (replayStarts).
      let after = cursor ?? Math.min(s.deliveredSeq ?? Math.max(s.accountDeliveredSeq, reader.delivered()), s.head);
      let resync = false;
      let beyond: boolean | undefined;
      // Only a stream with something to replay can have missed events (a second, batched statement).
      if (after !== s.head) ({ resync, after, beyond } = await this.starts.push({ accountId: account.id, after }));
      let live = this.live.get(key(account.id, resource));
      if (!live) this.live.set(key(account.id, resource), (live = { accountId: account.id, resource, streams: 0, delivered: 0 }));
      live.streams++;
      const f = new Follower(this, reader, account, live, after, resync ? resyncItem(after, beyond) : null, slot, after === s.head);
      // Its end was heard while this open was under way, after endStreams had looked for its streams:
      // the DELETE ended a session this stream was already on, and it ends as the others did. Unless
      // this open created the row and the end came first (the open is the session's return): the row
      // is still there then, while an end after the open removed it (one read, only in this race;
      // registered above, the stream meanwhile hears an end as any other does).
      if (this.ended.heardSince(account.id, resource, heard) && (!s.inserted || (await this.ended.gone(account.id, resource).catch(() => true)))) f.close();
      return f;
    } catch (err) {
      slot.release();
      this.release(reader);
      throw err;
    }
  }

  /** @internal The log after `after`, every session's events (a stream picks its own). */
  read(accountId: number, after: number): Promise<{ events: LogEvent[]; more: boolean }> {
    this.stats.logReads++;
    return readEvents(this.db.pool, accountId, after, PAGE, null).then(({ events, more }) => ({ events: events.map(logEvent), more }));
  }

  /** @internal Wakes `fn` whenever the account's log grows (on any instance), with the events if this instance appended them. */
  subscribe(accountId: number, fn: (g: LogGrowth) => void): () => void {
    return this.notifier.subscribe(accountId, (g) => fn(g && { head: g.head, appended: g.appended && { base: g.appended.base, events: g.appended.events.map(logEvent) } }));
  }

  /** @internal A follower closed: its session counts one stream fewer (batched with other closes). */
  closed(live: LiveSession, delivered: number): void {
    if (--live.streams === 0) this.live.delete(key(live.accountId, live.resource));
    void this.closes.push({ accountId: live.accountId, resource: live.resource, n: 1, deliveredSeq: delivered }).catch(() => undefined);
  }

  /** @internal A batch the consumer finished writing after its stream closed. */
  deliveredAfterClose(live: LiveSession, delivered: number): void {
    void this.sessions.touch(live.accountId, live.resource, delivered).catch(() => undefined);
  }

  /** A session was ended (DELETE /v1/sessions/{resource}, on any instance; null: the account was deleted): its streams here end too. */
  endStreams(accountId: number, resource: string | null): void {
    if (resource !== null) this.ended.heardOf(accountId, resource);
    for (const f of [...(this.readers.get(accountId)?.all ?? [])]) if (resource === null || f.resource === resource) f.close();
  }

  /**
   * At start and after each reconnect of the listener: the ends inside the window from the table
   * (EndedSessions.load), and the streams open here on a session that was ended meanwhile and has
   * no row now, which missed their endStreams. Only streams open before the read: one opened
   * since made its session's row again, after the read saw none.
   */
  async loadEnds(): Promise<void> {
    const before = new Map([...this.readers].map(([id, r]) => [id, [...r.all]]));
    for (const m of await this.ended.load()) for (const f of before.get(m.accountId) ?? []) if (f.resource === m.resource) f.close();
  }

  /** @internal The reader has no stream and no open in flight left. */
  release(reader: AccountReader): void {
    if (--reader.refs > 0) return;
    reader.stop();
    if (this.readers.get(reader.accountId) === reader) this.readers.delete(reader.accountId);
  }

  /**
   * Once per heartbeat interval (the SSE writer's shared timer): one UPDATE for all sessions with
   * a stream open here, so they stay alive (see Sessions.expire) and record what they delivered.
   */
  async heartbeat(): Promise<void> {
    if (this.touching || this.live.size === 0) return;
    this.touching = true;
    try {
      const all = [...this.live.values()].map((l) => ({ accountId: l.accountId, resource: l.resource, deliveredSeq: l.delivered }));
      for (let i = 0; i < all.length; i += 5000) await this.sessions.touchMany(all.slice(i, i + 5000));
    } catch {
      // The next heartbeat tries again; sessions outlive a few missed ones (3 heartbeats, at least the grace period).
    } finally {
      this.touching = false;
    }
  }

  /**
   * XEP-0184 §5: `received` for messages a stream has written or a webhook delivered, each once,
   * to a sender that may see the account's presence (§8); others are settled unsent, as is one to a
   * JID the account has blocked since (the home server routes nothing to it, XEP-0191 §3.3). Settled
   * for good, so a block the cached list holds is confirmed by the committed one first (an unblock
   * elsewhere may not have reached the cache); a receipt to a JID the cached list does not block costs no read.
   */
  async answerReceipts(account: Pick<Account, "id" | "localpart">, seqs: number[]): Promise<void> {
    const from = accountJid(account.localpart, this.domain);
    await this.blocks.warm(account.id).catch(() => undefined); // cached before: a miss is read in the transaction
    await this.delivery.transaction(async (tx, send) => {
      const receipts: Stanza[] = [];
      const blocked = new Map<string, Promise<boolean>>(); // once per JID: a page may owe a blocked one many receipts
      const blocks = (to: string) => blocked.get(to) ?? blocked.set(to, this.blocks.confirmBlocks(account.id, to, tx)).get(to)!;
      for (const r of await claimReceipts(tx, account.id, seqs)) {
        // To a room occupant (a private message, XEP-0045 §7.5) from the account's occupant JID: the room takes no other.
        if (r.seesPresence && !(await blocks(r.to))) receipts.push({ kind: "receipt", from: r.occupant ? occupantJid(from) : from, to: r.to, id: r.id, stanzaId: randomUUID(), type: ackType(r.type) });
      }
      await send(account.id, receipts);
    });
  }

  /** GET /v1/sessions. */
  listSessions(accountId: number): Promise<SessionRow[]> {
    return this.sessions.list(accountId);
  }

  /** Waits until the session writes of opens and closes so far are done (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([this.opens.idle(), this.starts.idle(), this.closes.idle()]);
  }
}
