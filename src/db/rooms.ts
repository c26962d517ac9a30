// Rooms an account joined (XEP-0045) and their occupants as the rooms presented them. Raw SQL that
// runs in either kind of transaction: the inbound path (room presence and messages) and the HTTP
// use cases share it.
import { sql, type AnyTx } from "./client.js";

export type RoomStatus = "joining" | "joined" | "failed";

/**
 * How far the room answered the latest join or nick change (XEP-0045 §7.2): null, not yet;
 * "presence", it presented the account itself (status 110, §7.2.2); "subject", its subject
 * message came after that, the last stanza of a join (§7.2.16).
 */
export type JoinStage = "presence" | "subject" | null;

export interface RoomRow {
  accountId: number;
  room: string;
  nick: string;
  password: string | null;
  status: RoomStatus;
  role: string | null;
  affiliation: string | null;
  created: boolean;
  subject: unknown;
  error: { type: string; condition: string; text?: string } | null;
  lastMessageAt: Date | null;
  history: { maxStanzas?: number; since?: string } | null;
  joinedAt: Date | null;
  joinStage: JoinStage;
}

/**
 * Whether what the account sends to the room goes out (after its join presence, in the outbox's
 * order): joined, or joining, first or again after a reconnect (API.md: a join lasts until the
 * account leaves). A join the room then refuses fails what was sent with it.
 */
export const occupies = (row: RoomRow | null): boolean => row?.status === "joined" || row?.status === "joining";

export interface OccupantRow {
  nick: string;
  role: string;
  affiliation: string;
  jid: string | null;
}

const columns = (t: string) => `${t}.account_id AS "accountId", ${t}.room, ${t}.nick, ${t}.password, ${t}.status, ${t}.role, ${t}.affiliation,
  ${t}.created, ${t}.subject, ${t}.error, ${t}.last_message_at AS "lastMessageAt", ${t}.history, ${t}.joined_at AS "joinedAt",
  ${t}.join_stage AS "joinStage"`;
const COLUMNS = columns("room");

/**
 * Records a join of a room the account is not in (no row, or a failed join): status joining until
 * the room answers. `created` is this join's answer (API.md: 201 only if this join created the
 * room), not an earlier one's. False, and nothing recorded, when a concurrent request recorded
 * a join first (its row is there, not failed): the caller looks again rather than join twice.
 */
export async function recordJoin(tx: AnyTx, accountId: number, room: string, nick: string, password: string | null, history: RoomRow["history"]): Promise<boolean> {
  const rows = await sql(
    tx,
    `INSERT INTO room (account_id, room, nick, password, status, history) VALUES ($1, $2, $3, $4, 'joining', $5::json)
     ON CONFLICT (account_id, room) DO UPDATE SET nick = EXCLUDED.nick, password = EXCLUDED.password, status = 'joining', error = NULL,
       created = false, history = EXCLUDED.history, join_stage = NULL, updated_at = now()
     WHERE room.status = 'failed'
     RETURNING 1`,
    [accountId, room, nick, password, history === null ? null : JSON.stringify(history)],
  );
  if (rows.length === 0) return false;
  await sql(tx, "DELETE FROM room_occupant WHERE account_id = $1 AND room = $2", [accountId, room]);
  return true;
}

/** The account's row for the room; `lock`: FOR UPDATE, so that requests on one join take turns. */
export async function findRoom(tx: AnyTx, accountId: number, room: string, lock = false): Promise<RoomRow | null> {
  return (await sql<RoomRow>(tx, `SELECT ${COLUMNS} FROM room WHERE account_id = $1 AND room = $2${lock ? " FOR UPDATE" : ""}`, [accountId, room]))[0] ?? null;
}

export function listRooms(tx: AnyTx, accountId: number): Promise<RoomRow[]> {
  return sql<RoomRow>(tx, `SELECT ${COLUMNS} FROM room WHERE account_id = $1 AND status <> 'failed' ORDER BY room`, [accountId]);
}

