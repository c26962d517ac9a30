// The per-account event log. Sequence numbers come from the account row (`last_seq`), taken
// under that row's lock inside the writing transaction: events of one account therefore commit
// in sequence order, and a reader that has seen N has seen everything below N (no gaps appear
// later). Each appending transaction NOTIFYs the account id and its new head (EventsNotice), so
// every gateway instance wakes the streams of that account.
import { exec, sql, type AnyTx, type Db, type Tx as DbTx } from "./client.js";
import type { DomainEvent } from "../domain/events.js";
import { throwIfVanished, vanishedOr } from "./errors.js";
import { CHANNELS } from "./notify.js";
import { toOccupant } from "./room-lookups.js";
import { letsSeePresence } from "./roster.js";
import { rowsFrom, type Column } from "./rows.js";
import { StatementTexts } from "./statement-texts.js";

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
/**
 * Appends events inside the caller's transaction; returns their sequence numbers, in order.
 *
 * One statement for the whole call (this is the inbound hot path: one per batch of stanzas): each
 * account's `last_seq` is raised by its number of events (taking its row lock), its events get the
 * numbers above the old head in the order given, and each account is NOTIFYed once (NOTIFY is
 * delivered at commit, so the listeners see the events; if anything fails, nothing is delivered).
 */
export async function appendEvents(tx: AnyTx, events: NewEvent[]): Promise<number[]> {
  if (events.length === 0) return [];
  const plan = planAppend(events, 1);
  return plan.seqs(await plan.run(sql<AppendedRow>(tx, appendTexts.get(`alone:${plan.shape}`, () => `WITH ${plan.ctes} ${plan.select}`), plan.values)));
}

type AppendedRow = { id: number; base: bigint | number };

/**
 * An account's events as one statement appended them, read back from that statement (so each is
 * exactly what a read of the log returns: jsonb's key order, the database's created_at): all of
 * the account's events in (base, base + events.length], in seq order. Handed to this instance's
 * streams after commit (EventNotifier.appended), which then need not read them.
 */
export interface Appended {
  accountId: number;
  base: number;
  events: StoredEvent[];
}

/**
 * What a NOTIFY on CHANNELS.events says: the account and its log's head after the commit, and
 * the EventNotifier.origin of the instance that wrote it when that instance hands the events to
 * its own streams itself (they then ignore the NOTIFY, which may arrive before the hand-off).
 */
export interface EventsNotice {
  accountId: number;
  head: number;
  origin: string | null;
}

/**
 * SQL for the payload of an events NOTIFY about account row `a` after its last_seq was set: "id:head",
 * then `origin` (SQL for ":origin" or '') if given. parseEventsNotice reads it.
 */
const noticeSql = (a: string, origin?: string) => `${a}.id || ':' || ${a}.last_seq${origin ? ` || ${origin}` : ""}`;

/** The events NOTIFY for account row `a`, as a select-list expression (the caller names the column). */
export const notifyLogHeadSql = (a: string, channelParam: string) => `pg_notify(${channelParam}, ${noticeSql(a)})`;

/**
 * Tells every instance the account's log head with nothing appended: for a change that a waiter
 * reads but that logs no event (Rooms.configured), so the waiter's wake-up on log growth still comes.
 */
export async function notifyLogHead(tx: AnyTx, accountId: number): Promise<void> {
  await exec(tx, `SELECT ${notifyLogHeadSql("account", "$1")} FROM account WHERE id = $2`, [CHANNELS.events, accountId]);
}

/** "id:head" or "id:head:origin" (planAppend's payload); null for anything else. */
export function parseEventsNotice(payload: string): EventsNotice | null {
  const m = /^(\d+):(\d+)(?::(.+))?$/.exec(payload);
  return m ? { accountId: Number(m[1]), head: Number(m[2]), origin: m[3] ?? null } : null;
}

