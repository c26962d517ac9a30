// Messages in both directions. Outbound rows are written `queued` with their entry in the message
// queue (many requests per statement) before the HTTP 202, then sent and taken out of the queue
// (src/db/outbox.ts); their row is not written again for that (src/db/message-status.ts).
import type pg from "pg";
import { blockedError } from "../domain/blocking.js";
import { AppError } from "../domain/errors.js";
import { blockCovers } from "./blocklist.js";
import { autocommit, isConflict, jsonParam as json, retryConflicts, sql, type AnyTx, type Db } from "./client.js";
import { isForeignKeyViolation } from "./errors.js";
import { CONVERSATIONS_LOCKED, lockConversations, touchConversations } from "./conversations.js";
import { correctionHoldsKey, keyUse, KEY_FRESH, releaseExpiredCorrectionKeys, saysSomething } from "./message-state.js";
import { readHistory } from "./message-history.js";
import { resolveStatuses } from "./message-status.js";
import { occupantSender } from "./room-lookups.js";
import { MESSAGE_COLUMNS } from "./message-columns.js";
import { rowsFrom, type Column } from "./rows.js";
import { StatementTexts } from "./statement-texts.js";
import type { Prisma } from "./generated/client.js";
import type { ChatState, LangText, MessageType, OutboundMessage, WireExt } from "../domain/message.js";
import type { MessageRecord } from "../domain/views.js";

export interface NewOutbound extends OutboundMessage {
  accountId: number;
  peer: string;
  idempotencyKey: string | null;
  /** Fingerprint of the request, kept with an idempotency key to recognise a retry. */
  requestHash: string | null;
}

export interface AcceptedMessage {
  id: string;
  status: string;
  createdAt: Date;
  /** True when this call created the row; false when an idempotent retry found it. */
  created: boolean;
  requestHash: string | null;
  message: OutboundMessage;
}

/** A keyed message found for a request: `expired`, its key's 24 h are over (by the database's clock: findByKeys). */
type KeyedRow = Row & { expired: boolean };
const outboundTexts = new StatementTexts(); // the outbound insert's two texts: one message, many

/** The columns of an outbound insert's rows, parameters $1..$15. */
const OUTBOUND_COLUMNS: Column<NewOutbound>[] = [
  ...MESSAGE_COLUMNS,
  { name: "key", type: "text", value: (m) => m.idempotencyKey },
  { name: "hash", type: "text", value: (m) => m.requestHash },
  { name: "ext", type: "json", value: (m) => json(m.ext) },
];

/** A message row `m` as views need it (src/domain/views.ts MessageRecord), its status as read. */
/**
 * What waits for the link, as two columns: `queued`, the outbound messages in the queue (counted
 * up to the limit in parameter `param`), and `outbox`, whether any stanza is in the outbox.
 */
export const queuedAhead = (param: string) =>
  `(SELECT count(*)::int FROM (SELECT 1 FROM message_queue ORDER BY seq LIMIT ${param}::int) q) AS queued, EXISTS (SELECT 1 FROM outbox) AS outbox`;

/** Takes the outbound messages whose ids are in parameter `param` out of the queue: the XMPP server confirmed them. */
export const markSentCtes = (param: string) =>
  // The seqs are collected first (an array, by the message's primary key) so that the queue is
  // searched by its own: whatever the statistics say, neither table is scanned.
  `dequeued AS (DELETE FROM message_queue WHERE seq = ANY (ARRAY(SELECT seq FROM message WHERE id = ANY(${param}::uuid[]))))`;

const select = {
  id: true, accountId: true, direction: true, peer: true, to: true, from: true, type: true, body: true, subject: true, thread: true, lang: true,
  receipt: true, state: true, status: true, error: true, createdAt: true, updatedAt: true, seq: true, idempotencyKey: true, requestHash: true,
  ext: true, editedAt: true, retractedAt: true, reactions: true, marker: true, stanzaId: true, originId: true,
} as const;

type Row = Prisma.MessageGetPayload<{ select: typeof select }>;

export function toOutbound(r: Pick<Row, "id" | "from" | "to" | "type" | "body" | "subject" | "thread" | "lang" | "receipt" | "state" | "ext">): OutboundMessage {
  return {
    id: r.id,
    from: r.from,
    to: r.to,
    type: r.type as MessageType,
    body: r.body as LangText | null,
    subject: r.subject as LangText | null,
    thread: r.thread,
    lang: r.lang,
    receipt: r.receipt,
    state: r.state as ChatState | null,
    ext: r.ext as WireExt | null,
  };
}