/** Every room to be in (after a restart or a reconnect), with its account's localpart. */
export function roomsToRejoin(tx: AnyTx): Promise<(RoomRow & { localpart: string })[]> {
  return sql(tx, `SELECT ${columns("r")}, a.localpart FROM room r JOIN account a ON a.id = r.account_id WHERE r.status <> 'failed'`, []);
}

export function occupants(tx: AnyTx, accountId: number, room: string): Promise<OccupantRow[]> {
  return sql<OccupantRow>(tx, "SELECT nick, role, affiliation, jid FROM room_occupant WHERE account_id = $1 AND room = $2 ORDER BY nick", [accountId, room]);
}

export async function deleteRoom(tx: AnyTx, accountId: number, room: string): Promise<boolean> {
  return (await sql(tx, "DELETE FROM room WHERE account_id = $1 AND room = $2 RETURNING 1", [accountId, room])).length > 0;
}

/**
 * The room confirmed the join (self-presence, status 110). Occupants known from before a rejoin
 * that the room did not present again left meanwhile: they are removed and their nicks returned.
 */
export async function markJoined(tx: AnyTx, accountId: number, room: string, role: string, affiliation: string, created: boolean): Promise<string[]> {
  const rows = await sql<{ nick: string }>(
    tx,
    `WITH r AS (
       UPDATE room SET status = 'joined', role = $3, affiliation = $4, created = created OR $5, joined_at = COALESCE(joined_at, now()), error = NULL, updated_at = now()
       WHERE account_id = $1 AND room = $2
     )
     DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND stale RETURNING nick`,
    [accountId, room, role, affiliation, created],
  );
  return rows.map((r) => r.nick).sort();
}

