// Rooms an account joined (XEP-0045) and their occupants as the rooms presented them. Raw SQL that runs
// in either kind of transaction: the inbound path (room presence and messages) and the HTTP use cases share it.
import { blockCovers } from "./blocklist.js";
import { sql, type AnyTx } from "./client.js";
import { raised } from "./errors.js";
import { notifyLogHeadSql } from "./events.js";
import { CHANNELS } from "./notify.js";
import { enqueueIf } from "./outbox.js";
import type { Stanza } from "../domain/stanza.js";
import { JOIN_RESEND_MS, type NickAnswer } from "../domain/muc.js";

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
  /** The join's refusal (failed), or the refusals for now of a rejoin waiting (src/db/room-rejoins.ts deferRejoin). */
  error: { type: string; condition: string; text?: string; alternate?: string } | null; // alternate: where a room answering gone went
  lastMessageAt: Date | null;
  history: { maxStanzas?: number; since?: string } | null;
  joinedAt: Date | null;
  joinStage: JoinStage;
  /** A rejoin by the gateway waiting for the room: the refusals "for now" so far (src/db/room-rejoins.ts); null: none. */
  rejoinAttempts: number | null;
  /** When the join in flight goes out again unless the room answers first (src/db/room-rejoins.ts); null: none in flight. */
  rejoinAt: Date | null;
  /**
   * While the gateway enters the room again under a nick the account asked for in a nick change
   * the room answered item-not-found (src/db/room-rejoins.ts rejoinAsAsked): the nick it was in
   * under before, to enter under if the asked one is taken. Null otherwise.
   */
  nickBefore: string | null;
  /** How the account's latest nick change ended other than renamed (setNickRefusal; src/db/room-rejoins.ts markRejoining, fallBackNick). */
  nickAnswer: NickAnswer | null;
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

export const columns = (t: string) => `${t}.account_id AS "accountId", ${t}.room, ${t}.nick, ${t}.password, ${t}.status, ${t}.role, ${t}.affiliation,
  ${t}.created, ${t}.subject, ${t}.error, ${t}.last_message_at AS "lastMessageAt", ${t}.history, ${t}.joined_at AS "joinedAt",
  ${t}.join_stage AS "joinStage", ${t}.rejoin_attempts AS "rejoinAttempts", ${t}.rejoin_at AS "rejoinAt", ${t}.nick_before AS "nickBefore",
  ${t}.nick_answer AS "nickAnswer"`;
const COLUMNS = columns("room");

/** Stanzas recorded with a join (its presence), and the instance that records them (src/db/outbox.ts enqueueIf). */
type JoinSend = { stanzas: readonly Stanza[]; origin: string };

/**
 * Records a join of a room the account is not in (no row, or a failed join): status joining until
 * the room answers. `created` is this join's answer (API.md: 201 only if this join created the
 * room), not an earlier one's. "taken", nothing recorded, when the account has a row for the room
 * that is not a failed join: that row is locked then (ON CONFLICT DO UPDATE locks it whatever its
 * WHERE), for the caller to read. "blocked", nothing recorded, when the committed blocklist covers
 * room/nick (XEP-0191 §3.3): a block another instance just committed counts (db/blocklist.ts). "full",
 * nothing recorded, when the account is in MAX_ROOMS other rooms (trigger room_cap; it aborts a transaction).
 */
