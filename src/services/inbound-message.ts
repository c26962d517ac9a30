// Inbound messages for a hosted account (RFC 6121 §5, §8.5): stored and appended to the event log
// of every session (bare JID) or one session (full JID); XEP-0184 receipts mark our messages
// delivered; error bounces (RFC 6120 §8.3) mark them failed.
import { randomUUID } from "node:crypto";
import type { AnyTx } from "../db/client.js";
import type { Appended, NewEvent } from "../db/events.js";
import { storeInbound, type InboundRow, type Sender } from "../db/inbound-writes.js";
import { lookupRoomMessages, type RoomMessageFacts, type RoomMessageKey, type RoomSeen } from "../db/room-lookups.js";
import type { Marked, Messages } from "../db/messages.js";
import type { Sessions } from "../db/sessions.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import { isMessageId } from "../domain/message.js";
import { storedOriginId } from "../domain/message-features.js";
import { applyChange, newMessageExt } from "./inbound-features.js";
import { AccountMoved } from "./inbound-stale.js";
import { undoRefusedChange } from "./refused-change.js";

export interface MessageStores {
  messages: Messages;
  sessions: Sessions;
}

type Addressed = InboundMessage & { from: Jid; to: Jid; fromRaw: string; toRaw: string };

/** A room message's facts, keyed by account, room, sender's nick, stanza id and sender (src/db/room-lookups.ts). */
export type RoomFactsMap = ReadonlyMap<string, RoomMessageFacts | null>;

export const roomFactsKey = (k: RoomMessageKey): string => `${k.accountId}\u0000${k.room}\u0000${k.nick ?? ""}\u0000${k.stanzaId ?? ""}\u0000${k.history ? "h" : ""}\u0000${k.from}\u0000${k.roomStanzaId ?? ""}`;
/**
 * What makes a room message a copy of one stored (src/db/room-lookups.ts): its sender's id from
 * that sender, or its room's stanza-id. `asCopy`: the keys it is looked up by, where the sender's
 * id counts only in the history (RoomMessageKey.history); it is stored under all of them.
 */
const copyKeys = (k: RoomMessageKey, asCopy = false): string[] => [
  ...(k.stanzaId !== null && (!asCopy || k.history) ? [`id\u0000${k.accountId}\u0000${k.room}\u0000${k.stanzaId}\u0000${k.from}`] : []),
  ...(k.roomStanzaId !== null ? [`room\u0000${k.accountId}\u0000${k.room}\u0000${k.roomStanzaId}`] : []),
];
const roomKey = (accountId: number, room: string) => `${accountId}\u0000${room}`;

/**
 * What one batch's messages have to write (src/services/inbound.ts): their rows and their events,
 * written together in one statement whenever the batch flushes (before anything else appends to
 * the log, and at the end), so the log keeps arrival order. Room messages' facts are read for the
 * whole batch before it is routed (`rooms`); a room whose presence this batch handles is read
 * again, as what its presence changed is the room's now.
 */
export class PendingWrites {
  private readonly rows: InboundRow[] = [];
  private readonly events: NewEvent[] = [];
  private readonly saw = new Map<string, RoomSeen>();
  /** Rooms whose presence this batch handled: their prefetched facts are stale. */
  private readonly changedRooms = new Set<string>();
  /** Room messages this batch stored (copyKeys): a second copy in the batch is seen. */
  private readonly storedRoomMessages = new Set<string>();
  /** Senders whose stanzas passed the cached blocklist check since the last statement checked them. */
  private readonly senders = new Map<string, Sender>();
  /** Whether a session is reachable, per account and resource. */
  private readonly sessions = new Map<string, Promise<boolean>>();
  /** What the flushes wrote, as stored: handed to this instance's streams once it commits. */
  readonly written: Appended[] = [];
  /** Account ids this batch read to be their localparts' (absent()). */
  private readonly confirmed = new Set<number>();
  /** Blocklists as this batch's transaction read them (committedBlocks()). */
  private readonly committed = new Map<number, Promise<ReadonlySet<string>>>();

  constructor(
    private readonly stores: MessageStores,
    private readonly rooms: RoomFactsMap = new Map(),
    /** StaleRoutes.confirm: the account read afresh, or AccountMoved thrown. */
    private readonly confirm: (account: Account) => Promise<Account> = async (a) => a,
    /**
     * The batch's transaction, for the reads it makes (reachable): on a connection of their own they
     * would wait for the pool while it holds its locks, and the requests holding the pool's
     * connections may wait on those locks (the concurrency audit: 503s after 5 s). Null: the batch
     * is routed without one (Inbound.storeAlone), holding no lock, and reads on the pool.
     */
    private readonly tx: AnyTx | null = null,
  ) {}

