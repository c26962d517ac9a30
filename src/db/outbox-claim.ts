// The statement that claims a batch for the link holder's drain (src/db/outbox.ts drainOnce): the
// lease check and both queues in one round trip, and the columns a claimed message is read with.
import type { toOutbound } from "./messages.js";

/** Whether the claim may go ahead: this session still holds the link lease (src/db/lease.ts); naming the transaction after it. */
export const FENCED = `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $2::int::oid AND objid = $3::int::oid AND objsubid = 2
    AND pid = $4 AND granted) AS ok, set_config('application_name', $5, true)`;

/**
 * Claims up to $1 queued messages and up to $1 outbox rows, in sequence order each, if `gate` (a
 * one-row query with a boolean `ok`) allows. One snapshot for both, in which MOOT also reads.
 * A queued message whose row is gone (deleted by hand: src/db/accounts.ts delete hands the queue
 * over to the outbox first) or no longer queued (a receipt or an error came first) comes back
 * with `id` or `status` other than expected: it leaves the queue unsent. An outbox row has `stanza`
 * (src/db/outbox.ts ClaimedRow).
 */
export const claimSql = (gate: string) => `WITH f AS MATERIALIZED (${gate}),
   q AS (SELECT q.seq, ${CLAIMED_COLUMNS.join(", ")}, NULL::json AS stanza
         FROM message_queue q LEFT JOIN message m ON m.id = q.message_id WHERE (SELECT ok FROM f) ORDER BY q.seq LIMIT $1 FOR UPDATE OF q SKIP LOCKED),
   o AS (SELECT seq, stanza FROM outbox WHERE (SELECT ok FROM f) ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
 SELECT * FROM q
 UNION ALL
 SELECT seq, ${CLAIMED_COLUMNS.map(() => "NULL").join(", ")}, stanza FROM o`;

const OUTBOUND_FIELDS = ["m.id::text", 'm."from"', 'm."to"', "m.type", "m.body", "m.subject", "m.thread", "m.lang", "m.receipt", "m.state", "m.ext"];

/** A queued message's columns as the drain reads them (toOutbound), of the message row aliased `m`. */
export const OUTBOUND_COLUMNS = OUTBOUND_FIELDS.join(", ");

/** A claimed queue row: the message (null fields when it is gone), whether it was retracted, and its moot stanzas (MOOT). */
export type Claimed = Parameters<typeof toOutbound>[0] & { seq: number; status: string | null; retracted: boolean | null; moot: string[] | null };

/**
 * The outbox rows that a queued message's sending makes moot: stanzas about it (XEP-0308
 * corrections, XEP-0424 retractions, XEP-0444 reactions: message actions, never fanned out) that
 * were recorded while it waited. Read in the claim's snapshot, with the very text that is sent, so
 * only changes that text already reflects are dropped; one committed after the claim goes out
 * behind the message, as for a message already sent. A retracted message is not sent at all
 * (XEP-0424 Business Rules: the service SHOULD prevent further distribution), so nothing about it
 * goes either: not its retraction (of a message the peer never had), not its corrections (their
 * text is what was retracted), not its reactions. A corrected one goes out once, with its latest
 * text: the queued corrections would repeat that text (shown twice by a client without XEP-0308),
 * while its reactions still follow it. Looked up only for a message that was edited or retracted
 * (a scan of the outbox, which holds only what waits for the link): a plain one costs nothing.
 */
export const MOOT = `CASE WHEN m.retracted_at IS NOT NULL OR m.edited_at IS NOT NULL THEN ARRAY(
    SELECT o.seq::text FROM outbox o WHERE o.stanza->>'kind' = 'message-action' AND o.stanza->'action'->>'ref' = m.id::text
      AND (m.retracted_at IS NOT NULL OR o.stanza->'action'->>'kind' = 'replace')) END`;

/** A claimed queue row's columns after its seq (Claimed); an outbox row has NULL in each. */
const CLAIMED_COLUMNS = [...OUTBOUND_FIELDS, "m.status::text", "m.retracted_at IS NOT NULL AS retracted", `${MOOT} AS moot`];