export async function recordJoin(tx: AnyTx, accountId: number, room: string, nick: string, password: string | null, history: RoomRow["history"], send: JoinSend | null = null): Promise<"recorded" | "taken" | "blocked" | "full"> {
  // A refused join's occupants go with it, in the same statement, and so does `send` (the join presence), if j has a row.
  const out = send ? enqueueIf("j", 6, accountId, send.stanzas, send.origin) : null;
  const rows = await sql<{ recorded: boolean }>(
    tx,
    `WITH b AS (SELECT ${blockCovers("$1::int", "($2::text || '/' || $3::text)")} AS blocked), j AS (
       INSERT INTO room (account_id, room, nick, password, status, history, rejoin_at) SELECT $1::int, $2::text, $3::text, $4::text, 'joining', $5::json, ${ANSWER_BY} WHERE NOT (SELECT blocked FROM b)
       ON CONFLICT (account_id, room) DO UPDATE SET nick = EXCLUDED.nick, password = EXCLUDED.password, status = 'joining', error = NULL,
         created = false, history = EXCLUDED.history, join_stage = NULL, rejoin_attempts = NULL, rejoin_at = EXCLUDED.rejoin_at, join_resends = 0, nick_before = NULL, nick_answer = NULL, updated_at = now()
       WHERE room.status = 'failed' RETURNING 1
     ), o AS (DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND EXISTS (SELECT 1 FROM j))${out ? `, ${out.cte}` : ""}
     SELECT true AS recorded${out ? `, ${out.notify}` : ""} FROM j UNION ALL SELECT false${out ? ", NULL" : ""} FROM b WHERE blocked`,
    [accountId, room, nick, password, history === null ? null : JSON.stringify(history), ...(out?.values ?? [])],
  ).catch((err: unknown) => (raised(err, "too-many-rooms") ? null : Promise.reject(err)));
  return rows === null ? "full" : rows.length === 0 ? "taken" : rows[0]!.recorded ? "recorded" : "blocked";
}

/**
 * When a join sent now is sent again if the room has not answered it (JOIN_RESEND_MS; src/db/
 * room-rejoins.ts takeDueRejoins): SQL, for a room row's rejoin_at.
 */
export const ANSWER_BY = `now() + interval '${JOIN_RESEND_MS[0]} milliseconds'`;

/** The account's row for the room, the account by id or by localpart (what a room's answer to our
 * occupant JID names); `lock`: FOR UPDATE, so that requests on one join take turns. */
export async function findRoom(tx: AnyTx, account: number | { localpart: string }, room: string, lock = false): Promise<RoomRow | null> {
  const [who, key] = typeof account === "number" ? ["$1::int", account] : ["(SELECT id FROM account WHERE localpart = $1::text)", account.localpart];
  return (await sql<RoomRow>(tx, `SELECT ${COLUMNS} FROM room WHERE account_id = ${who} AND room = $2${lock ? " FOR UPDATE" : ""}`, [key, room]))[0] ?? null;
}

/** findRoom with the room's occupants (as occupants() lists them) in one statement: a join's answer shows both. */
export async function findRoomView(tx: AnyTx, accountId: number, room: string): Promise<(RoomRow & { occupants: OccupantRow[] }) | null> {
  const rows = await sql<RoomRow & { occupants: OccupantRow[] }>(
    tx,
    `SELECT ${COLUMNS}, COALESCE((SELECT json_agg(json_build_object('nick', o.nick, 'role', o.role, 'affiliation', o.affiliation, 'jid', o.jid) ORDER BY o.nick)
       FROM room_occupant o WHERE o.account_id = room.account_id AND o.room = room.room), '[]') AS occupants
     FROM room WHERE account_id = $1 AND room = $2`,
    [accountId, room],
    true,
  );
  return rows[0] ?? null;
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
 * The room confirmed the join (self-presence, status 110): a rejoin's refusals for now are over (the nick change's answer
 * stays). Occupants known from before a rejoin that the room did not present again left meanwhile: removed, their nicks returned.
 */
export async function markJoined(tx: AnyTx, accountId: number, room: string, role: string, affiliation: string, created: boolean): Promise<string[]> {
  const rows = await sql<{ nick: string }>(
    tx,
    `WITH r AS (
       UPDATE room SET status = 'joined', role = $3, affiliation = $4, created = created OR $5, joined_at = COALESCE(joined_at, now()),
         error = NULL, rejoin_attempts = NULL, rejoin_at = NULL, nick_before = NULL, checked_at = now(), updated_at = now()
       WHERE account_id = $1 AND room = $2
     )
     DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND stale RETURNING nick`,
    [accountId, room, role, affiliation, created],
  );
  return rows.map((r) => r.nick).sort();
}

