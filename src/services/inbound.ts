// Stanzas from the XMPP network to hosted accounts (RFC 6121 §8.5): routed to the message and
// presence use cases, processed in arrival order, in batches that share a transaction. Replies
// (probe answers, auto-answered subscriptions, error bounces) go to the outbound port after commit.
// Accounts and blocklists are looked up in this instance's caches; a write that finds an entry
// stale routes its batch again, and a decision that found nothing under a cached account's id
// checks the id first (src/services/inbound-stale.ts). A stanza the cached list blocks is dropped
// only if the committed list blocks it too (an unblock elsewhere may not have reached the cache).
import type { Accounts } from "../db/accounts.js";
import { autocommit, prismaTx, type AnyTx, type Database, type SqlTx } from "../db/client.js";
import type { Appended } from "../db/events.js";
import { accountJid, type Account } from "../domain/account.js";
import type { ErrorCode } from "../domain/errors.js";
import { ownEcho, refusedWithoutSession, SUBSCRIPTION_TYPES, toRooms, type InboundStanza } from "../domain/inbound.js";
import { bare, jidToString, parseJid, type Jid } from "../domain/jid.js";
import { bouncesBlocked, isBlocked, NO_BLOCKS, type BlockLookup } from "../domain/blocking.js";
import type { Blocklists } from "../db/blocklist.js";
import { subscription, type Stanza } from "../domain/stanza.js";
import { event } from "../domain/events.js";
import { Batcher } from "./batcher.js";
import { PendingWrites, receiveMessage, type MessageStores, type RoomFactsMap } from "./inbound-message.js";
import { batchRoomFacts, warmCaches } from "./inbound-prereads.js";
import { receivePresence } from "./inbound-presence.js";
import { roomMessage, roomPresence } from "./inbound-room.js";
import { roomRefusal } from "./inbound-room-refusal.js";
import { MAX_BATCH, needsPrisma, slowStanza, transactions } from "./inbound-batches.js";
import { AccountMoved, StaleRoutes } from "./inbound-stale.js";
import { ROOM_RESOURCE } from "../domain/muc.js";
import type { Delivery } from "./delivery.js";
import type { OutboundPort, ServiceLog } from "./ports.js";

/** Replies come from the address the stanza was sent to if it is a valid one of ours, else from our domain. */
function replyFrom(to: Jid | null, domain: string): string {
  return to && to.domain === domain ? jidToString(to) : domain;
}

/** Where events appended here go once committed (src/db/events.ts EventNotifier). */
export interface LocalAppends {
  readonly origin: string;
  appended(written: Appended[]): void;
}

/** The cached blocklists, and the committed ones as a transaction reads them (src/db/blocklist.ts). */
export type InboundBlocks = Pick<BlockLookup, "forget"> & Pick<Blocklists, "of" | "list">;

const NO_INBOUND_BLOCKS: InboundBlocks = { ...NO_BLOCKS, list: async () => [] };

/** For routing a batch speculatively (Inbound.storeAlone): any statement means it needs a transaction. */
const NO_STATEMENTS: SqlTx = {
  query: () => Promise.reject(new Error("this batch needs a transaction")),
};

export class Inbound {
  private readonly batcher: Batcher<InboundStanza, void>;
  /** Routes a batch again when what it wrote found a cached account or blocklist stale. */
  private readonly stale: StaleRoutes;

  constructor(
    private readonly db: Database,
    private readonly accounts: Accounts,
    private readonly stores: MessageStores,
    /** Only its transactions are used (replies are recorded in them). */
    private readonly delivery: Pick<Delivery, "transaction" | "sqlTransaction">,
    /** Only for bounces when the database is down and nothing can be recorded. */
    private readonly out: OutboundPort,
    private readonly domain: string,
    private readonly log: ServiceLog,
    /** XEP-0191: nothing from a JID an account blocked reaches it. */
    private readonly blocks: InboundBlocks = NO_INBOUND_BLOCKS,
    /** This instance's streams: they take what a batch appended, once committed, without reading the log. */
    private readonly streams: LocalAppends | null = null,
  ) {
    this.stale = new StaleRoutes(accounts, blocks, domain, log);
    // One batch at a time, so events are appended in the order stanzas arrived.
    this.batcher = new Batcher<InboundStanza, void>((batch) => this.process(batch), MAX_BATCH, 1);
  }

