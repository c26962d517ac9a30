// Group chat for hosted accounts (API.md "Group chat (1.1, XEP-0045)"): joining, leaving, listing
// and acting in rooms. A join is state in Postgres (`room`): the join presence is recorded with it
// and sent by the link holder; the request waits (polling the row, so it works from any instance)
// until the room answered: its self-presence, then its subject message, the end of a join
// (XEP-0045 §7.2.16). After a restart or a reconnect the link holder rejoins every room,
// asking only for the history it missed (XEP-0045 §7.2.15). What rooms send is handled by
// src/services/inbound-room.ts.
import { randomUUID } from "node:crypto";
import type { AnyTx, Database } from "../db/client.js";
import { sql } from "../db/client.js";
import { appendEvents } from "../db/events.js";
import { enqueueAhead } from "../db/outbox.js";
import { beginNickChange, deleteRoom, findRoom, listRooms, markFailed, markJoined, markRejoining, occupants, recordJoin, roomsToRejoin, type OccupantRow, type RoomRow } from "../db/rooms.js";
import { event } from "../domain/events.js";
import { parseJid } from "../domain/jid.js";
import { accountJid, type AccountRef } from "../domain/account.js";
import { AppError, type ErrorCode } from "../domain/errors.js";
import { exitRoom, isOccupantNick, JOIN_TIMEOUT_MS, occupantJid, ROOM_RESOURCE, SUBJECT_GRACE_MS } from "../domain/muc.js";
import type { Stanza } from "../domain/stanza.js";
import type { Delivery } from "./delivery.js";

export interface RoomView {
  room: string;
  nick: string;
  status: "joining" | "joined";
  role: string | null;
  affiliation: string | null;
  subject: unknown;
  occupants: OccupantRow[];
}

export interface JoinRequest {
  nick: string;
  password?: string;
  history?: { maxStanzas?: number; since?: string };
}

/** RFC 6120 §8.3 conditions a room refuses a join with (XEP-0045 §7.2.6-§7.2.10), as our codes. */
const REFUSALS: Record<string, ErrorCode> = {
  conflict: "room-nick-conflict",
  "registration-required": "room-members-only",
  forbidden: "room-banned",
  "not-authorized": "room-password-required",
  "item-not-found": "room-not-found",
  "not-allowed": "room-not-found",
  "remote-server-not-found": "room-not-found",
  "service-unavailable": "room-unavailable",
  // The occupant JID room/nick is not one the room takes (RFC 6120 §8.3.3.8): the request's nick
  // is at fault, and trying again will not help.
  "jid-malformed": "invalid-jid",
};

/** The room's error answer to `what` (a join or a nick change) as the API's error. */
function refusal(room: string, error: RoomRow["error"], what: string, note = ""): AppError {
  const condition = error?.condition ?? "undefined-condition";
  const code = REFUSALS[condition] ?? "room-unavailable";
  return new AppError(code, `${room} refused ${what}: ${condition}${error?.text ? ` (${error.text})` : ""}${note}`, { condition, ...(code === "invalid-jid" ? { field: "body.nick" } : {}) });
}

/**
 * Whether what the account sends to the room goes out (after its join presence, in the outbox's
 * order): joined, or joining, first or again after a reconnect (API.md: a join lasts until the
 * account leaves). A join the room then refuses fails what was sent with it.
 */
const occupies = (row: RoomRow | null): boolean => row?.status === "joined" || row?.status === "joining";

