// Group chat for hosted accounts (API.md "Group chat (1.1, XEP-0045)"): joining, leaving, listing
// and acting in rooms. A join is state in Postgres (`room`); src/services/room-joins.ts records and
// answers it (PUT /v1/rooms/{room}, idempotent). After a restart or a reconnect the link holder
// rejoins every room, asking only for the history it missed (XEP-0045 §7.2.15). What rooms send
// is handled by src/services/inbound-room.ts.
import { randomUUID } from "node:crypto";
import type { AnyTx, Database } from "../db/client.js";
import { autocommit } from "../db/client.js";
import { appendEvents, notifyLogHead } from "../db/events.js";
import { enqueueAhead } from "../db/outbox.js";
import { deleteRoom, findRoom, listRooms, markConfigured, markFailed, markJoined, occupants, occupies, roomsToRejoin, type OccupantRow, type RoomRow } from "../db/rooms.js";
import { markRejoining, rejoinsDue, takeDueRejoins } from "../db/room-rejoins.js";
import { event } from "../domain/events.js";
import { accountJid, type AccountRef } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { exitRoom, isOccupantNick, joinRoom, occupantJid, occupantLocalpart, rejoinRoom, roomRequestId } from "../domain/muc.js";
import type { Stanza } from "../domain/stanza.js";
import type { LangText } from "../domain/message.js";
import type { Delivery } from "./delivery.js";
import { RoomJoins, type JoinRequest, type LogGrowth, type PollMs } from "./room-joins.js";
import { NO_BLOCKS, type BlockCheck } from "./ports.js";

export type { JoinRequest } from "./room-joins.js";

export interface RoomView {
  room: string;
  nick: string;
  status: "joining" | "joined";
  role: string | null;
  affiliation: string | null;
  subject: LangText | null;
  occupants: OccupantRow[];
}

