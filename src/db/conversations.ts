// Conversations (GET /v1/conversations): the maintained `conversation` rows (src/db/messages.ts
// keeps them in the message inserts) joined to their latest message and read position.
import { PAGE_BYTES } from "../domain/page.js";
import { sql, type AnyTx } from "./client.js";
import { statusSql } from "./message-status.js";
import { cutBySize, sizeBounded } from "./size-bound.js";
import type { MessageRecord } from "../domain/views.js";

/**
 * The `lk` CTE of a message insert: locks the conversations `rows` (rows with account_id and peer)
 * belong to, those that exist, in key order, before the insert draws its rows' `seq` (its WHERE
 * holds CONVERSATIONS_LOCKED, evaluated once, before any row). `seq` is the history's cursor, and
 * paging forward (`after`) skips nothing only if the messages of a conversation commit in its
 * order: a message whose `seq` was drawn before a newer one's, but which committed after it, was
 * left behind a forward page that ended at the newer one. Its writers already took these rows'
 * locks in touchConversations, but after drawing. A conversation's first messages, written at
 * once, have no row to lock yet.
 */
export const lockConversations = (rows: string) =>
  `lk AS MATERIALIZED (SELECT 1 FROM conversation c WHERE (c.account_id, c.peer) IN (SELECT account_id, peer FROM ${rows}) ORDER BY c.account_id, c.peer FOR NO KEY UPDATE)`;
export const CONVERSATIONS_LOCKED = "(SELECT count(*) FROM lk) >= 0";

/**
 * Keeps `conversation` (GET /v1/conversations) up to date in the statement that inserts messages:
 * the latest message of each conversation the rows of `rows` (a CTE or subquery with account_id,
 * peer, seq) belong to, and for inbound rows the unread count. Rows are locked in key order (no
 * deadlock between concurrent inserts). The outbound insert passes only messages that say
 * something: a chat state alone (XEP-0085 typing) is not a conversation's latest message, as an
 * inbound one is not even stored.
 */
export const touchConversations = (rows: string, inbound: boolean) =>
  `INSERT INTO conversation (account_id, peer, last_seq, unread, updated_at)
   SELECT account_id, peer, max(seq), ${inbound ? "count(*)" : "0"}, now() FROM ${rows} GROUP BY account_id, peer ORDER BY account_id, peer
   ON CONFLICT (account_id, peer) DO UPDATE SET last_seq = GREATEST(conversation.last_seq, EXCLUDED.last_seq),
     unread = conversation.unread + EXCLUDED.unread, updated_at = now()`;

export interface ConversationRow {
  peer: string;
  unread: number;
  lastSeq: string;
  lastReadId: string | null;
  updatedAt: Date;
  last: MessageRecord;
}

const MESSAGE = (m: string) =>
  `json_build_object('id', ${m}.id, 'direction', ${m}.direction, 'from', ${m}."from", 'to', ${m}."to", 'type', ${m}.type, 'body', ${m}.body,
     'subject', ${m}.subject, 'thread', ${m}.thread, 'lang', ${m}.lang, 'state', ${m}.state, 'receipt', ${m}.receipt, 'status', ${statusSql(m)},
     'error', ${m}.error, 'seq', ${m}.seq, 'createdAt', ${m}.created_at, 'updatedAt', ${m}.updated_at, 'ext', ${m}.ext, 'editedAt', ${m}.edited_at,
     'retractedAt', ${m}.retracted_at, 'reactions', ${m}.reactions, 'marker', ${m}.marker)`;

/**
 * Newest activity first, `before` a cursor (a last_seq). The page is cut first (an index range
 * scan of conversation(account_id, last_seq)), then joined to its 50 messages by index: the
 * planner joins the whole account first when asked to join before the limit (bench/conversations.ts).
 * As many as fit in PAGE_BYTES of their latest messages' JSON, but always the first (as the event
 * log's reads; src/db/size-bound.ts); `cut`: the size left out rows it read. OFFSET 0 keeps the
 * levels apart: merged, each use of `last` built the message's JSON again.
 */
export async function listConversations(tx: AnyTx, accountId: number, before: bigint | null, limit: number): Promise<{ rows: ConversationRow[]; cut: boolean }> {
  const rows = await sql<Omit<ConversationRow, "last"> & { last: Record<string, unknown>; seq: string; size: string; upto: string; read: string }>(
    tx,
    sizeBounded(
      `SELECT q.*, octet_length(q.last::text) AS size FROM (
         SELECT c.last_seq AS seq, c.peer, c.unread, c.last_seq::text AS "lastSeq", lr.id::text AS "lastReadId", c.updated_at AS "updatedAt", ${MESSAGE("m")} AS last
         FROM (SELECT * FROM conversation WHERE account_id = $1 AND ($2::bigint IS NULL OR last_seq < $2::bigint) ORDER BY last_seq DESC LIMIT $3) c
         JOIN message m ON m.account_id = c.account_id AND m.peer = c.peer AND m.seq = c.last_seq
         LEFT JOIN message lr ON lr.account_id = c.account_id AND lr.peer = c.peer AND lr.seq = c.last_read_seq
         OFFSET 0
       ) q`,
      "DESC",
      "$4",
    ),
    [accountId, before === null ? null : before.toString(), limit, PAGE_BYTES],
  );
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
  return {
    rows: rows.map(({ peer, unread, lastSeq, lastReadId, updatedAt, last }) => ({
      peer,
      unread,
      lastSeq,
      lastReadId,
      updatedAt,
      last: { ...last, createdAt: date(last.createdAt)!, updatedAt: date(last.updatedAt)!, editedAt: date(last.editedAt), retractedAt: date(last.retractedAt) } as MessageRecord,
    })),
    cut: cutBySize(rows),
  };
}

/**
 * XEP-0333 displayed: the conversation is read up to message `id` (never backwards); unread recounted.
 * Two statements in the caller's transaction: the conversation's row is locked first, so the second
 * reads the read position and the messages to count on a snapshot taken after every write that held
 * the row committed. One statement read both on its snapshot from before its wait for the lock, and
 * wrote them over a newer displayed (moving the position back) or over a stored message's unread + 1
 * (the audit). A message stored after the lock adds its + 1 to the count written here.
 */
export async function markRead(tx: AnyTx, accountId: number, id: string): Promise<void> {
  await sql(
    tx,
    `SELECT 1 FROM conversation c JOIN message m ON m.account_id = c.account_id AND m.peer = c.peer
     WHERE m.id = $2::uuid AND m.account_id = $1 AND c.account_id = $1 FOR NO KEY UPDATE OF c`,
    [accountId, id],
  );
  await sql(
    tx,
    `WITH m AS (SELECT peer, seq FROM message WHERE id = $2::uuid AND account_id = $1),
          upto AS (SELECT c.account_id, c.peer, GREATEST(COALESCE(c.last_read_seq, 0), m.seq) AS seq FROM conversation c JOIN m ON c.peer = m.peer WHERE c.account_id = $1)
     UPDATE conversation c SET last_read_seq = upto.seq, updated_at = c.updated_at,
       unread = (SELECT count(*) FROM message x WHERE x.account_id = c.account_id AND x.peer = c.peer AND x.direction = 'in' AND x.seq > upto.seq)
     FROM upto WHERE c.account_id = upto.account_id AND c.peer = upto.peer`,
    [accountId, id],
  );
}
