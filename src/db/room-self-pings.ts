// The rooms to self-ping (XEP-0410, src/domain/muc-self-ping.ts): joined, and quiet for a while: no
// confirmation of the join, no self-ping and no room message since. Taken with an UPDATE, so with
// several link holders (XMPP_LINK_MODE=all) each room is pinged by one of them.
import { sql, type AnyTx } from "./client.js";

export interface QuietRoom {
  accountId: number;
  localpart: string;
  room: string;
  nick: string;
}

/**
 * Takes up to `limit` joined rooms quiet for `idleMs`, the quietest first: each is checked now (the
 * ping sent in the same transaction is the record of it), so the next ping waits another `idleMs`
 * whether or not this one is answered (§3.2: a timeout is tried again later).
 */
export function takeQuietRooms(tx: AnyTx, idleMs: number, limit: number): Promise<QuietRoom[]> {
  return sql(
    tx,
    `WITH q AS (SELECT account_id, room FROM room
                WHERE status = 'joined' AND GREATEST(checked_at, last_message_at) <= now() - make_interval(secs => $1::float8 / 1000)
                ORDER BY GREATEST(checked_at, last_message_at) LIMIT $2 FOR UPDATE SKIP LOCKED),
       u AS (UPDATE room r SET checked_at = now() FROM q WHERE r.account_id = q.account_id AND r.room = q.room RETURNING r.account_id, r.room, r.nick)
     SELECT u.account_id AS "accountId", a.localpart, u.room, u.nick FROM u JOIN account a ON a.id = u.account_id`,
    [idleMs, limit],
  );
}