type Send = (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>;

/** The account's rejoin of the room waits after its service refused it for now (src/db/room-rejoins.ts): what is sent there would fail. */
export const rejoinWaiting = (row: RoomRow | null): boolean => row?.status === "joining" && (row.rejoinAttempts ?? 0) > 0;

/**
 * Something the account sends to a room it is in is refused with room-unavailable (503, with
 * Retry-After: the rejoin's next attempt) while its rejoin waits after a refusal for now: it would
 * only go out to fail with the same refusal. A join under way otherwise takes it, to go out after.
 */
export function assertRoomReachable(row: RoomRow | null, room: string): void {
  if (!rejoinWaiting(row)) return;
  const next = row!.rejoinAt ?? new Date();
  throw new AppError("room-unavailable", `${room} is unavailable for now (${row!.error?.condition ?? "no answer"}); the gateway enters it again at ${next.toISOString()}`, {
    retryAfter: Math.max(1, Math.ceil((next.getTime() - Date.now()) / 1000)),
  });
}

export class Rooms {
  constructor(
    private readonly db: Database,
    private readonly delivery: Delivery,
    private readonly domain: string,
    /** The account's blocklist (XEP-0191 §3.3: nothing is routed to a JID it blocked); by default it blocks no one. */
    private readonly blocking: BlockCheck = NO_BLOCKS,
    /** What wakes a join request waiting for the room's answer (src/services/room-joins.ts), and its fallback poll. */
    joinWake: { growth?: LogGrowth; pollMs?: PollMs; linkDown?: () => Promise<boolean> } = {},
  ) {
    this.joins = new RoomJoins(db, delivery, joinWake.growth ?? null, joinWake.pollMs, joinWake.linkDown);
  }

  private readonly joins: RoomJoins;

  /** `row.occupants`: read with the row (src/services/room-joins.ts), else read here. */
  private async view(row: RoomRow & { occupants?: OccupantRow[] }): Promise<RoomView> {
    const { room, nick, role, affiliation } = row;
    // Raw SQL through the pool: Prisma's query costs more CPU than the statement.
    const list = row.occupants ?? (await occupants(autocommit(this.db.pool), row.accountId, room));
    return { room, nick, status: row.status === "joined" ? "joined" : "joining", role, affiliation, subject: (row.subject ?? null) as LangText | null, occupants: list };
  }

  /**
   * PUT /v1/rooms/{room}: joins (creating an instant room when there is none), or changes the nick,
   * or, already in under that nick, nothing (src/services/room-joins.ts); returns once the room
   * confirmed, with `created` when the join made the room.
   */
  async join(account: AccountRef, room: string, req: JoinRequest): Promise<{ view: RoomView; created: boolean }> {
    // A join to room/nick the account blocked is refused by the statement that would record it (src/services/room-joins.ts).
    const { row, created } = await this.joins.join(account, room, req);
    return { view: await this.view(row), created };
  }

  /**
   * The account's nick in the room, null when it is not in it (group messages may go only to a room
   * it is in). A room being rejoined counts: the message is queued behind the join presence and
   * goes out after it; one whose rejoin waits after a refusal for now is unavailable (assertRoomReachable).
   */
  async nickIn(accountId: number, room: string): Promise<string | null> {
    const row = await findRoom(this.db.prisma, accountId, room);
    if (!occupies(row)) return null;
    assertRoomReachable(row, room);
    return row!.nick;
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

  /**
   * DELETE /v1/rooms/{room}: leaves (XEP-0045 §7.14) and forgets the room. A refused join's row
   * (status failed) is forgotten too, but the account never entered the room: nothing to leave, so
   * it answers as GET and the list do, 404 room-not-joined.
   */
  async leave(account: AccountRef, room: string): Promise<void> {
    const left = await this.delivery.transaction(async (tx, send) => {
      const row = await findRoom(tx, account.id, room);
      if (!row) return false;
      await deleteRoom(tx, account.id, room);
      if (row.status === "failed") return false;
      await send(account.id, [exitRoom(account.jid, room, row.nick)]);
      return true;
    });
    if (!left) throw new AppError("room-not-joined", `not in ${room}`);
  }

  /** PUT /v1/rooms/{room}/subject (XEP-0045 §8.1); the room's answer arrives as a `room` event (`subject`, or `subject-failed`). */
  async setSubject(account: AccountRef, room: string, subject: string): Promise<void> {
    await this.send(account, room, (from) => ({ kind: "muc-subject", from, to: room, id: roomRequestId("subject", randomUUID()), subject }));
  }

  /** POST /v1/rooms/{room}/invitations: a mediated invitation (XEP-0045 §7.8.2); a refusal is an `invitation-failed` event. */
  async invite(account: AccountRef, room: string, invitee: string, reason: string | null): Promise<void> {
    // The room relays it to the invitee: the account sends to both (XEP-0191 §3.3).
    await this.send(account, room, (from) => ({ kind: "muc-invite", from, to: room, id: roomRequestId("invite", randomUUID()), invitee, reason }), invitee);
  }

  /** `invitee`: checked against the committed list, in the transaction: a block another instance just committed counts. */
  private async send(account: AccountRef, room: string, stanza: (from: string) => Stanza, invitee?: string): Promise<void> {
    await this.blocking.assertNotBlocked(account.id, room, "params.room");
    await this.delivery.transaction(async (tx, send) => {
      if (invitee !== undefined) await this.blocking.assertNotBlocked(account.id, invitee, "body.jid", tx);
      const row = await findRoom(tx, account.id, room);
      if (!occupies(row)) throw new AppError("room-not-joined", `not in ${room}`);
      assertRoomReachable(row, room);
      await send(account.id, [stanza(occupantJid(account.jid))]);
    });
  }

  /**
   * The room answered the instant-room configuration (XEP-0045 §10.1.2) of a room our join created
   * (`to`: the occupant JID it was sent from): the join is complete, or failed.
   */
  async configured(room: string, to: string, error: { type: string; condition: string; text?: string } | null): Promise<void> {
    const localpart = occupantLocalpart(to, this.domain);
    if (localpart === null) return;
    // Accepted, the usual case: one statement (src/db/rooms.ts markConfigured) with no transaction
    // around it. Nothing logged, yet the request waits for this (on whichever instance it is): it
    // wakes it as an append would, with the log's head as it stands (a stream at the head reads
    // nothing). Occupants left from before a rejoin, or a refusal, are logged: the transaction below.
    if (!error && (await markConfigured(autocommit(this.db.pool), localpart, room)) !== "stale") return;
    await this.delivery.sqlTransaction(async (tx) => {
      const row = await findRoom(tx, { localpart }, room);
      if (!row || row.status !== "joining") return;
      const { accountId } = row;
      if (error) {
        // In the room (the self-presence was its `joined` event), but locked for good: failed.
        await markFailed(tx, accountId, room, error);
        await appendEvents(tx, [{ accountId, ...event("room", { room, kind: "join-failed", nick: row.nick, error }) }]);
      } else {
        // Its `joined` event came with the self-presence (src/services/inbound-room.ts), before the
        // subject message that follows it (XEP-0045 §7.2.16); the request's answer waited for this.
        const gone = await markJoined(tx, accountId, room, row.role ?? "moderator", row.affiliation ?? "owner", true);
        if (gone.length) await appendEvents(tx, gone.map((nick) => ({ accountId, ...event("room", { room, kind: "occupant-left", nick }) })));
        else await notifyLogHead(tx, accountId);
      }
    });
  }

  /**
   * Rejoins refused for now whose time has come, and joins the room has not answered (src/db/
   * room-rejoins.ts), go out again, ahead of what is queued, as the rejoin after a reconnect does:
   * a rejoin asks for the history since the last message seen, a request's join again for what the
   * request asked. Run by the link holder every few seconds.
   */
  async retryRejoins(): Promise<number> {
    if (!(await rejoinsDue(autocommit(this.db.pool)))) return 0;
    return this.delivery.transaction(async (tx) => {
      const due = await takeDueRejoins(tx);
      for (const r of due) {
        const jid = accountJid(r.localpart, this.domain);
        await enqueueAhead(tx, r.accountId, [r.rejoinAttempts !== null ? rejoinRoom(jid, r) : joinRoom(jid, r.room, r)]);
      }
      return due.length;
    });
  }

  /**
   * On the link holder, whenever its link comes up: every room is joined again, asking for the
   * history since the last message seen (none at all if it saw none since joining). The joins are
   * recorded ahead of everything queued, and before the link holder drains (src/services/
   * online-gate.ts): what was posted to a room while the link was down goes out after the join, to
   * a room that has the account as an occupant again (XEP-0045 §7.4: a non-occupant's message is
   * refused). A join the room refuses fails them with the room's error, as before (one it refuses
   * for now is tried again later: retryRejoins, and fails only what was sent with it). `claim`
   * (XMPP_LINK_MODE=all: src/db/link-republish.ts) runs first in that transaction: false, and
   * another instance has recorded the joins since this link went down; nothing is recorded and
   * the answer is null. Otherwise the number of rooms.
   */
  async rejoin(claim?: (tx: AnyTx) => Promise<boolean>): Promise<number | null> {
    const rows = await roomsToRejoin(this.db.prisma);
    if (rows.length === 0 && !claim) return 0;
    // A nick stored before the API checked nicks (RFC 7622 §3.4) may not be sendable at all (U+FFFE
    // is not XML: the server drops the link): that join fails rather than being resent forever.
    const unsendable: typeof rows = [];
    // A room the account blocked is left when the block starts (leaveBlocked); one blocked before
    // blocking left rooms is left now, and forgotten, instead of joined again (XEP-0191 §3.3).
    // Forgotten for good: a block the cached list holds is confirmed by the committed list first,
    // in the transaction (an unblock elsewhere may not have reached the cache yet); the rooms the
    // cached list lets through, nearly all, cost no read.
    const cachedBlocked: typeof rows = [];
    const rejoins: typeof rows = [];
    for (const r of rows) {
      if (!isOccupantNick(r.nick)) unsendable.push(r);
      else if (await this.blocking.blocksJid(r.accountId, `${r.room}/${r.nick}`)) cachedBlocked.push(r);
      else rejoins.push(r);
    }
    let blocked: typeof rows = [];
    const claimed = await this.delivery.transaction(async (tx) => {
      if (claim && !(await claim(tx))) return false;
      blocked = [];
      const joins = [...rejoins];
      const byAccount = new Map<number, Stanza[]>();
      const ahead = (r: (typeof rows)[number], s: Stanza) => void (byAccount.get(r.accountId)?.push(s) ?? byAccount.set(r.accountId, [s]));
      for (const r of cachedBlocked) {
        if (await this.blocking.confirmBlocks(r.accountId, `${r.room}/${r.nick}`, tx)) blocked.push(r);
        else joins.push(r);
      }
      for (const r of joins) ahead(r, rejoinRoom(accountJid(r.localpart, this.domain), r));
      for (const r of blocked) ahead(r, exitRoom(accountJid(r.localpart, this.domain), r.room, r.nick));
      // Joining again until each room answers: its self-presence is a `joined` event again (the
      // room may have been recreated meanwhile), a refusal a `join-failed` one.
      await markRejoining(tx);
      for (const [accountId, stanzas] of byAccount) await enqueueAhead(tx, accountId, stanzas);
      for (const r of blocked) await deleteRoom(tx, r.accountId, r.room);
      for (const r of unsendable) {
        const error = { type: "modify", condition: "jid-malformed" };
        await markFailed(tx, r.accountId, r.room, error);
        await appendEvents(tx, [{ accountId: r.accountId, ...event("room", { room: r.room, kind: "join-failed", nick: r.nick, error }) }]);
      }
      return true;
    });
    return claimed ? rows.length - blocked.length : null;
  }
}