export async function markFailed(tx: AnyTx, accountId: number, room: string, error: RoomRow["error"]): Promise<void> {
  await sql(tx, "UPDATE room SET status = 'failed', error = $3::json, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, JSON.stringify(error)]);
}

export async function putOccupant(tx: AnyTx, accountId: number, room: string, o: OccupantRow): Promise<void> {
  await sql(
    tx,
    `INSERT INTO room_occupant (account_id, room, nick, role, affiliation, jid) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (account_id, room, nick) DO UPDATE SET role = EXCLUDED.role, affiliation = EXCLUDED.affiliation, jid = EXCLUDED.jid, stale = false`,
    [accountId, room, o.nick, o.role, o.affiliation, o.jid],
  );
}

export async function removeOccupant(tx: AnyTx, accountId: number, room: string, nick: string): Promise<void> {
  await sql(tx, "DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND nick = $3", [accountId, room, nick]);
}

/**
 * The room's subject message (null: the room has none). Sent after the self-presence it ends a
 * join (XEP-0045 §7.2.16); one from before it (an earlier join's) leaves the stage alone.
 */
export async function setSubject(tx: AnyTx, accountId: number, room: string, subject: unknown): Promise<void> {
  await sql(
    tx,
    `UPDATE room SET subject = $3::json, join_stage = CASE WHEN join_stage IS NULL THEN NULL ELSE 'subject' END, updated_at = now()
     WHERE account_id = $1 AND room = $2`,
    [accountId, room, subject === null ? null : JSON.stringify(subject)],
  );
}

/**
 * The room presented the account itself (available self-presence, status 110) under `nick`: the
 * nick it really has there, which may differ from the one asked for (§7.2.2: the service may
 * assign or modify it, status 210; servers also prepare it, e.g. NFKC).
 */
export async function presented(tx: AnyTx, accountId: number, room: string, nick: string): Promise<void> {
  await sql(tx, "UPDATE room SET nick = $3, join_stage = COALESCE(join_stage, 'presence'), updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, nick]);
}

/** A nick change (XEP-0045 §7.6) was sent: no answer to it yet, neither error nor self-presence. */
export async function beginNickChange(tx: AnyTx, accountId: number, room: string): Promise<void> {
  await sql(tx, "UPDATE room SET error = NULL, join_stage = NULL, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room]);
}

/**
 * The room's error answer, on a room the account stays in (a refused nick change, XEP-0045
 * §7.6.3: the occupant keeps its old nick), for the request waiting on the change.
 */
export async function setRoomError(tx: AnyTx, accountId: number, room: string, error: NonNullable<RoomRow["error"]>): Promise<void> {
  await sql(tx, "UPDATE room SET error = $3::json, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, JSON.stringify(error)]);
}

/** Our own nick changed (status 303 about ourselves). */
export async function renameSelf(tx: AnyTx, accountId: number, room: string, nick: string): Promise<void> {
  await sql(tx, "UPDATE room SET nick = $3, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, nick]);
}

/** The room gave the account another role or affiliation while it is in the room. */
export async function setSelfPrivileges(tx: AnyTx, accountId: number, room: string, role: string, affiliation: string): Promise<void> {
  await sql(tx, "UPDATE room SET role = $3, affiliation = $4, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, role, affiliation]);
}

/**
 * An occupant changed nick (status 303): the same occupant under its new nick (a row left under
 * that nick, which the room no longer has, gives way).
 */
export async function renameOccupant(tx: AnyTx, accountId: number, room: string, nick: string, newNick: string): Promise<void> {
  if (nick === newNick) return;
  await sql(tx, "DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND nick = $3", [accountId, room, newNick]);
  await sql(tx, "UPDATE room_occupant SET nick = $4 WHERE account_id = $1 AND room = $2 AND nick = $3", [accountId, room, nick, newNick]);
}

/**
 * Before a rejoin: every room is joining again until it answers; its known occupants are stale
 * until presented again. `created` is the rejoin's own answer again (a PUT waiting for the rejoin
 * answers 201 only if the rejoin made the room anew).
 */
export async function markRejoining(tx: AnyTx): Promise<void> {
  await sql(
    tx,
    `WITH r AS (UPDATE room SET status = 'joining', join_stage = NULL, created = false, updated_at = now() WHERE status = 'joined' RETURNING account_id, room)
     UPDATE room_occupant o SET stale = true FROM r WHERE o.account_id = r.account_id AND o.room = r.room`,
    [],
  );
}

/** Our join created the room (status 201): still joining until the instant-room configuration is accepted. */
export async function markCreated(tx: AnyTx, accountId: number, room: string, role: string, affiliation: string): Promise<void> {
  await sql(tx, "UPDATE room SET created = true, role = $3, affiliation = $4, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, role, affiliation]);
}

/**
 * The room reflected the account's group message (XEP-0045 §7.4): it is `sent` now (the reflection
 * may come before the link recorded the write). `again` when it was reflected before (history
 * replayed after a rejoin), `unknown` when it is no message of the account's. `stanzaId`: the
 * XEP-0359 stanza-id the room gave it, kept as its origin_id (XEP-0424 and XEP-0444 name a group
 * message by it; the first the room gave stays).
 */
export async function markReflected(tx: AnyTx, accountId: number, id: string, stanzaId: string | null = null): Promise<"first" | "again" | "unknown"> {
  const rows = await sql<{ first: boolean }>(
    tx,
    `WITH m AS (SELECT id, status, origin_id FROM message WHERE id = $1::uuid AND account_id = $2 AND direction = 'out'),
       u AS (UPDATE message SET status = CASE WHEN status IN ('queued', 'written') THEN 'sent' ELSE status END, origin_id = COALESCE(origin_id, $3::text), updated_at = now()
             WHERE id IN (SELECT id FROM m WHERE status IN ('queued', 'written') OR (origin_id IS NULL AND $3::text IS NOT NULL)))
     SELECT status IN ('queued', 'written') AS first FROM m`,
    [id, accountId, stanzaId],
  );
  return rows.length === 0 ? "unknown" : rows[0]!.first ? "first" : "again";
}

/** The role and affiliation the room last gave this occupant, or null when it was not present. */
export async function occupantPrivileges(tx: AnyTx, accountId: number, room: string, nick: string): Promise<{ role: string; affiliation: string } | null> {
  const rows = await sql<{ role: string; affiliation: string }>(tx, "SELECT role, affiliation FROM room_occupant WHERE account_id = $1 AND room = $2 AND nick = $3", [accountId, room, nick]);
  return rows[0] ?? null;
}