/** A message an idempotency key found, as an insert that met it reports it. */
const found = (prior: Row): AcceptedMessage => ({ id: prior.id, status: prior.status, createdAt: prior.createdAt, created: false, requestHash: prior.requestHash, message: toOutbound(prior) });

/**
 * What a receipt or error bounce did: marked the account's message; found that message (`id`, to
 * `peer`) to be another account's (`another`: the account may be cached under an id that is gone,
 * src/services/inbound-message.ts); or neither (no such message, or not on its way any more).
 */
export type Marked = "marked" | "another" | "none";

/**
 * Sets `set` on the account's outbound message `id` to `peer` (with `to`, only to that full JID) if
 * it is still on its way (queued, written or sent: src/db/message-status.ts). One statement, which
 * reads whose the message is too (the primary key's row, read anyway): `another` costs no more.
 */
async function mark(tx: AnyTx, accountId: number, id: string, peer: string, to: string | null, set: string, values: unknown[]): Promise<Marked> {
  const [r] = await sql<{ marked: boolean; owner: number | null }>(
    tx,
    `WITH u AS (UPDATE message SET ${set}, updated_at = now() WHERE id = $1::uuid AND account_id = $2 AND direction = 'out' AND peer = $3
                AND ($4::text IS NULL OR "to" = $4::text) AND status IN ('queued', 'written', 'sent') RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM u) AS marked, (SELECT account_id FROM message WHERE id = $1::uuid AND direction = 'out' AND peer = $3) AS owner`,
    [id, accountId, peer, to, ...values],
  );
  return r!.marked ? "marked" : r!.owner !== null && r!.owner !== accountId ? "another" : "none";
}

export class Messages {
  constructor(
    private readonly db: Db,
    private readonly pool: pg.Pool,
  ) {}

  /**
   * Inserts a batch of outbound messages in one statement. Rows whose idempotency key is already
   * taken are not inserted; the existing row is returned instead (or, if its key expired, the key
   * is released and the insert retried once).
   *
   * This and markSent are the hot path, so they bypass Prisma: measured per message, one
   * unnest() INSERT through pg costs 8-24 us of CPU against 300-450 us for createManyAndReturn
   * (bench/messages.ts). The columns are those of prisma/schema.prisma's Message.
   */
  async insertOutbound(items: NewOutbound[]): Promise<AcceptedMessage[]> {
    return (await this.insertOutboundChecked(items, { markSent: [], countQueuedUpTo: null })).results.map((r) => {
      if (r instanceof AppError) throw r;
      return r;
    });
  }