export const STORED_COLUMNS = `seq, type, resource, data, created_at AS "createdAt", receipt_to AS "receiptTo", receipt_id AS "receiptId", receipt_sent AS "receiptSent"`;

/** planAppend's texts, per shape. */
const appendTexts = new StatementTexts();

/** An event of a statement with its rank among its account's events there (1-based, in the given order). */
type Ranked = { e: NewEvent; rank: number };
/** Per account: how many events it gets. */
const COUNT_COLUMNS: Column<[number, number]>[] = [
  { name: "account_id", type: "int", value: ([id]) => id },
  { name: "events", type: "int", value: ([, n]) => n },
];
const EVENT_COLUMNS: Column<Ranked>[] = [
  { name: "account_id", type: "int", value: (r) => r.e.accountId },
  { name: "rank", type: "int", value: (r) => r.rank },
  { name: "type", type: "text", value: (r) => r.e.type },
  { name: "resource", type: "text", value: (r) => r.e.resource ?? null },
  { name: "data", type: "jsonb", value: (r) => JSON.stringify(r.e.data) },
  { name: "receipt_to", type: "text", value: (r) => r.e.receipt?.to ?? null },
  { name: "receipt_id", type: "text", value: (r) => r.e.receipt?.id ?? null },
];

interface AppendPlan {
  /** Names the text of `ctes`: plans of one shape have the same text. */
  shape: string;
  ctes: string;
  /** The statement's final SELECT: a row per account (id, base). */
  select: string;
  /** Or this one: a row per event (StoredEvent's columns and account_id). */
  selectEvents: string;
  values: unknown[];
  /** The statement's rows, or AccountVanished for its failure on an account it did not find. */
  run: <R>(statement: Promise<R>) => Promise<R>;
  seqs: (rows: AppendedRow[]) => number[];
  appended: (rows: (StoredEvent & { accountId: number })[]) => Appended[];
}

/**
 * appendEvents as parts of a statement, so another statement's CTEs can come before it (the
 * inbound hot path writes its messages and their events in one: src/db/inbound-writes.ts). Its
 * parameters are numbered from $`first`; `seqs` turns the statement's rows into the events' seqs.
 * `origin`: the NOTIFY names it (see EventsNotice); only for a statement that commits alone and whose
 * caller hands its events on (EventNotifier.appended) as soon as it returns. `when`: SQL that must hold for anything to be appended.
 *
 * An account the UPDATE does not find (deleted, or a cached id gone) fails the whole statement: its
 * events are inserted anyway, at seqs no account uses (below 1), and their foreign key refuses them
 * at the statement's end (`run` makes that AccountVanished). So a statement that commits alone (the inbound hot path)
 * never commits the other accounts' rows before throwing, which a retry would write again.
 */
