// The gateway's own rejoins of the rooms its accounts joined (API.md Group chat: a join lasts until
// the account leaves, and survives restarts and link loss): marking rooms as being rejoined, and a
// rejoin the room's service refused for now (RFC 6120 §8.3.2 type "wait": Prosody's "Component
// unavailable" for a MUC component that is not connected, say) kept for a later attempt instead of
// failing the join for good (a request's own join is not: its refusal is its answer); and any join
// in flight, a request's too, that the room does not answer at all, sent again until it does.
import type { Stanza } from "../domain/stanza.js";
import { sql, type AnyTx } from "./client.js";
import { enqueueAhead } from "./outbox.js";
import { JOIN_RESEND_MS, type NickAnswer } from "../domain/muc.js";
import { ANSWER_BY, columns, type RoomRow } from "./rooms.js";

/**
 * Before a rejoin: every joined room (or only `one`) is joining again until it answers, as a
 * rejoin (rejoin_attempts, counted afresh: one refused for now before is sent now, not later, and
 * what is sent to the room waits behind it instead of being refused as while it waited:
 * src/services/rooms.ts rejoinWaiting); its known occupants are stale until presented again.
 * The error of a refusal for now goes with its count. A nick change's answer that its request may
 * not have read yet (src/services/room-joins.ts nickChangeAnswer) stays, unless `one` brings one
 * (`refused`); a nick change still under way (joined, no answer to it yet: join_stage null, and
 * not the rejoin under the nick it asked for, nick_before: rejoinAsAsked) is cut short: the rejoin
 * is under the nick the account had, and the room's answer to the change is for a presence it
 * had before it lost the account (src/services/inbound-room-refusal.ts ignores it).
 * `created` is the rejoin's own answer again (a PUT waiting for the
 * rejoin answers 201 only if the rejoin made the room anew). Each join sent now is sent again if
 * still unanswered at ANSWER_BY; after a reconnect (all rooms) so is a request's join in flight,
 * which goes out again with the rejoins (src/services/rooms.ts rejoin).
 */
export async function markRejoining(tx: AnyTx, one?: { accountId: number; room: string; refused?: RoomRow["error"] }): Promise<void> {
  const answer: NickAnswer | null = one?.refused ? { refused: one.refused } : null;
  await sql(
    tx,
    `WITH r AS (UPDATE room SET status = 'joining', join_stage = NULL, created = false, rejoin_attempts = 0, rejoin_at = ${ANSWER_BY}, join_resends = 0, updated_at = now(),
         error = NULL, nick_answer = COALESCE($3::json, CASE WHEN status = 'joined' AND join_stage IS NULL AND nick_before IS NULL THEN '{"cutShort":true}'::json ELSE nick_answer END)
       WHERE (status = 'joined' OR rejoin_attempts IS NOT NULL) AND ($1::int IS NULL OR (account_id = $1 AND room = $2)) RETURNING account_id, room)
     UPDATE room_occupant o SET stale = true FROM r WHERE o.account_id = r.account_id AND o.room = r.room`,
    [one?.accountId ?? null, one?.room ?? null, answer ? JSON.stringify(answer) : null],
  );
  if (!one) await sql(tx, `UPDATE room SET rejoin_at = ${ANSWER_BY}, join_resends = 0 WHERE status = 'joining' AND rejoin_attempts IS NULL`, []);
}

/**
 * The account is no longer in a room it was in, by no one's decision (a room's 333 or 332, or a
 * self-ping's answer): it enters again at once (`join`: src/domain/muc.ts rejoinRoom), ahead of
 * what is queued for the room, and the room is joining until it answers. `refused`: the error
 * kept as the answer to the account's nick change (fallBackNick).
 */
export async function rejoinNow(tx: AnyTx, accountId: number, room: string, join: Stanza, refused: RoomRow["error"] = null): Promise<void> {
  await markRejoining(tx, { accountId, room, refused });
  await enqueueAhead(tx, accountId, [join]);
}

/**
 * A nick change the room answered item-not-found (it had lost the account, or is gone): the
 * account enters again at once under the nick it asked for (`join`, to `nick`), the nick it was in
 * under (`before`) kept to enter under instead if the asked one is taken there (fallBackNick).
 */
