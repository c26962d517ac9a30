// The inbound hot path's writes (src/services/inbound-message.ts): a batch of received messages
// (rows, direction `in`, status `received`, with their conversations) and the events that announce
// them, in ONE statement. Alone (autocommit, src/db/client.ts) that statement is the whole
// transaction, so a batch of plain messages costs one round trip instead of BEGIN, two statements
// and COMMIT: at 500 messages a second each is its own batch, and those round trips were most of
// the gateway's CPU.
import { jsonParam as json, sql, type AnyTx } from "./client.js";
import { touchConversations } from "./conversations.js";
import { planAppend, type Appended, type NewEvent, type StoredEvent } from "./events.js";
import { storedId, type MessageExt } from "../domain/message-features.js";
import { MESSAGE_COLUMNS } from "./messages.js";
import { rowsFrom, type Column } from "./rows.js";
import type { LangText } from "../domain/message.js";
import { sawRoomMessagesCte, type RoomSeen } from "./room-lookups.js";

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

/** The CTEs that insert `rows` and touch their conversations, parameters $1..$15. */
function inboundRows(rows: InboundRow[]): { ctes: string; values: unknown[] } {
  const u = rowsFrom(INBOUND_COLUMNS, rows);
  return {
    ctes: `ins AS (INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, subject, thread, lang, receipt, state, stanza_id, origin_id, status, ext)
       SELECT u.id, u.account_id, 'in', u.peer, u.to_jid, u.from_jid, u.type, u.body, u.subject, u.thread, u.lang, u.receipt, u.state, u.stanza_id, u.origin_id, 'received', u.ext
       FROM ${u.from}
       ORDER BY u.n
       RETURNING account_id, peer, seq),
     conv AS (${touchConversations("ins", true)})`,
    values: u.values,
  };
}

/**
 * Stores received messages and appends events (the messages' and any others, in the order given)
 * in one statement; returns the events as stored, per account (for this instance's streams, once
 * committed: they need not read them back). Data-modifying CTEs all run, on one snapshot; the
 * events reference the rows only by id, inside their data. `origin`: see planAppend. `saw`: rooms'
 * latest message times, updated in the same statement.
 */
export async function storeInbound(tx: AnyTx, rows: InboundRow[], events: NewEvent[], origin: string | null = null, saw: readonly RoomSeen[] = []): Promise<Appended[]> {
  if (events.length === 0 && rows.length === 0) {
    const only = saw.length ? sawRoomMessagesCte(1, saw) : null;
    if (only) await sql(tx, `WITH ${only.cte} SELECT 1`, only.values);
    return [];
  }
  // Prisma's raw queries type columns their own way (bigint, jsonb): only raw pg's rows are what
  // readEvents returns, so only they are handed on (and only their NOTIFY names the origin).
  const prisma = "$queryRawUnsafe" in tx;
  const m = rows.length ? inboundRows(rows) : null;
  const e = planAppend(events, m ? m.values.length + 1 : 1, prisma ? null : origin);
  const before = [...(m?.values ?? []), ...e.values];
  const s = saw.length ? sawRoomMessagesCte(before.length + 1, saw) : null;
  const ctes = [m?.ctes, e.ctes, s?.cte].filter(Boolean).join(", ");
  const values = [...before, ...(s?.values ?? [])];
  if (prisma) {
    e.seqs(await sql(tx, `WITH ${ctes} ${e.select}`, values)); // throws if an account vanished
    return [];
  }
  return e.appended(await sql<StoredEvent & { accountId: number }>(tx, `WITH ${ctes} ${e.selectEvents}`, values, true));
}