  /** Takes one parsed stanza; processing is asynchronous and in order. */
  receive(s: InboundStanza): void {
    void this.batcher.push(s).catch((err: unknown) => this.log.warn({ err: String(err) }, "inbound stanza failed"));
  }

  /** Stanzas received and waiting for a batch. */
  get backlog(): number {
    return this.batcher.pending;
  }

  /** Resolves once fewer than `n` stanzas wait (the link reads again: src/xmpp/inbound.ts). */
  below(n: number): Promise<void> {
    return this.batcher.below(n);
  }

  /** Resolves once every stanza received so far is processed (for an orderly shutdown). */
  idle(): Promise<void> {
    return this.batcher.idle();
  }

  private async process(batch: InboundStanza[]): Promise<void[]> {
    const bounces: Stanza[] = [];
    for (const chunk of transactions(batch)) await this.store(chunk, bounces);
    // The one exception to "recorded first": the database is what failed, and the error asks the sender to retry.
    if (bounces.length) this.out.write(bounces);
    return batch.map(() => undefined);
  }

  /** Stores stanzas in one transaction; if that fails, each in its own, bouncing those that fail alone. */
  private async store(stanzas: InboundStanza[], bounces: Stanza[]): Promise<void> {
    // Replies (probe answers, auto-answers, error bounces) are recorded with what caused them.
    // Messages' rows and events are written together (one INSERT each, one NOTIFY per account and
    // transaction instead of statements per message), still in arrival order: before a presence
    // stanza, which appends its own. All of it commits before any stream can read it (and answer
    // receipts).
    const rooms = await batchRoomFacts(this.db, this.accounts, this.domain, stanzas);
    const body = async (tx: AnyTx, send: (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>, some: InboundStanza[], facts: RoomFactsMap) => {
      const replies: Stanza[] = [];
      const pending = new PendingWrites(this.stores, facts, (a) => this.stale.confirm(a, tx), tx);
      for (const s of some) await this.route(tx, s, replies, pending);
      await pending.flush(tx, null, true);
      await send(null, replies);
      return pending.written;
    };
    // Prisma's transaction only for what needs it (needsPrisma): a raw pg one costs less than half the CPU.
    const handle = async (some: InboundStanza[], facts: RoomFactsMap) => {
      await warmCaches(this.accounts, this.blocks, this.domain, some);
      return some.some(needsPrisma)
        ? this.delivery.transaction((tx, send) => body(tx, send, some, facts))
        : this.delivery.sqlTransaction((tx, send) => body(tx, send, some, facts));
    };
    try {
      if (!stanzas.some(slowStanza) && (await this.stale.run(stanzas, () => this.storeAlone(stanzas, rooms)))) return;
      this.handOff(await this.stale.run(stanzas, () => handle(stanzas, rooms)));
    } catch {
      // One bad stanza must not lose the others: retry each in a transaction of its own (reading
      // its room's facts in it: what the batch read may have been its failure).
      for (const s of stanzas) {
        await this.stale.run([s], () => handle([s], new Map())).then((written) => this.handOff(written), (e: unknown) => {
          this.log.warn({ err: String(e), from: s.fromRaw, kind: s.kind }, "inbound stanza could not be stored; bounced to its sender");
          const bounce = this.storeFailure(s);
          if (bounce) bounces.push(bounce);
        });
      }
    }
  }

  /**
   * The hot path, plain messages to existing accounts: routed first without any statement, then
   * their rows and events written in one statement that commits alone (src/db/inbound-writes.ts),
   * with no BEGIN or COMMIT round trip. False, with nothing written, when the batch needs a real
   * transaction (a reply to record, any other statement): the caller then runs that.
   */
  private async storeAlone(stanzas: InboundStanza[], rooms: RoomFactsMap): Promise<boolean> {
    const replies: Stanza[] = [];
    const pending = new PendingWrites(this.stores, rooms, (a) => this.stale.confirm(a));
    try {
      for (const s of stanzas) await this.route(NO_STATEMENTS, s, replies, pending);
    } catch {
      return false;
    }
    if (replies.length > 0) return false;
    // Committed once it returns, and handed on at once: its NOTIFY can name us (we ignore it then).
    await pending.flush(autocommit(this.db.pool), this.streams?.origin ?? null, true);
    this.handOff(pending.written);
    return true;
  }

  /**
   * Never throws: what is committed must not be stored again. (Should a hand-over fail, this
   * instance's streams of the account catch up at its next event; other instances read as usual.)
   */
  private handOff(written: Appended[]): void {
    try {
      if (written.length) this.streams?.appended(written);
    } catch (err) {
      this.log.warn({ err: String(err) }, "handing appended events to streams failed");
    }
  }

  private error(s: InboundStanza, code: ErrorCode, text?: string): Stanza | null {
    // Never answer an error with an error (RFC 6120 §8.3.1), nor a stanza without a sender.
    if (s.type === "error" || !s.from || !s.fromRaw) return null;
    return { kind: "error", from: replyFrom(s.to, this.domain), replyTo: { name: s.kind, from: s.fromRaw, id: s.id }, code, ...(text ? { text } : {}) };
  }

  /**
   * What could not be stored is not silently lost: the sender gets a temporary error (RFC 6120
   * §8.3.2, type "wait") and may retry. Plain presence gets none (it is not stored as such).
   */
  private storeFailure(s: InboundStanza): Stanza | null {
    if (s.kind === "presence" && !SUBSCRIPTION_TYPES.has(s.type)) return null;
    return this.error(s, "database-unavailable", "temporarily unable to store this stanza; retry later");
  }

  /**
   * `pending`: messages' writes not yet done; whatever appends on its own first flushes them. A
   * decision that found nothing under a cached account that is gone (AccountMoved) is made again
   * with the account as the database has it (src/services/inbound-stale.ts).
   */
  private async route(tx: AnyTx, s: InboundStanza, replies: Stanza[], pending: PendingWrites): Promise<void> {
    try {
      await this.routeTo(tx, s, replies, pending);
    } catch (err) {
      if (!(err instanceof AccountMoved)) throw err;
      await this.routeTo(tx, s, replies, pending, err.now);
    }
  }

  /**
   * A stanza from `from` passed no further than the account's cached list: whether the list as
   * `tx` reads it (committed, once per batch) blocks it too. The cached one may still hold an item
   * another instance removed, its NOTIFY not read here yet; dropping on it would lose what the
   * unblock lets through (XEP-0191 §3.4). When it does not, the cached list is forgotten and the
   * stanza goes on (pending.checked), as it goes under a cached id whose account is gone (its rows
   * went with it). A block found is a row under the id: it proves the id is still its account's.
   * The read is paid on drops only; the stanzas the cached list lets through pay none.
   */
  private async stillBlocked(tx: AnyTx, accountId: number, from: Jid, pending: PendingWrites): Promise<boolean> {
    const items = await pending.committedBlocks(accountId, async () => new Set(await this.blocks.list(tx, accountId)));
    if (isBlocked(items, from)) return true;
    this.log.debug({ accountId }, "a cached blocklist missed an unblock: reading it again");
    this.blocks.forget?.(accountId);
    return false;
  }

  /** `known`: the addressee's account as just read, else it is found (in the cache). */
  private async routeTo(tx: AnyTx, s: InboundStanza, replies: Stanza[], pending: PendingWrites, known?: Account | null): Promise<void> {
    const { from, to, fromRaw, toRaw } = s;
    // Cache misses read in the batch's transaction (src/db/accounts.ts find); routed without one, on the pool.
    const inTx = tx === NO_STATEMENTS ? undefined : tx;
    const find = (localpart: string) => (known !== undefined ? known : this.accounts.find(localpart, inTx));
    const blocked = async (account: Account, from: Jid) => isBlocked(await this.blocks.of(account.id, inTx), from) && (await this.stillBlocked(tx, account.id, from, pending));
    if (s.kind === "presence") {
      // §8.5.1: presence to an account that does not exist, or not to an account, is silently ignored.
      if (!to?.local || !from || !fromRaw || to.domain !== this.domain) return;
      const account = await find(to.local);
      // §4.3.2: a probe for an account that does not exist SHOULD be answered "unsubscribed".
      if (!account) return void (s.type === "probe" && replies.push(subscription(jidToString(bare(to)), jidToString(bare(from)), "unsubscribed")));
      // XEP-0191 §3.3: presence from a blocked JID (probes and subscriptions too) gets no answer at all.
      if (await blocked(account, from)) return;
      pending.checked(account.id, from); // and by the committed list, before commit
      if (toRooms(s)) return roomPresence(tx, { ...s, from, fromRaw, to, toRaw: toRaw ?? "" }, account, pending, replies);
      await pending.flush(tx);
      await receivePresence(prismaTx(tx), { ...s, from }, { id: account.id, jid: accountJid(account.localpart, this.domain) }, replies, () => pending.absent(account));
      return;
    }
    const bounce = (code: ErrorCode) => {
      const e = this.error(s, code);
      if (e) replies.push(e);
    };
    if (!to || !from || !fromRaw || !toRaw || to.domain !== this.domain) return bounce("invalid-jid");
    if (!to.local) return bounce("account-not-found");
    if (ownEcho(s, this.domain)) return; // a note to self, routed back: stored once, as sent
    const account = await find(to.local);
    if (!account) return bounce("account-not-found"); // §8.5.1: no such account
    // XEP-0191 §3.3: a message from a blocked JID is never stored; it is answered as if there were
    // no such account (service-unavailable), but for what a room sends: that is dropped. Except a
    // room's subject (XEP-0045 §8.1), which comes from the occupant who set it: it is the room's
    // state, not her message, and a join waits for it (§7.2.16; the blocking audit).
    const roomSubject = to.resource === ROOM_RESOURCE && s.type === "groupchat" && s.subject !== null && s.body === null;
    if (await blocked(account, from)) {
      if (!roomSubject) return bouncesBlocked(s.type, to.resource) ? bounce("account-not-found") : undefined;
    } else pending.checked(account.id, from); // and by the committed list, in the statement that stores it
    const m = { ...s, from, to, fromRaw, toRaw };
    if (s.invitation) {
      // XEP-0045 §7.8.2 / XEP-0249: an invitation is a `room` event. A mediated one's body is the
      // room's own fallback text (its reason is in the event): no message, nor a conversation with
      // the room. A direct one is a message too only if its sender wrote a body.
      const { room, from: inviter, reason, password, via, declined } = s.invitation;
      // A room relays the inviter's (or decliner's) words: from a JID the account blocked they are
      // dropped, as her own stanzas are (API.md Blocking), unanswered, as all a room sends is.
      const relayed = via === "mediated" ? parseJid(inviter) : null;
      if (relayed && (await blocked(account, relayed))) return;
      if (relayed) pending.checked(account.id, relayed);
      const data = declined ? ({ room, kind: "invitation-declined", from: inviter, reason } as const) : ({ room, kind: "invited", from: inviter, reason, password, via } as const);
      pending.add({ accountId: account.id, ...event("room", data) });
      if (s.body === null || via === "mediated") return;
    }
    if (to.resource === ROOM_RESOURCE && (s.type === "error" ? await roomRefusal(tx, m, account, pending) : await roomMessage(tx, this.stores, m, account, pending))) return;
    // Groupchat from no room of ours bounces when to the bare JID (§8.5.2.1.1) or to a resource
    // with no session to take it, the room resource included (§8.5.3.2.1); to an available or
    // connected session's full JID it is delivered like any message (§8.5.3.1).
    // To a resource, these decisions found nothing under the account's id, no room or no session: pending.absent.
    if (s.type === "groupchat" && !(to.resource && to.resource !== ROOM_RESOURCE && (await pending.reachable(account.id, to.resource)))) {
      if (to.resource) await pending.absent(account);
      return bounce("account-not-found");
    }
    // A normal or headline message to a session that is neither available nor connected is not
    // taken for the bare JID (§8.5.3.2.1): the sender hears service-unavailable.
    if (to.resource && refusedWithoutSession(s) && !(await pending.reachable(account.id, to.resource))) {
      await pending.absent(account);
      return bounce("account-not-found");
    }
    await receiveMessage(tx, this.stores, m, account, pending);
  }
}
