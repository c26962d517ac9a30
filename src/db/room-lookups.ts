// What a batch of received room messages needs to know before it is stored
// (src/services/inbound-room.ts roomMessage), read in ONE statement for the whole batch instead of
// two per message: for each message, whether the account is in the room, under which nick (the
// room reflects the account's own messages from it, XEP-0045 §7.4), the sender's real JID as the
// room presented it (§7.2.3), and whether the message is already stored for this room (a room may
// send a message live and again as history after a rejoin, §7.2.15): the same sender's stanza id,
// or the same XEP-0359 stanza-id the room gave it (which finds it also when the sender gave no id,
// or one too long to store).
import { sql, type AnyTx } from "./client.js";
import { storedId } from "../domain/message-features.js";
import { ROOM_RESOURCE } from "../domain/muc.js";

/**
 * SQL: the sender of an outbound message row `u` (its to_jid, peer, type, account_id, from_jid). A
 * message (not a group message) to a full JID whose bare JID is one of the account's rooms is a
 * private message to an occupant: it goes from the account's occupant JID, as the room knows it
 * (XEP-0045 §7.5: the room answers anyone who is not an occupant with not-acceptable, so a room the
 * account is not in refuses it either way). Looked up inside the message's insert
 * (src/db/messages.ts), so a message pays no round trip for it.
 */
export const occupantSender = (u: string) => `CASE WHEN ${u}.type <> 'groupchat' AND ${toOccupant(`${u}.account_id`, `${u}.to_jid`)}
  THEN split_part(${u}.from_jid, '/', 1) || '/${ROOM_RESOURCE}' ELSE ${u}.from_jid END`;

/**
 * SQL: whether the JID `to` (an SQL expression) is an occupant JID (room@service/nick) of one of
 * the rooms of account `account`: what the account sends it goes from its occupant JID (XEP-0045 §7.5).
 */
export const toOccupant = (account: string, to: string) =>
  `(strpos(${to}, '/') > 0 AND EXISTS (SELECT 1 FROM room r WHERE r.account_id = ${account} AND r.room = split_part(${to}, '/', 1)))`;

export interface RoomMessageKey {
  accountId: number;
  room: string;
  /** The sender's nick (the resource of room@service/nick), null for the room itself. */
  nick: string | null;
  /** The stanza's id, null when it has none. */
  stanzaId: string | null;
  /**
   * From the room's history (delayed, §7.2.15): only there is the sender's id a sign of a copy.
   * Live, a sender may use an id again on a new stream (RFC 6120 §8.1.3): it is another message.
   */
  history: boolean;
  /** The XEP-0359 stanza-id the room gave it (kept as its origin_id), null when none. Both null: never "seen". */
  roomStanzaId: string | null;
  /** The stanza's `from` as received. */
  from: string;
}

export interface RoomMessageFacts {
  /** The account's nick in the room. */
  selfNick: string;
  /** The occupant's real JID as the room presented it, if it did. */
  occupantJid: string | null;
  /** A copy of it is stored for this room: the same stanza-id the room gave it, or in the history the same sender's id. */
  seen: boolean;
}

/**
 * For each key, in order: its facts, or null when the account is not in the room (no row). Ids
 * are compared as stored (storedId: an id too long to index is never stored, so never seen).
 */
export async function lookupRoomMessages(tx: AnyTx, keys: readonly RoomMessageKey[]): Promise<(RoomMessageFacts | null)[]> {
  if (keys.length === 0) return [];
  const rows = await sql<RoomMessageFacts & { n: string | number }>(
    tx,
    `SELECT k.n, r.nick AS "selfNick", o.jid AS "occupantJid",
       ((k.stanza_id IS NOT NULL AND EXISTS (SELECT 1 FROM message m WHERE m.account_id = k.account_id AND m.peer = k.room
          AND m.stanza_id = k.stanza_id AND m."from" = k.from_jid AND m.direction = 'in'))
        OR (k.room_stanza_id IS NOT NULL AND EXISTS (SELECT 1 FROM message m WHERE m.account_id = k.account_id AND m.peer = k.room
          AND m.origin_id = k.room_stanza_id AND m.direction = 'in' AND m.type = 'groupchat'))) AS seen
     FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS k(account_id, room, nick, stanza_id, from_jid, room_stanza_id, n)
     JOIN room r ON r.account_id = k.account_id AND r.room = k.room
     LEFT JOIN room_occupant o ON o.account_id = k.account_id AND o.room = k.room AND o.nick = k.nick`,
    [keys.map((k) => k.accountId), keys.map((k) => k.room), keys.map((k) => k.nick), keys.map((k) => (k.history ? storedId(k.stanzaId) : null)), keys.map((k) => k.from), keys.map((k) => storedId(k.roomStanzaId))],
    true,
  );
  const out: (RoomMessageFacts | null)[] = keys.map(() => null);
  for (const r of rows) out[Number(r.n) - 1] = { selfNick: r.selfNick, occupantJid: r.occupantJid, seen: r.seen };
  return out;
}

/** A room's latest message time, written with the batch (src/db/inbound-writes.ts storeInbound). */
export type RoomSeen = { accountId: number; room: string; at: Date };

/** Rooms' latest message times (a rejoin asks for the history after it, §7.2.15), one statement for a batch; `when`: SQL that must hold for any update. */
export function sawRoomMessagesCte(first: number, seen: readonly RoomSeen[], when: string | null = null): { cte: string; values: unknown[] } {
  return {
    cte: `saw AS (UPDATE room SET last_message_at = GREATEST(COALESCE(last_message_at, s.at), s.at)
       FROM unnest($${first}::int[], $${first + 1}::text[], $${first + 2}::timestamp(3)[]) AS s(account_id, room, at)
       WHERE room.account_id = s.account_id AND room.room = s.room${when ? ` AND ${when}` : ""})`,
    values: [seen.map((s) => s.accountId), seen.map((s) => s.room), seen.map((s) => s.at)],
  };
}

/**
 * Whether the account is in `room` (the room confirmed its join): an iq the room passes on from an
 * occupant to the account's occupant JID is then the account's to answer (src/xmpp/iq.ts).
 */
export async function inRoom(tx: AnyTx, accountId: number, room: string): Promise<boolean> {
  return (await sql(tx, "SELECT 1 FROM room WHERE account_id = $1 AND room = $2 AND status = 'joined'", [accountId, room])).length > 0;
}
