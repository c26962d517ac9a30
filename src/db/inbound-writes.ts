// The inbound hot path's writes (src/services/inbound-message.ts): a batch of received messages
// (rows, direction `in`, status `received`, with their conversations) and the events that announce
// them, in ONE statement. Alone (autocommit, src/db/client.ts) that statement is the whole
// transaction, so a batch of plain messages costs one round trip instead of BEGIN, two statements
// and COMMIT: at 500 messages a second each is its own batch, and those round trips were most of
// the gateway's CPU. It is also where a block becomes final: the statement stores nothing when a
// committed block covers the sender of any stanza it stores for (a cached list that had not heard
// of the block let it through: src/services/inbound.ts routes them again).
import { blockCovers, StaleBlocklist } from "./blocklist.js";
import { jsonParam as json, sql, type AnyTx } from "./client.js";
import { CONVERSATIONS_LOCKED, lockConversations, touchConversations } from "./conversations.js";
import { planAppend, type Appended, type NewEvent, type StoredEvent } from "./events.js";
import { storedId, type MessageExt } from "../domain/message-features.js";
import { MESSAGE_COLUMNS } from "./message-columns.js";
import { rowsFrom, type Column } from "./rows.js";
import type { LangText } from "../domain/message.js";
import { sawRoomMessagesCte, type RoomSeen } from "./room-lookups.js";
import { StatementTexts } from "./statement-texts.js";

/** The texts of this file's statements and their parts, per shape. */
const texts = new StatementTexts();

/** An inbound message to store (direction `in`, status `received`). */
interface NewInbound {
  id: string;
  accountId: number;
  peer: string;
  from: string;
  to: string;
  type: string;
  body: LangText | null;
  subject: LangText | null;
  thread: string | null;
  lang: string | null;
  state: string | null;
  receipt: boolean;
  stanzaId: string | null;
  ext?: MessageExt | null;
}

/**
 * A received message's row: a NewInbound and its XEP-0359 id worth storing beside its stanza id:
 * for a one-to-one message its origin-id (src/domain/message-features.ts storedOriginId), for a
 * room's the stanza-id the room assigned (src/services/inbound-room.ts).
 */
export type InboundRow = NewInbound & { originId?: string | null };

/**
 * The columns of received messages' rows, parameters $1..$15. The peer's ids are indexed: one too
 * long for a btree entry would fail this one statement and so every row of the batch, so here,
 * where every received message (one-to-one and from rooms) is written, they are stored only when
 * short enough (src/domain/message-features.ts storedId).
 */
const INBOUND_COLUMNS: Column<InboundRow>[] = [
  ...MESSAGE_COLUMNS,
  { name: "stanza_id", type: "text", value: (m) => storedId(m.stanzaId) },
  { name: "origin_id", type: "text", value: (m) => storedId(m.originId) },
  { name: "ext", type: "json", value: (m) => json(m.ext) },
];

/**
 * A sender whose stanzas this statement stores for an account (or whose stanzas this transaction
 * acted on): `jid` its full JID in normal form (jidToString), as the blocklist was checked.
 */
export interface Sender {
  accountId: number;
  jid: string;
}

const SENDER_COLUMNS: Column<Sender>[] = [
  { name: "account_id", type: "int", value: (s) => s.accountId },
  { name: "jid", type: "text", value: (s) => s.jid },
];

/** No write happens unless it holds: no sender is blocked (the `blk` CTE). */
const UNBLOCKED = "cardinality((SELECT accounts FROM blk)) = 0";

/**
 * The `blk` CTE, one row: `accounts`, those whose committed blocklists cover any of `senders`
 * (src/db/blocklist.ts blockCovers). Read on the statement's snapshot: a block committed before
 * it began counts.
 */
function blockedSenders(senders: readonly Sender[], first: number): { shape: string; cte: string; values: unknown[] } {
  const u = rowsFrom(SENDER_COLUMNS, senders, first);
  const shape = `blk:${senders.length === 1 ? 1 : "n"}:${first}`;
  return { shape, cte: texts.get(shape, () => `blk AS (SELECT array(SELECT DISTINCT u.account_id FROM ${u.from} WHERE ${blockCovers("u.account_id", "u.jid")}) AS accounts)`), values: u.values };
}

/** The CTEs that insert `rows` and touch their conversations, parameters $1..$15; `when`: see planAppend. */
function inboundRows(rows: InboundRow[], when: string | null): { shape: string; ctes: string; values: unknown[] } {
  const u = rowsFrom(INBOUND_COLUMNS, rows);
  const shape = `ins:${rows.length === 1 ? 1 : "n"}:${when ?? ""}`;
  return {
    shape,
    ctes: texts.get(shape, () => `${lockConversations(u.from)}, ins AS (INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, subject, thread, lang, receipt, state, stanza_id, origin_id, status, ext)
       SELECT u.id, u.account_id, 'in', u.peer, u.to_jid, u.from_jid, u.type, u.body, u.subject, u.thread, u.lang, u.receipt, u.state, u.stanza_id, u.origin_id, 'received', u.ext
       FROM ${u.from} WHERE ${when ? `${when} AND ` : ""}${CONVERSATIONS_LOCKED}
       ORDER BY u.n
       RETURNING account_id, peer, seq),
     conv AS (${touchConversations("ins", true)})`),
    values: u.values,
  };
}

