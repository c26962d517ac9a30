// The inbound hot path's writes (src/services/inbound-message.ts): a batch of received messages
// (rows, direction `in`, status `received`, with their conversations) and the events that announce
// them, in ONE statement. Alone (autocommit, src/db/client.ts) that statement is the whole
// transaction, so a batch of plain messages costs one round trip instead of BEGIN, two statements
// and COMMIT: at 500 messages a second each is its own batch, and those round trips were most of
// the gateway's CPU.
import { jsonParam as json, sql, type AnyTx } from "./client.js";
import { touchConversations } from "./conversations.js";
import { planAppend, type Appended, type NewEvent, type StoredEvent } from "./events.js";
import type { NewInbound } from "./messages.js";

/** The CTEs that insert `rows` and touch their conversations, parameters $1..$14. */
function inboundRows(rows: NewInbound[]): { ctes: string; values: unknown[] } {
  const col = <T>(f: (m: NewInbound) => T) => rows.map(f);
  return {
    ctes: `ins AS (INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, subject, thread, lang, receipt, state, stanza_id, status, ext)
       SELECT u.id, u.account_id, 'in', u.peer, u.to_jid, u.from_jid, u.type, u.body, u.subject, u.thread, u.lang, u.receipt, u.state, u.stanza_id, 'received', u.ext
       FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::json[], $8::json[], $9::text[], $10::text[], $11::bool[], $12::text[], $13::text[], $14::json[])
         WITH ORDINALITY AS u(id, account_id, peer, to_jid, from_jid, type, body, subject, thread, lang, receipt, state, stanza_id, ext, n)
       ORDER BY u.n
       RETURNING account_id, peer, seq),
     conv AS (${touchConversations("ins", true)})`,
    values: [
      col((m) => m.id),
      col((m) => m.accountId),
      col((m) => m.peer),
      col((m) => m.to),
      col((m) => m.from),
      col((m) => m.type),
      col((m) => json(m.body)),
      col((m) => json(m.subject)),
      col((m) => m.thread),
      col((m) => m.lang),
      col((m) => m.receipt),
      col((m) => m.state),
      col((m) => m.stanzaId),
      col((m) => json(m.ext)),
    ],
  };
}

/**
 * Stores received messages and appends events (the messages' and any others, in the order given)
 * in one statement; returns the events as stored, per account (for this instance's streams, once
 * committed: they need not read them back). Data-modifying CTEs all run, on one snapshot; the
 * events reference the rows only by id, inside their data. `origin`: see planAppend.
 */
export async function storeInbound(tx: AnyTx, rows: NewInbound[], events: NewEvent[], origin: string | null = null): Promise<Appended[]> {
  if (events.length === 0 && rows.length === 0) return [];
  // Prisma's raw queries type columns their own way (bigint, jsonb): only raw pg's rows are what
  // readEvents returns, so only they are handed on (and only their NOTIFY names the origin).
  const prisma = "$queryRawUnsafe" in tx;
  const m = rows.length ? inboundRows(rows) : null;
  const e = planAppend(events, m ? m.values.length + 1 : 1, prisma ? null : origin);
  const ctes = m ? `${m.ctes}, ${e.ctes}` : e.ctes;
  const values = [...(m?.values ?? []), ...e.values];
  if (prisma) {
    e.seqs(await sql(tx, `WITH ${ctes} ${e.select}`, values)); // throws if an account vanished
    return [];
  }
  return e.appended(await sql<StoredEvent & { accountId: number }>(tx, `WITH ${ctes} ${e.selectEvents}`, values, true));
}