export function planAppend(events: NewEvent[], first: number, origin: string | null = null, when: string | null = null): AppendPlan {
  // Per account: how many events, and each event's rank among them (1-based, in the given order).
  const counts = new Map<number, number>();
  const ranks = events.map((e) => {
    const n = (counts.get(e.accountId) ?? 0) + 1;
    counts.set(e.accountId, n);
    return n;
  });
  const ids = [...counts.keys()];
  // One event (what a message is at low load) binds scalars, many bind arrays (src/db/rows.ts).
  const c = rowsFrom(COUNT_COLUMNS, ids.map((id) => [id, counts.get(id)!] as [number, number]), first);
  const u = rowsFrom(EVENT_COLUMNS, events.map((e, i) => ({ e, rank: ranks[i]! })), first + c.values.length);
  // The NOTIFY's channel and origin come after the rows' parameters.
  const channel = first + c.values.length + u.values.length;
  // The text depends on the parameters' start, one account or many, one event or many, and `when`.
  const shape = `${first}:${ids.length === 1 ? 1 : "n"}:${events.length === 1 ? 1 : "n"}:${when ?? ""}`;
  return {
    shape,
    ctes: appendTexts.get(shape, () => `c AS (
      SELECT u.account_id, u.events AS n FROM ${c.from}
    ), a AS (
      UPDATE account SET last_seq = account.last_seq + c.n FROM c WHERE account.id = c.account_id${when ? ` AND ${when}` : ""}
      RETURNING account.id, account.last_seq - c.n AS base, pg_notify($${channel}, ${noticeSql("account", `$${channel + 1}::text`)}) AS n
    ), ev AS (
      INSERT INTO event (account_id, seq, type, resource, data, receipt_to, receipt_id)
      SELECT u.account_id, COALESCE(a.base + u.rank, -u.rank), u.type, u.resource, u.data, u.receipt_to, u.receipt_id
      FROM ${u.from}
      LEFT JOIN a ON a.id = u.account_id${when ? `
      WHERE ${when}` : ""}
      ORDER BY u.n
      RETURNING account_id AS "accountId", ${STORED_COLUMNS}
    )`),
    select: `SELECT a.id, a.base FROM a`,
    selectEvents: `SELECT * FROM ev ORDER BY "accountId", seq`,
    values: [
      ...c.values,
      ...u.values,
      CHANNELS.events,
      origin === null ? "" : `:${origin}`,
    ],
    run: (statement) =>
      statement.catch((err: unknown) => {
        throw vanishedOr(err, ids);
      }),
    seqs(rows) {
      const bases = new Map(rows.map((r) => [Number(r.id), Number(r.base)]));
      throwIfVanished(ids, (id) => bases.has(id));
      return events.map((e, i) => bases.get(e.accountId)! + ranks[i]!);
    },
    appended(rows) {
      const out: Appended[] = [];
      for (const { accountId, ...e } of rows) {
        const last = out[out.length - 1];
        if (last?.accountId === accountId) last.events.push(e);
        else out.push({ accountId, base: e.seq - 1, events: [e] });
      }
      throwIfVanished(ids, (id) => out.some((a) => a.accountId === id));
      return out;
    },
  };
}

/**
 * Marks receipts as answered; returns those this call won (once across streams), with the
 * acknowledged message's type (XEP-0184 §5), whether they go to an occupant JID, and whether the
 * sender may see the account's presence (XEP-0184 §8: a subscription from or both, or an occupant
 * of a room the account is in, where its presence is broadcast).
 */
export async function claimReceipts(db: Tx, accountId: number, seqs: number[]): Promise<{ to: string; id: string; type: string | null; occupant: boolean; seesPresence: boolean }[]> {
  if (seqs.length === 0) return [];
  return sql(
    db,
    `WITH c AS (UPDATE event SET receipt_sent = true WHERE account_id = $1 AND seq = ANY($2::bigint[]) AND NOT receipt_sent AND receipt_to IS NOT NULL
       RETURNING receipt_to AS "to", receipt_id AS id, data->>'type' AS type, ${toOccupant("account_id", "receipt_to")} AS occupant)
     SELECT c.*, c.occupant OR EXISTS (SELECT 1 FROM roster_item r WHERE r.account_id = $1 AND r.jid = split_part(c."to", '/', 1) AND ${letsSeePresence("r")}) AS "seesPresence" FROM c`,
    [accountId, seqs],
  );
}

/**
 * Deletes events older than the retention, except those an enabled webhook has yet to settle:
 * deliveries are read from the log itself, so the log keeps them until they are delivered or
 * failed (an endpoint that keeps failing is disabled after WEBHOOK_DISABLE_AFTER, and then holds
 * nothing back: enabled again, it is told of what it missed with a resync, src/services/webhook-lane.ts).
 */
export async function purgeEvents(db: Db, olderThan: Date): Promise<number> {
  return db.$executeRaw`DELETE FROM event e WHERE e.created_at < ${olderThan} AND NOT EXISTS (
    SELECT 1 FROM webhook_lane l JOIN webhook w ON w.id = l.webhook_id
    WHERE l.account_id = e.account_id AND l.seq < e.seq AND w.disabled_at IS NULL)`;
}