export async function rejoinAsAsked(tx: AnyTx, accountId: number, room: string, nick: string, before: string, join: Stanza): Promise<void> {
  await sql(tx, "UPDATE room SET nick = $3, nick_before = $4, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, nick, before]);
  await rejoinNow(tx, accountId, room, join);
}

/**
 * The rejoin under the nick asked for (rejoinAsAsked) is refused, the nick taken in the room
 * (conflict): the nick the account was in under is its nick again. That nick, for the join that
 * enters under it (rejoinNow, with the refusal as the nick change's answer: the request waiting
 * on it reads it, as a refused nick change's, src/services/room-joins.ts nickChangeAnswer);
 * null, and nothing changed, when the room's row is no such rejoin.
 */
export async function fallBackNick(tx: AnyTx, accountId: number, room: string): Promise<string | null> {
  const rows = await sql<{ nick: string }>(
    tx,
    `UPDATE room SET nick = nick_before, nick_before = NULL, updated_at = now()
     WHERE account_id = $1 AND room = $2 AND status = 'joining' AND rejoin_attempts IS NOT NULL AND nick_before IS NOT NULL RETURNING nick`,
    [accountId, room],
  );
  return rows[0]?.nick ?? null;
}

/**
 * A rejoin the room's service refused for now (`error`): still joining, with the error (not the
 * answer of a nick change the rejoin is part of: fallBackNick's conflict stays), and sent
 * again after `retryMs` (first, most), doubling at each refusal. Null when the room's row is no
 * rejoin waiting for its answer (a request's join, or one answered meanwhile). `first`: this is
 * the rejoin's first refusal.
 */
export async function deferRejoin(tx: AnyTx, accountId: number, room: string, error: NonNullable<RoomRow["error"]>, retryMs: readonly [number, number]): Promise<{ at: Date; first: boolean } | null> {
  const rows = await sql<{ at: Date; first: boolean }>(
    tx,
    `UPDATE room SET error = $3::json, rejoin_attempts = rejoin_attempts + 1, updated_at = now(),
       rejoin_at = now() + make_interval(secs => least($4::float8 * power(2, rejoin_attempts), $5::float8) / 1000)
     WHERE account_id = $1 AND room = $2 AND status = 'joining' AND rejoin_attempts IS NOT NULL
     RETURNING rejoin_at AS at, rejoin_attempts = 1 AS first`,
    [accountId, room, JSON.stringify(error), retryMs[0], retryMs[1]],
  );
  return rows[0] ?? null;
}

/** Whether some rejoin is due again (a look that costs no transaction, every few seconds). */
export async function rejoinsDue(tx: AnyTx): Promise<boolean> {
  const rows = await sql<{ due: boolean }>(tx, "SELECT EXISTS (SELECT 1 FROM room WHERE rejoin_at <= now()) AS due", []);
  return rows[0]?.due === true;
}

/**
 * Joins recorded and not yet written to the link (their outbox row is there until the server
 * confirmed it; a rejoin's may be one row for several rooms: src/db/outbox.ts compress): SQL, the
 * (account_id, room) of each. Such a join waits behind what was queued before it, and its room
 * cannot have answered it yet.
 */
const QUEUED_JOINS = `SELECT o.account_id, split_part(t.to, '/', 1) AS room FROM outbox o, LATERAL (
    SELECT o.stanza->>'to' AS to WHERE o.stanza->>'kind' = 'muc-join'
    UNION ALL SELECT json_array_elements_text(o.stanza->'to') WHERE o.stanza->'fanout'->>'kind' = 'muc-join') t`;

/**
 * The joins due again, taken (on whichever instance looks first: each is taken once), with their
 * accounts' localparts: rejoins refused for now whose wait is over, and joins (a request's too)
 * the room has not answered. Each is sent again now, and again if still unanswered after twice
 * as long as the last wait for an answer (`resendMs`: first, most). A join still queued (behind a
 * backlog that takes longer than the wait to drain) is not sent twice: it is looked at again
 * after the first wait, its count as it was.
 */
export function takeDueRejoins(tx: AnyTx, resendMs: readonly [number, number] = JOIN_RESEND_MS): Promise<(RoomRow & { localpart: string })[]> {
  return sql(
    tx,
    `WITH q AS (${QUEUED_JOINS}),
     due AS (SELECT r.account_id, r.room, (r.account_id, r.room) IN (SELECT account_id, room FROM q) AS queued
             FROM room r WHERE r.rejoin_at <= now() AND r.status = 'joining' FOR UPDATE OF r SKIP LOCKED),
     d AS (UPDATE room SET updated_at = now(),
             join_resends = join_resends + CASE WHEN due.queued THEN 0 ELSE 1 END,
             rejoin_at = now() + make_interval(secs => CASE WHEN due.queued THEN $1::float8 ELSE least($1::float8 * power(2, join_resends + 1), $2::float8) END / 1000)
           FROM due WHERE room.account_id = due.account_id AND room.room = due.room RETURNING room.*, due.queued)
     SELECT ${columns("d")}, a.localpart FROM d JOIN account a ON a.id = d.account_id WHERE NOT d.queued`,
    [resendMs[0], resendMs[1]],
  );
}
