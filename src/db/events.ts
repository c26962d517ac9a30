// The per-account event log. Sequence numbers come from the account row (`last_seq`), taken
// under that row's lock inside the writing transaction: events of one account therefore commit
// in sequence order, and a reader that has seen N has seen everything below N (no gaps appear
// later). Each appending transaction NOTIFYs the account id, so every gateway instance wakes
// the streams of that account.
import type { Db, Tx as DbTx } from "./client.js";
import type { DomainEvent } from "../domain/events.js";
import { CHANNELS, type Notifications } from "./notify.js";

/** An event to append: a catalogue entry (src/domain/events.ts) for one account. */
export type NewEvent = DomainEvent & {
  accountId: number;
  /** Deliver to this session only (RFC 6121 §8.5.3: stanza addressed to a full JID). */
  resource?: string | null;
  /** XEP-0184: answer `received` to this JID for this stanza id once a stream has it. */
  receipt?: { to: string; id: string } | null;
};

export interface StoredEvent {
  seq: number;
  type: string;
  /** The one session the event is for, or null for all of the account's sessions. */
  resource: string | null;
  data: unknown;
  createdAt: Date;
  receiptTo: string | null;
  receiptId: string | null;
  receiptSent: boolean;
}

type Tx = DbTx | Db;

/** Appends events inside the caller's transaction; returns their sequence numbers. */
export async function appendEvents(tx: Tx, events: NewEvent[]): Promise<number[]> {
  const seqs: number[] = [];
  const accounts = new Set<number>();
  for (const e of events) {
    const rows = await tx.$queryRaw<{ seq: bigint }[]>`
      WITH s AS (UPDATE account SET last_seq = last_seq + 1 WHERE id = ${e.accountId} RETURNING last_seq)
      INSERT INTO event (account_id, seq, type, resource, data, receipt_to, receipt_id)
      SELECT ${e.accountId}, s.last_seq, ${e.type}, ${e.resource ?? null}, ${JSON.stringify(e.data)}::jsonb,
             ${e.receipt?.to ?? null}, ${e.receipt?.id ?? null}
      FROM s RETURNING seq`;
    const seq = rows[0]?.seq;
    if (seq === undefined) throw new Error(`account ${e.accountId} vanished while appending an event`);
    seqs.push(Number(seq));
    accounts.add(e.accountId);
  }
  for (const id of accounts) await tx.$executeRaw`SELECT pg_notify(${CHANNELS.events}, ${String(id)})`;
  return seqs;
}

export async function readEvents(db: Db, accountId: number, after: number, limit: number, resource: string | null): Promise<StoredEvent[]> {
  const rows = await db.event.findMany({
    where: {
      accountId,
      seq: { gt: BigInt(after) },
      ...(resource === null ? {} : { OR: [{ resource: null }, { resource }] }),
    },
    orderBy: { seq: "asc" },
    take: limit,
    select: { seq: true, type: true, resource: true, data: true, createdAt: true, receiptTo: true, receiptId: true, receiptSent: true },
  });
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/**
 * The log's bounds for an account: the oldest retained seq (null if none) and the head. One
 * statement, so one snapshot: read separately, a reader could see the head of a transaction that
 * just committed but not its event, take the cursor for one older than the log, and skip that
 * event behind a spurious `resync`.
 */
export async function logBounds(db: Db, accountId: number): Promise<{ oldest: number | null; head: number }> {
  const rows = await db.$queryRaw<{ oldest: bigint | null; head: bigint | null }[]>`
    SELECT (SELECT min(seq) FROM event WHERE account_id = a.id) AS oldest, a.last_seq AS head FROM account a WHERE a.id = ${accountId}`;
  const r = rows[0];
  return { oldest: r?.oldest == null ? null : Number(r.oldest), head: Number(r?.head ?? 0) };
}

/** Marks receipts as answered; returns only those this call won (exactly once across streams). */
export async function claimReceipts(db: Tx, accountId: number, seqs: number[]): Promise<{ to: string; id: string }[]> {
  if (seqs.length === 0) return [];
  const rows = await db.$queryRaw<{ receipt_to: string; receipt_id: string }[]>`
    UPDATE event SET receipt_sent = true
    WHERE account_id = ${accountId} AND seq = ANY(${seqs.map(BigInt)}::bigint[]) AND NOT receipt_sent AND receipt_to IS NOT NULL
    RETURNING receipt_to, receipt_id`;
  return rows.map((r) => ({ to: r.receipt_to, id: r.receipt_id }));
}

export async function purgeEvents(db: Db, olderThan: Date): Promise<number> {
  return db.$executeRaw`DELETE FROM event WHERE created_at < ${olderThan}`;
}

/** Wakes local listeners when any instance appends events for an account. */
export class EventNotifier {
  private readonly listeners = new Map<number, Set<() => void>>();

  constructor(notifications: Notifications) {
    notifications.on(CHANNELS.events, (payload) => {
      // null: the listener reconnected and may have missed notifications: wake everyone.
      if (payload === null) this.listeners.forEach((set) => set.forEach((fn) => fn()));
      else this.listeners.get(Number(payload))?.forEach((fn) => fn());
    });
  }

  subscribe(accountId: number, fn: () => void): () => void {
    let set = this.listeners.get(accountId);
    if (!set) this.listeners.set(accountId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(accountId);
    };
  }
}