type StaleColumn = { staleBlocks?: number[] | null };

function throwIfStale(row: StaleColumn | undefined): void {
  if (row?.staleBlocks?.length) throw new StaleBlocklist(row.staleBlocks.map(Number));
}

/**
 * Throws StaleBlocklist when the statement found blocked senders (it then wrote nothing); else its
 * rows of what it wrote, those whose `key` column is not null (a LEFT JOIN's row of nulls: nothing).
 */
function unblocked<R extends object>(rows: (R & StaleColumn)[], senders: readonly Sender[], key: keyof R): R[] {
  if (senders.length === 0) return rows;
  throwIfStale(rows[0]);
  return rows.filter((r) => r[key] !== null).map(({ staleBlocks: _, ...r }) => r as unknown as R);
}

/**
 * Stores received messages and appends events (the messages' and any others, in the order given)
 * in one statement; returns the events as stored, per account (for this instance's streams, once
 * committed: they need not read them back). Data-modifying CTEs all run, on one snapshot; the
 * events reference the rows only by id, inside their data. `origin`: see planAppend. `saw`: rooms'
 * latest message times, updated in the same statement. `senders`: those of the stanzas that
 * brought them (or that the caller's transaction acted on), as checked against cached blocklists;
 * when a committed block covers any of them, nothing is written and StaleBlocklist is thrown (in
 * the same statement: no round trip of its own, but for senders with nothing to write).
 */
export async function storeInbound(tx: AnyTx, rows: InboundRow[], events: NewEvent[], origin: string | null = null, saw: readonly RoomSeen[] = [], senders: readonly Sender[] = []): Promise<Appended[]> {
  const when = senders.length ? UNBLOCKED : null;
  if (events.length === 0 && rows.length === 0) {
    const only = saw.length ? sawRoomMessagesCte(1, saw, when) : null;
    const b = senders.length ? blockedSenders(senders, (only?.values.length ?? 0) + 1) : null;
    const ctes = [b?.cte, only?.cte].filter(Boolean).join(", ");
    if (ctes) throwIfStale((await sql<StaleColumn>(tx, `WITH ${ctes} SELECT ${b ? `(SELECT accounts FROM blk) AS "staleBlocks"` : "1"}`, [...(only?.values ?? []), ...(b?.values ?? [])]))[0]);
    return [];
  }
  // Prisma's raw queries type columns their own way (bigint, jsonb): only raw pg's rows are what
  // readEvents returns, so only they are handed on (and only their NOTIFY names the origin).
  const prisma = "$queryRawUnsafe" in tx;
  const m = rows.length ? inboundRows(rows, when) : null;
  const e = planAppend(events, m ? m.values.length + 1 : 1, prisma ? null : origin, when);
  const before = [...(m?.values ?? []), ...e.values];
  const s = saw.length ? sawRoomMessagesCte(before.length + 1, saw, when) : null;
  const b = senders.length ? blockedSenders(senders, before.length + (s?.values.length ?? 0) + 1) : null;
  // blk first: the CTEs after it read it.
  const values = [...before, ...(s?.values ?? []), ...(b?.values ?? [])];
  // With senders, the flag beside every row written (and a row of nulls beside it if none was).
  const flagged = (columns: string, from: string, order = "") => `SELECT blk.accounts AS "staleBlocks", ${columns} FROM blk LEFT JOIN ${from} ON true ${order}`;
  // The parts' shapes name the whole text (the saw CTE's parameters start after the others); the
  // final SELECT, decided by the Prisma flag and `b`, is built with it, on a miss only.
  const text = (select: () => string) => texts.get(`${prisma ? "prisma" : "pg"}|${b?.shape ?? ""}|${m?.shape ?? ""}|${e.shape}|${s ? "saw" : ""}`, () => `WITH ${[b?.cte, m?.ctes, e.ctes, s?.cte].filter(Boolean).join(", ")} ${select()}`);
  if (prisma) {
    const select = () => (b ? flagged("a.id, a.base", "a") : e.select);
    e.seqs(unblocked(await e.run(sql<{ id: number; base: bigint | number }>(tx, text(select), values)), senders, "id"));
    return [];
  }
  const select = () => (b ? flagged("ev.*", "ev", `ORDER BY ev."accountId", ev.seq`) : e.selectEvents);
  return e.appended(unblocked(await e.run(sql<StoredEvent & { accountId: number }>(tx, text(select), values, true)), senders, "seq"));
}