  /**
   * Inserts outbound messages as `queued`, in one statement that also does the link holder's
   * bookkeeping (src/services/delivery.ts): takes `markSent` out of the queue (messages the XMPP
   * server confirmed), and with `countQueuedUpTo` counts (up to that many) the outbound messages that were
   * queued before this insert (`queuedBefore`) and whether anything else is ahead of them
   * (`otherBefore`: a stanza in the outbox), so the holder can tell whether anything it does not
   * know of would have to go out before these messages.
   */
  async insertOutboundChecked(
    items: NewOutbound[],
    check: { markSent: string[]; countQueuedUpTo: number | null },
  ): Promise<{ results: (AcceptedMessage | AppError)[]; queuedBefore: number | null; otherBefore: boolean }> {
    // The writes and the counts read the snapshot from before the statement, so the count is of
    // what was queued ahead of these rows, including the ones being marked sent here.
    const u = rowsFrom(OUTBOUND_COLUMNS, items);
    // An account deleted while the statement ran fails its foreign key (the EXISTS below read it as
    // there): run again, the statement leaves that account's messages out and writes the others.
    // So is one Postgres chose as a deadlock's victim (rows of conversations, locked in key order,
    // as others' rows came into being meanwhile): nothing of it was committed.
    const { rows } = await retryConflicts(() => this.pool.query<{ id: string | null; created_at: Date | null; from: string | null; queued: number | null; outbox: boolean | null }>({
      name: items.length === 1 ? "insert-outbound-1" : "insert-outbound", // prepared: planned once per connection
      // rel: a key whose 24 h are over (by the database's clock, KEY_FRESH) is released first, so
      // its message is inserted as new in its place among the others (the sending audit of stop 65:
      // inserted by a statement of its own after them, it went out after the items that follow it).
      text: outboundTexts.get(items.length === 1 ? "1" : "n", () => `WITH ${markSentCtes("$16")}, ${lockConversations(u.from)}, rel AS (
         UPDATE message m SET idempotency_key = NULL, updated_at = now() FROM ${u.from}
         WHERE u.key IS NOT NULL AND m.account_id = u.account_id AND m.idempotency_key = u.key AND m.created_at <= ${KEY_FRESH}
         RETURNING m.id
       ), ins AS (
         INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, subject, thread, lang, receipt, state, status, idempotency_key, request_hash, ext)
         SELECT u.id, u.account_id, 'out', u.peer, u.to_jid, ${occupantSender("u")}, u.type, u.body, u.subject, u.thread, u.lang, u.receipt, u.state, 'queued', u.key, u.hash, u.ext
         FROM ${u.from}
         -- XEP-0191 §3.3: never to a JID the account blocked, whatever this instance's cache still
         -- says; nor for an account deleted since this instance looked it up.
         WHERE (u.key IS NULL OR NOT ${correctionHoldsKey("u.account_id", "u.key")}) AND NOT ${blockCovers("u.account_id", "u.to_jid")}
           AND EXISTS (SELECT 1 FROM account a WHERE a.id = u.account_id) AND ${CONVERSATIONS_LOCKED} AND (SELECT count(*) FROM rel) >= 0
         ORDER BY u.n
         ON CONFLICT DO NOTHING
         RETURNING id::text, created_at, account_id, peer, seq, ${saysSomething("message")} AS content, "from"
       ), queue AS (
         INSERT INTO message_queue (seq, message_id) SELECT seq, id::uuid FROM ins
       ), conv AS (
         ${touchConversations("(SELECT * FROM ins WHERE content) AS said", false)}
       )
       SELECT id, created_at, "from", NULL::int AS queued, NULL::bool AS outbox FROM ins
       UNION ALL
       SELECT NULL, NULL, NULL, ${queuedAhead("$17")}
       WHERE $17::int IS NOT NULL`),
      values: [...u.values, check.markSent, check.countQueuedUpTo],
    }), 3, (err) => isForeignKeyViolation(err) || isConflict(err));
    const counts = rows.find((r) => r.id === null);
    const created = rows.filter((r) => r.id !== null) as { id: string; created_at: Date; from: string }[];
    let unchecked = false;
    const byId = new Map(created.map((r) => [r.id, r]));
    const missing = items.filter((m) => !byId.has(m.id));
    // Only a keyed message is looked up by its key (a keyless one was left out: see the loop below).
    const keyed = missing.filter((m) => m.idempotencyKey !== null);
    const existing = keyed.length ? await this.findByKeys(keyed) : new Map<string, KeyedRow>();
    const unexplained = missing.filter((m) => m.idempotencyKey === null || !existing.has(`${m.accountId}\u0000${m.idempotencyKey}`));
    const gone = unexplained.length ? await this.accountsGone(unexplained) : new Set<number>();
    const results: (AcceptedMessage | AppError)[] = [];
    for (const m of items) {
      const row = byId.get(m.id);
      if (row) {
        m.from = row.from;
        results.push({ id: m.id, status: "queued", createdAt: row.created_at, created: true, requestHash: m.requestHash, message: m });
        continue;
      }
      const prior = m.idempotencyKey === null ? undefined : existing.get(`${m.accountId}\u0000${m.idempotencyKey}`);
      if (!prior) {
        // A correction holds the key (it makes no message row: src/db/message-state.ts): the key
        // answers for that request, whose fingerprint no new message has (it names what it
        // replaces), so the caller refuses this one as a reuse (API.md: a different payload).
        const use = m.idempotencyKey === null ? null : await keyUse(autocommit(this.pool), m.accountId, m.idempotencyKey);
        if (use === "message") throw new Error(`message ${m.id} was neither inserted nor found`);
        if (use !== null) {
          results.push({ id: use.messageId, status: "queued", createdAt: new Date(), created: false, requestHash: use.hash, message: m });
          continue;
        }
        // Left out by the insert, this message alone: its account was deleted since this instance
        // looked it up, or it blocked the recipient (XEP-0191 §3.3; another instance's block,
        // committed after this instance's cached list was read; maybe lifted again since).
        results.push(
          gone.has(m.accountId)
            ? new AppError("account-not-found", "the account was deleted while the request ran")
            : blockedError(m.to, "body.to"),
        );
        continue;
      }
      if (prior.expired) {
        // The key's 24 h are over: release it and accept the request as new.
        await this.db.message.updateMany({ where: { id: prior.id }, data: { idempotencyKey: null } });
        const [again] = (await this.insertOutboundChecked([m], { markSent: [], countQueuedUpTo: null })).results;
        unchecked = true;
        results.push(again!);
        continue;
      }
      results.push(found(prior));
    }
    // A row inserted by a second statement is not covered by the counts: report something ahead.
    return { results, queuedBefore: counts?.queued ?? null, otherBefore: (counts?.outbox ?? false) || unchecked };
  }