type Send = (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads what the room answered from the row (past the deadline: `overdue`): a row, a thrown refusal, or undefined to wait. */
type Answered = (row: RoomRow | null, overdue: boolean) => RoomRow | undefined;

/**
 * A join's answer: a refusal, or the row once the room presented the account and then sent its
 * subject, the last stanza of a join (XEP-0045 §7.2.16), so the answer carries the subject. A room
 * that sends none is given SUBJECT_GRACE_MS after the self-presence, never past the join's
 * deadline: the join succeeds without it.
 */
function joinAnswer(room: string): Answered {
  let graceEnds: number | null = null;
  return (row, overdue) => {
    if (!row) throw new AppError("room-not-joined", `the join of ${room} was cancelled`);
    if (row.status === "failed") throw refusal(room, row.error, "the join");
    if (row.status !== "joined") return undefined;
    graceEnds ??= Date.now() + SUBJECT_GRACE_MS;
    return row.joinStage === "subject" || overdue || Date.now() >= graceEnds ? row : undefined;
  };
}

/**
 * A nick change's answer (XEP-0045 §7.6): the row once renamed, or once the room presented the
 * account again under the nick it has (the room took the requested nick as that one: servers
 * prepare nicks, e.g. NFKC); a refusal keeps the occupant under its old nick (§7.6.3).
 */
function nickChangeAnswer(account: AccountRef, room: string, oldNick: string): Answered {
  return (row) => {
    if (!row) throw new AppError("room-not-joined", `${account.jid} left ${room} during the nick change`);
    // Renamed: to this nick, or by a change requested at the same time that the room took after it.
    if (row.nick !== oldNick && row.status === "joined") return row;
    if (row.error) throw refusal(room, row.error, "the nick change", `; still in the room as ${row.nick}`);
    if (row.joinStage !== null && row.status === "joined") return row;
    return undefined;
  };
}

export class Rooms {
  constructor(
    private readonly db: Database,
    private readonly delivery: Delivery,
    private readonly domain: string,
    /** Throws 400 blocked when the account blocked the JID (XEP-0191 §3.3: nothing is routed to it). */
    private readonly notBlocked: (accountId: number, to: string, field: string) => Promise<void> = async () => undefined,
  ) {}

  private async view(row: RoomRow): Promise<RoomView> {
    const { room, nick, role, affiliation } = row;
    return { room, nick, status: row.status === "joined" ? "joined" : "joining", role, affiliation, subject: row.subject ?? null, occupants: await occupants(this.db.prisma, row.accountId, room) };
  }

  /**
   * PUT /v1/rooms/{room}: joins (creating an instant room when there is none) and returns once the
   * room confirmed, with `created` when this join made the room.
   */
  async join(account: AccountRef, room: string, req: JoinRequest): Promise<{ view: RoomView; created: boolean }> {
    // The join goes to room/nick: refused before anything is recorded, as the room's answer would
    // be dropped (src/services/inbound.ts) and the join resent forever.
    await this.notBlocked(account.id, `${room}/${req.nick}`, "params.room");
    const history = req.history ?? null;
    const join: Stanza = { kind: "muc-join", from: occupantJid(account.jid), to: `${room}/${req.nick}`, password: req.password ?? null, history };
    // In the room under another nick: a nick change (XEP-0045 §7.6). If the room refuses it, the
    // occupant stays under its old nick, so the row stays joined until the room says otherwise.
    const oldNick = await this.delivery.transaction(async (tx, send) => {
      const row = await findRoom(tx, account.id, room);
      const change = row?.status === "joined" && row.nick !== req.nick;
      if (change) await beginNickChange(tx, account.id, room);
      else await recordJoin(tx, account.id, room, req.nick, req.password ?? null, history);
      await send(account.id, [join]);
      return change ? row.nick : null;
    });
    if (oldNick !== null) {
      const renamed = await this.awaitRoom(account, room, `${room} did not answer the nick change within ${JOIN_TIMEOUT_MS / 1000} s`, nickChangeAnswer(account, room, oldNick));
      return { view: await this.view(renamed), created: false };
    }
    const joined = await this.awaitRoom(account, room, `${room} did not answer the join within ${JOIN_TIMEOUT_MS / 1000} s; the gateway keeps trying`, joinAnswer(room));
    return { view: await this.view(joined), created: joined.created };
  }

  /**
   * Reads the account's row for the room until `answered` says the room answered (a row, or a
   * thrown refusal); 503 after JOIN_TIMEOUT_MS, unless `answered` takes the last, overdue look as
   * enough. The room answers within milliseconds on a healthy server: look often at first.
   */
  private async awaitRoom(account: AccountRef, room: string, timeout: string, answered: Answered): Promise<RoomRow> {
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 50)) {
      const overdue = Date.now() > deadline;
      const row = answered(await findRoom(this.db.prisma, account.id, room), overdue);
      if (row) return row;
      if (overdue) throw new AppError("room-unavailable", timeout, { retryAfter: 5 });
      await sleep(wait);
    }
  }

  /**
   * Whether the account is in the room (group messages may go to it). A room being rejoined
   * counts: the message is queued behind the join presence and goes out after it.
   */
  async isIn(accountId: number, room: string): Promise<boolean> {
    return occupies(await findRoom(this.db.prisma, accountId, room));
  }

  async list(account: AccountRef): Promise<RoomView[]> {
    return Promise.all((await listRooms(this.db.prisma, account.id)).map((r) => this.view(r)));
  }

  async get(account: AccountRef, room: string): Promise<RoomView> {
    const row = await findRoom(this.db.prisma, account.id, room);
    if (!row || row.status === "failed") throw new AppError("room-not-joined", `${account.jid} has not joined ${room}`);
    return this.view(row);
  }

  /**
   * A block now covers the account's occupant JID in rooms it is in (XEP-0191 §3.3; API.md
   * Blocking: its presence stops going there, with unavailable when the block starts): it leaves
   * them (XEP-0045 §7.14) in the block's transaction, and they are not rejoined.
   */
  async leaveBlocked(tx: AnyTx, send: Send, account: AccountRef, covered: (jid: string) => boolean): Promise<void> {
    for (const row of await listRooms(tx, account.id)) {
      if (!covered(`${row.room}/${row.nick}`)) continue;
      await deleteRoom(tx, account.id, row.room);
      await send(account.id, [exitRoom(account.jid, row.room, row.nick)]);
    }
  }

  /** DELETE /v1/rooms/{room}: leaves (XEP-0045 §7.14) and forgets the room. */
  async leave(account: AccountRef, room: string): Promise<void> {
    const left = await this.delivery.transaction(async (tx, send) => {
      const row = await findRoom(tx, account.id, room);
      if (!row) return false;
      await deleteRoom(tx, account.id, room);
      if (row.status !== "failed") await send(account.id, [exitRoom(account.jid, room, row.nick)]);
      return true;
    });
    if (!left) throw new AppError("room-not-joined", `not in ${room}`);
  }

  /** PUT /v1/rooms/{room}/subject (XEP-0045 §8.1); the room's answer arrives as a `room` event. */
  async setSubject(account: AccountRef, room: string, subject: string): Promise<void> {
    await this.send(account, room, (from) => ({ kind: "muc-subject", from, to: room, id: randomUUID(), subject }));
  }

  /** POST /v1/rooms/{room}/invitations: a mediated invitation (XEP-0045 §7.8.2). */
  async invite(account: AccountRef, room: string, invitee: string, reason: string | null): Promise<void> {
    // The room relays it to the invitee: the account sends to both (XEP-0191 §3.3).
    await this.notBlocked(account.id, invitee, "body.jid");
    await this.send(account, room, (from) => ({ kind: "muc-invite", from, to: room, id: randomUUID(), invitee, reason }));
  }

  private async send(account: AccountRef, room: string, stanza: (from: string) => Stanza): Promise<void> {
    await this.notBlocked(account.id, room, "params.room");
    await this.delivery.transaction(async (tx, send) => {
      const row = await findRoom(tx, account.id, room);
      if (!occupies(row)) throw new AppError("room-not-joined", `not in ${room}`);
      await send(account.id, [stanza(occupantJid(account.jid))]);
    });
  }

  /**
   * The room answered the instant-room configuration (XEP-0045 §10.1.2) of a room our join created
   * (`to`: the occupant JID it was sent from): the join is complete, or failed.
   */
  async configured(room: string, to: string, error: { type: string; condition: string; text?: string } | null): Promise<void> {
    const jid = parseJid(to);
    if (!jid?.local || jid.domain !== this.domain || jid.resource !== ROOM_RESOURCE) return;
    const localpart = jid.local;
    await this.delivery.transaction(async (tx) => {
      const rows = await sql<{ id: number }>(tx, "SELECT id FROM account WHERE localpart = $1", [localpart]);
      const accountId = rows[0]?.id;
      if (accountId === undefined) return;
      const row = await findRoom(tx, accountId, room);
      if (!row || row.status !== "joining") return;
      if (error) {
        await markFailed(tx, accountId, room, error);
        await appendEvents(tx, [{ accountId, ...event("room", { room, kind: "join-failed", nick: row.nick, error }) }]);
      } else {
        const gone = await markJoined(tx, accountId, room, row.role ?? "moderator", row.affiliation ?? "owner", true);
        await appendEvents(tx, [
          { accountId, ...event("room", { room, kind: "joined", nick: row.nick, role: row.role ?? "moderator", affiliation: row.affiliation ?? "owner", self: true }) },
          ...gone.map((nick) => ({ accountId, ...event("room", { room, kind: "occupant-left", nick }) })),
        ]);
      }
    });
  }

  /**
   * On the link holder, whenever its link comes up: every room is joined again, asking for the
   * history since the last message seen (none at all if it saw none since joining). The joins are
   * recorded ahead of everything queued, and before the link holder drains (src/services/
   * online-gate.ts): what was posted to a room while the link was down goes out after the join, to
   * a room that has the account as an occupant again (XEP-0045 §7.4: a non-occupant's message is
   * refused). A join the room refuses fails them with the room's error, as before. `claim`
   * (XMPP_LINK_MODE=all: src/db/link-republish.ts) runs first in that transaction: false, and
   * another instance has recorded the joins since this link went down; nothing is recorded and
   * the answer is null. Otherwise the number of rooms.
   */
  async rejoin(claim?: (tx: AnyTx) => Promise<boolean>): Promise<number | null> {
    const rows = await roomsToRejoin(this.db.prisma);
    if (rows.length === 0 && !claim) return 0;
    const byAccount = new Map<number, Stanza[]>();
    // A nick stored before the API checked nicks (RFC 7622 §3.4) may not be sendable at all (U+FFFE
    // is not XML: the server drops the link): that join fails rather than being resent forever.
    const unsendable: typeof rows = [];
    for (const r of rows) {
      if (!isOccupantNick(r.nick)) {
        unsendable.push(r);
        continue;
      }
      const since = (r.lastMessageAt ?? r.joinedAt ?? new Date()).toISOString();
      const from = occupantJid(accountJid(r.localpart, this.domain));
      const list = byAccount.get(r.accountId) ?? [];
      list.push({ kind: "muc-join", from, to: `${r.room}/${r.nick}`, password: r.password, history: { since } });
      byAccount.set(r.accountId, list);
    }
    const claimed = await this.delivery.transaction(async (tx) => {
      if (claim && !(await claim(tx))) return false;
      // Joining again until each room answers: its self-presence is a `joined` event again (the
      // room may have been recreated meanwhile), a refusal a `join-failed` one.
      await markRejoining(tx);
      for (const [accountId, stanzas] of byAccount) await enqueueAhead(tx, accountId, stanzas);
      for (const r of unsendable) {
        const error = { type: "modify", condition: "jid-malformed" };
        await markFailed(tx, r.accountId, r.room, error);
        await appendEvents(tx, [{ accountId: r.accountId, ...event("room", { room: r.room, kind: "join-failed", nick: r.nick, error }) }]);
      }
      return true;
    });
    return claimed ? rows.length : null;
  }
}