  /**
   * A decision for the account found nothing under its id (no roster item, session, room or
   * message of it), as it would under a cached id whose account is gone: throws AccountMoved when
   * so (src/services/inbound-stale.ts), and the caller decides again. One read per account and
   * batch, and only on such decisions: what finds a row has proven the id.
   */
  async absent(account: Account): Promise<void> {
    if (this.confirmed.has(account.id)) return;
    try {
      await this.confirm(account);
      this.confirmed.add(account.id);
    } catch (err) {
      // Just read: deciding again with it pays no second read.
      if (err instanceof AccountMoved && err.now) this.confirmed.add(err.now.id);
      throw err;
    }
  }

  /**
   * The account's blocklist as committed, read (`read`) once per account and batch: a cached list
   * that blocks a sender may be stale (src/services/inbound.ts), and a sender still blocked may
   * send the batch many stanzas.
   */
  committedBlocks(accountId: number, read: () => Promise<ReadonlySet<string>>): Promise<ReadonlySet<string>> {
    let hit = this.committed.get(accountId);
    if (!hit) this.committed.set(accountId, (hit = read()));
    return hit;
  }

  add(event: NewEvent, row?: InboundRow): void {
    if (row) this.rows.push(row);
    this.events.push(event);
  }

  /** Whether a message to this resource goes to its session (Sessions.reachable), asked once per batch. */
  reachable(accountId: number, resource: string): Promise<boolean> {
    const key = `${accountId}\u0000${resource}`;
    let hit = this.sessions.get(key);
    if (!hit) this.sessions.set(key, (hit = this.stores.sessions.reachable(accountId, resource, this.tx ?? undefined)));
    return hit;
  }

  /** A room message's facts: as read for the batch, else read now; null when the account is not in the room. */
  async roomFacts(tx: AnyTx, key: RoomMessageKey): Promise<RoomMessageFacts | null> {
    const k = roomFactsKey(key);
    const known = this.changedRooms.has(roomKey(key.accountId, key.room)) ? undefined : this.rooms.get(k);
    const facts = known !== undefined ? known : (await lookupRoomMessages(tx, [key]))[0]!;
    return facts && copyKeys(key, true).some((c) => this.storedRoomMessages.has(c)) ? { ...facts, seen: true } : facts;
  }

  /** The room's presence changed something (occupants, the account's nick, its being there). */
  roomChanged(accountId: number, room: string): void {
    this.changedRooms.add(roomKey(accountId, room));
  }

  /** A room message is stored (with its row, by add): a copy later in the batch is one seen. */
  storedRoomMessage(key: RoomMessageKey): void {
    for (const c of copyKeys(key)) this.storedRoomMessages.add(c);
  }

  /** A message from the room, sent at `at`, is seen: written with the next flush. */
  sawRoom(accountId: number, room: string, at: Date): void {
    const k = roomKey(accountId, room);
    const was = this.saw.get(k);
    if (!was || was.at < at) this.saw.set(k, { accountId, room, at });
  }

  /**
   * A stanza from `from` to the account passed the check against this instance's cached blocklist.
   * The statement that writes for it (or a later one in its transaction) checks the committed
   * list too, and stores nothing when a block covers the sender (StaleBlocklist): this instance may
   * not have heard of a block another one just made.
   */
  checked(accountId: number, from: Jid): void {
    const jid = jidToString(from);
    this.senders.set(`${accountId}\u0000${jid}`, { accountId, jid });
  }

  /**
   * Stores the rows and appends the events that reference them, in one statement (one NOTIFY per
   * account; `origin`: see planAppend), which checks the senders too. `final`: the transaction's
   * last, which checks the senders left even with nothing to write (a statement of its own).
   */
  async flush(tx: AnyTx, origin: string | null = null, final = false): Promise<void> {
    if (!this.rows.length && !this.events.length && !this.saw.size && !(final && this.senders.size)) return;
    const saw = [...this.saw.values()];
    this.saw.clear();
    const senders = [...this.senders.values()];
    this.senders.clear();
    this.written.push(...(await storeInbound(tx, this.rows.splice(0), this.events.splice(0), origin, saw, senders)));
  }
}

/**
 * Stores what a message changes and adds its row and events to `pending`, which the caller writes
 * in this transaction, in order, before anything else appends (src/services/inbound.ts).
 */