  /** Of the accounts of messages the insert left out, those that no longer exist (one statement for the batch). */
  private async accountsGone(items: NewOutbound[]): Promise<Set<number>> {
    const { rows } = await this.pool.query<{ id: number }>("SELECT v.id FROM unnest($1::int[]) AS v(id) WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.id = v.id)", [[...new Set(items.map((m) => m.accountId))]]);
    return new Set(rows.map((r) => r.id));
  }

  /** The message an account sent under an idempotency key (within its 24 h), as an insert that found it reports it. */
  async byKey(m: NewOutbound): Promise<AcceptedMessage | null> {
    const prior = m.idempotencyKey === null ? undefined : (await this.findByKeys([m])).get(`${m.accountId}\u0000${m.idempotencyKey}`);
    return prior && !prior.expired ? found(prior) : null;
  }

  private async findByKeys(items: NewOutbound[]): Promise<Map<string, KeyedRow>> {
    const rows = await this.db.message.findMany({
      where: { OR: items.map((m) => ({ accountId: m.accountId, idempotencyKey: m.idempotencyKey })) },
      select,
    });
    await resolveStatuses(this.pool, rows);
    // Aged by the database's clock, which stamped created_at (KEY_FRESH, as a correction's key): by
    // this instance's, one whose clock ran ahead took a retry inside the 24 h for a new request and
    // sent the message again (the retention audit).
    const expired = rows.length
      ? new Set((await this.pool.query<{ id: string }>(`SELECT id::text FROM message WHERE id = ANY($1::uuid[]) AND created_at <= ${KEY_FRESH}`, [rows.map((r) => r.id)])).rows.map((r) => r.id))
      : new Set<string>();
    return new Map(rows.map((r) => [`${r.accountId}\u0000${r.idempotencyKey}`, { ...r, expired: expired.has(r.id) }]));
  }

  async get(id: string): Promise<Row | null> {
    const row = await this.db.message.findUnique({ where: { id }, select });
    return row && (await resolveStatuses(this.pool, [row]))[0]!;
  }

  /** GET /v1/messages?with= (src/db/message-history.ts). */
  history(accountId: number, peer: string, before: number | null, after: number | null, limit: number): Promise<{ rows: MessageRecord[]; cut: boolean }> {
    return readHistory(this.pool, accountId, peer, before, after, limit);
  }

  /** XEP-0184 receipt: an outbound message reached the recipient (`to`: a room occupant's, only one sent to it). */
  markDelivered(tx: AnyTx, accountId: number, id: string, peer: string, to: string | null = null): Promise<Marked> {
    return mark(tx, accountId, id, peer, to, "status = 'delivered'", []);
  }

  /**
   * RFC 6120 §8.3: an error stanza bounced for an outbound message. A delivered one reached the
   * peer (its XEP-0184 receipt came): a late error bounce does not undo that.
   */
  markFailed(tx: AnyTx, accountId: number, id: string, peer: string, error: object): Promise<Marked> {
    return mark(tx, accountId, id, peer, null, "status = 'failed', error = $5::jsonb", [JSON.stringify(error)]);
  }

  async releaseExpiredKeys(): Promise<number> {
    // By the database's clock, as findByKeys: released early, a retry inside the 24 h would find no key.
    const { rowCount } = await this.pool.query(`UPDATE message SET idempotency_key = NULL, updated_at = now() WHERE idempotency_key IS NOT NULL AND created_at <= ${KEY_FRESH}`);
    const count = rowCount ?? 0;
    // Corrections' keys (src/db/message-state.ts keyUse) go with them.
    return count + (await releaseExpiredCorrectionKeys(this.pool));
  }
}