export async function markFailed(tx: AnyTx, accountId: number, room: string, error: RoomRow["error"]): Promise<void> {
  await sql(tx, "UPDATE room SET status = 'failed', error = $3::json, rejoin_attempts = NULL, rejoin_at = NULL, nick_before = NULL, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, JSON.stringify(error)]);
}

/** A self-presence (status 110, XEP-0045 §7.2.2): what occupantPresence records beyond the occupant; see presented, markCreated. */
export type SelfPresence = "presented" | "created" | null;

/**
 * An occupant's available presence (XEP-0045 §7.2.3), in one statement: the account's row for the
 * room as it was (null: not in the room, and nothing is written), the role and affiliation the room
 * last gave that occupant (null: it was not present), and the occupant stored (a known one is no
 * longer stale). `self`, for a presence with status 110: the account itself, presented under that
 * nick (presented) and, with status 201, the room's creator (markCreated). Every part sees the rows
 * as they were before the statement.
 */
export async function occupantPresence(
  tx: AnyTx,
  accountId: number,
  room: string,
  o: OccupantRow,
  self: SelfPresence,
): Promise<{ row: RoomRow; before: { role: string; affiliation: string } | null } | null> {
  const rows = await sql<RoomRow & { beforeRole: string | null; beforeAffiliation: string | null }>(
    tx,
    `WITH r AS (SELECT ${COLUMNS} FROM room WHERE account_id = $1 AND room = $2),
       b AS (SELECT role, affiliation FROM room_occupant WHERE account_id = $1 AND room = $2 AND nick = $3),
       o AS (INSERT INTO room_occupant (account_id, room, nick, role, affiliation, jid) SELECT $1::int, $2::text, $3::text, $4::text, $5::text, $6::text FROM r
             ON CONFLICT (account_id, room, nick) DO UPDATE SET role = EXCLUDED.role, affiliation = EXCLUDED.affiliation, jid = EXCLUDED.jid, stale = false),
       s AS (UPDATE room SET nick = $3, join_stage = COALESCE(join_stage, 'presence'), created = created OR $8::boolean,
               role = CASE WHEN $8 THEN $4 ELSE role END, affiliation = CASE WHEN $8 THEN $5 ELSE affiliation END, updated_at = now()
             WHERE account_id = $1 AND room = $2 AND $7::boolean)
     SELECT r.*, b.role AS "beforeRole", b.affiliation AS "beforeAffiliation" FROM r LEFT JOIN b ON true`,
    [accountId, room, o.nick, o.role, o.affiliation, o.jid, self !== null, self === "created"],
    true,
  );
  if (rows.length === 0) return null;
  const { beforeRole, beforeAffiliation, ...row } = rows[0]!;
  return { row, before: beforeRole === null ? null : { role: beforeRole, affiliation: beforeAffiliation! } };
}

export async function removeOccupant(tx: AnyTx, accountId: number, room: string, nick: string): Promise<void> {
  await sql(tx, "DELETE FROM room_occupant WHERE account_id = $1 AND room = $2 AND nick = $3", [accountId, room, nick]);
}

/**
 * The room's subject message (null: the room has none, kept as JSON null, not the SQL NULL of a room
 * not heard from yet). Sent after the self-presence it ends a join (XEP-0045 §7.2.16); one from
 * before it (an earlier join's) leaves the stage alone. `same` when it is the subject the account
 * had (a rejoin's, none included), with its nick there; null when the account has no such room.
 */
export async function setSubject(tx: AnyTx, accountId: number, room: string, subject: unknown): Promise<{ same: boolean; nick: string } | null> {
  const rows = await sql<{ same: boolean; nick: string }>(
    tx,
    `UPDATE room SET subject = $3::json, join_stage = CASE WHEN join_stage IS NULL THEN NULL ELSE 'subject' END, updated_at = now()
     FROM (SELECT subject::text AS old FROM room WHERE account_id = $1 AND room = $2 FOR UPDATE) o WHERE account_id = $1 AND room = $2
     RETURNING coalesce(o.old = $3, false) AS same, room.nick`,
    [accountId, room, JSON.stringify(subject)],
  );
  return rows[0] ?? null;
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
  await sql(tx, "UPDATE room SET nick_answer = NULL, join_stage = NULL, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room]);
}

/**
 * The room's error answer, on a room the account stays in (a refused nick change, XEP-0045
 * §7.6.3: the occupant keeps its old nick), for the request waiting on the change. The change is
 * no longer under way (join_stage, as renameSelf: a self-ping's item-not-found reads it).
 */
export async function setNickRefusal(tx: AnyTx, accountId: number, room: string, error: NonNullable<RoomRow["error"]>): Promise<void> {
  const answer: NickAnswer = { refused: error };
  await sql(tx, "UPDATE room SET nick_answer = $3::json, join_stage = COALESCE(join_stage, 'presence'), updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, JSON.stringify(answer)]);
}

/**
 * Our own nick changed (status 303 about ourselves, with 110): the room's answer to the nick
 * change, so it is no longer under way (join_stage, which beginNickChange cleared, is set as by the
 * self-presence that follows: a self-ping's item-not-found reads it, src/services/room-self-pings.ts).
 */
export async function renameSelf(tx: AnyTx, accountId: number, room: string, nick: string): Promise<void> {
  await sql(tx, "UPDATE room SET nick = $3, join_stage = COALESCE(join_stage, 'presence'), updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, nick]);
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

/** Our join created the room (status 201): still joining until the instant-room configuration is accepted. */
export async function markCreated(tx: AnyTx, accountId: number, room: string, role: string, affiliation: string): Promise<void> {
  await sql(tx, "UPDATE room SET created = true, role = $3, affiliation = $4, updated_at = now() WHERE account_id = $1 AND room = $2", [accountId, room, role, affiliation]);
}

/**
 * The room accepted the instant-room configuration of a room our join created (XEP-0045 §10.1.2),
 * the account named by its localpart, in one statement (no transaction): joined, with the role and
 * affiliation its self-presence gave (a creator's if none), and a NOTIFY on `channel` with the
 * account's log head (the request waiting on the join reads the row then; nothing is logged).
 * "stale": nothing done, as occupants known from before a rejoin are left (the caller removes them
 * with markJoined, and logs their leaving); "none": no join of that room is in flight.
 */
export async function markConfigured(tx: AnyTx, localpart: string, room: string): Promise<"done" | "stale" | "none"> {
  const rows = await sql<{ stale: boolean; done: boolean }>(
    tx,
    `WITH a AS (SELECT id, last_seq FROM account WHERE localpart = $1),
       st AS (SELECT EXISTS (SELECT 1 FROM room_occupant o JOIN a ON o.account_id = a.id WHERE o.room = $2 AND o.stale) AS stale),
       u AS (UPDATE room SET status = 'joined', role = COALESCE(role, 'moderator'), affiliation = COALESCE(affiliation, 'owner'), created = true,
               joined_at = COALESCE(joined_at, now()), error = NULL, rejoin_attempts = NULL,
               rejoin_at = NULL, nick_before = NULL, checked_at = now(), updated_at = now()
             FROM a, st WHERE room.account_id = a.id AND room.room = $2 AND room.status = 'joining' AND NOT st.stale
             RETURNING room.account_id)
     SELECT st.stale, u.account_id IS NOT NULL AS done, CASE WHEN u.account_id IS NOT NULL THEN ${notifyLogHeadSql("a", "$3")} END AS n
     FROM st LEFT JOIN u ON true LEFT JOIN a ON a.id = u.account_id`,
    [localpart, room, CHANNELS.events],
    true,
  );
  const r = rows[0]!;
  return r.done ? "done" : r.stale ? "stale" : "none";
}