export async function receiveMessage(tx: AnyTx, stores: MessageStores, m: Addressed, account: Account, pending: PendingWrites): Promise<void> {
  const peer = jidToString(bare(m.from));
  if (m.type === "error") {
    if (!ours(m.id) || !m.error) return;
    const failed = await stores.messages.markFailed(tx, account.id, m.id, peer, m.error);
    if (await marked(failed, account, pending)) pending.add({ accountId: account.id, ...event("message-status", { id: m.id, status: "failed", error: m.error }) });
    // Not a message's id: perhaps a change's (a correction, reactions) that the peer refused.
    else if (failed === "none") {
      const undone = await undoRefusedChange(tx, account, peer, m.id);
      if (undone) pending.add(undone);
    }
  } else {
    await takeReceipt(tx, stores, m, account, peer, pending);
    if (m.features && (await applyChange(tx, m, m.features, account, peer, pending))) return;
    if (m.body !== null || m.subject !== null || m.state !== null || m.features?.attachments) await storeMessage(tx, m, account, peer, pending);
  }
}

/** Only our own message ids can be marked. */
const ours = (id: string | null): id is string => !!id && isMessageId(id);

/**
 * XEP-0184: a receipt (`m.receivedId`) marks the account's message to `peer` delivered; with `to`,
 * only one sent to that full JID (a room occupant's private message, XEP-0045 §7.5: the room is
 * the peer of all of them).
 */
export async function takeReceipt(tx: AnyTx, stores: MessageStores, m: Addressed, account: Account, peer: string, pending: PendingWrites, to: string | null = null): Promise<void> {
  if (ours(m.receivedId) && (await marked(stores.messages.markDelivered(tx, account.id, m.receivedId, peer, to), account, pending))) {
    pending.add({ accountId: account.id, ...event("receipt", { id: m.receivedId, from: m.fromRaw, status: "delivered" }) });
  }
}

/**
 * Whether a receipt or bounce marked the account's message. One that found the message another
 * account's checks the account (pending.absent): under a cached id that is gone, the account
 * deleted and created again elsewhere, the message is the new account's (sent through another
 * instance), and the stanza is decided again for it (AccountMoved). One that found no message
 * checks nothing: the message of an account deleted went with it (nobody is left to tell), and a
 * receipt for a message already delivered is common (each of the peer's clients sends one). A
 * message that is another account's still (a peer naming it to this one) is not this one's to mark.
 */
async function marked(result: Marked | Promise<Marked>, account: Account, pending: PendingWrites): Promise<boolean> {
  const r = await result;
  if (r === "another") await pending.absent(account);
  return r === "marked";
}

async function storeMessage(tx: AnyTx, m: Addressed, account: Account, peer: string, pending: PendingWrites): Promise<void> {
  // §8.5.3.2.1: to a full JID with no such session (or one that is neither available nor
  // connected), a chat message is handled as if to the bare JID (a normal or headline one with
  // something new to say was refused before: src/domain/inbound.ts refusedWithoutSession).
  const resource = m.to.resource && (await pending.reachable(account.id, m.to.resource)) ? m.to.resource : null;
  const wantsReceipt = m.receiptRequested && !!m.id;
  const type = m.type as "chat" | "normal" | "headline" | "groupchat";
  const id = randomUUID();
  // A reply may name a message of this batch: its row is written first.
  if (m.features?.reply) await pending.flush(tx);
  const { ext, body } = await newMessageExt(tx, m.features, m.body, account, peer);
  // A chat state alone is an event but not a stored message.
  // Its origin-id too (XEP-0359): peers retract (XEP-0424) and react (XEP-0444) by it.
  const row: InboundRow | undefined =
    body !== null || m.subject !== null || ext?.attachments
      ? { id, accountId: account.id, peer, from: m.fromRaw, to: jidToString(m.to), type, body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receipt: wantsReceipt, stanzaId: m.id, originId: storedOriginId(m.id, m.originId), ext }
      : undefined;
  const features = { ...(ext?.replyTo ? { replyTo: ext.replyTo } : {}), ...(ext?.attachments ? { attachments: ext.attachments } : {}) };
  const data = { id, from: m.fromRaw, to: jidToString(m.to), type, body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receiptRequested: wantsReceipt, stanzaId: m.id, createdAt: new Date().toISOString(), ...features };
  pending.add({ accountId: account.id, ...event("message", data), resource, receipt: wantsReceipt ? { to: m.fromRaw, id: m.id! } : null }, row);
}
