// PUT /v1/rooms/{room} (API.md "Group chat"): joining a room, idempotently (RFC 9110 §9.2.2: the
// same PUT again changes nothing). A join is state in Postgres (`room`): the join presence is
// recorded with it and sent by the link holder; the request waits until the room answered: its
// self-presence, then its subject message, the end of a join (XEP-0045 §7.2.16). It reads the row
// whenever the account's event log grows (the room's answers are logged there: joined, subject,
// join-failed; the instant room's configuration wakes it too, src/services/rooms.ts configured),
// which any instance hears (NOTIFY), and otherwise at a slow poll, in case nothing is logged (a
// refused nick change) or a wake-up was lost. What a request does depends on the account's row
// for the room, read under a row lock so that concurrent requests take turns (two PUTs at once
// send one join):
// - in the room (joined) under the nick asked for: nothing is sent, and the answer is the current
//   view at once. A join presence again would make the room present everyone and send its subject
//   again (§7.2.3-§7.2.16): a second `joined` and `subject` in the log. The gateway trusts its state
//   here, also while the link is down (API.md: the join lasts until the account leaves; the link
//   holder rejoins when the link is back): it cannot know that a room lost the account unasked.
// - joining under that nick (a join in flight, or a rejoin after a reconnect): the request waits
//   for that join's answer rather than sending another.
// - joining under another nick, or under that nick as the gateway's rejoin for a nick change,
//   which may end under the nick the account had: it waits for that join to end, then decides again.
// - joined under another nick: a nick change (§7.6), whose answer it waits for.
// - not in the room (no row, or a join the room refused): a join.
import { autocommit, type AnyTx, type Database } from "../db/client.js";
import { beginNickChange, findRoom, findRoomView, recordJoin, type OccupantRow, type RoomRow } from "../db/rooms.js";
import type { AccountRef } from "../domain/account.js";
import { blockedError } from "../domain/blocking.js";
import { AppError, type ErrorCode } from "../domain/errors.js";
import { JOIN_TIMEOUT_MS, joinRoom, MAX_ROOMS, occupantJid, refusedForNow, SUBJECT_GRACE_MS } from "../domain/muc.js";
import { presence, type Stanza } from "../domain/stanza.js";
import type { Delivery } from "./delivery.js";

export interface JoinRequest {
  nick: string;
  password?: string;
  history?: { maxStanzas?: number; since?: string };
}

/**
 * recordJoin's refusals, with nothing recorded, as the API's errors; the other outcomes as they are.
 * The join goes to room/nick: one the committed blocklist covers is refused, as the room's answer
 * would be dropped (src/services/inbound.ts) and the join resent until the account left. So is one
 * past MAX_ROOMS.
 */
function unrefused(recorded: Awaited<ReturnType<typeof recordJoin>>, room: string, nick: string): "recorded" | "taken" {
  if (recorded === "blocked") throw blockedError(`${room}/${nick}`, "params.room");
  if (recorded === "full") throw new AppError("too-many-rooms", `an account is in at most ${MAX_ROOMS.toLocaleString("en")} rooms: leave one first`);
  return recorded;
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
  gone: "room-not-found", // RFC 6120 §8.3.3.5: Prosody's tombstone of a destroyed room; its `alternate` in the problem
  "service-unavailable": "room-unavailable",
  // The occupant JID room/nick is not one the room takes (RFC 6120 §8.3.3.8): the request's nick is at fault.
  "jid-malformed": "invalid-jid",
  // ejabberd's answer to a nick its resourceprep refuses ("Bad value of attribute 'to'"): the
  // join is ours and well-formed but for what the request named.
  "bad-request": "invalid-jid",
  // Room nicks locked down (§7.6): only the account's reserved nick is taken, not this one.
  "not-acceptable": "room-nick-conflict",
};

/**
 * The room's error answer to `what` (a join or a nick change) as the API's error. A condition of
 * no code of ours is 503 only when it holds for now (type wait: trying again may help), else 403
 * room-refused, the room's condition and text in the problem.
 */
function refusal(room: string, error: RoomRow["error"], what: string, note = ""): AppError {
  const condition = error?.condition ?? "undefined-condition";
  const code = REFUSALS[condition] ?? (!error || refusedForNow(error) ? "room-unavailable" : "room-refused");
  const extra = { condition, ...(code === "invalid-jid" ? { field: "body.nick" } : {}), ...(error?.alternate ? { alternate: error.alternate } : {}) };
  return new AppError(code, `${room} refused ${what}: ${condition}${error?.text ? ` (${error.text})` : ""}${note}`, extra);
}

/**
 * Wakes a waiting request when the account's event log grows, on any instance (EventNotifier:
 * NOTIFY, or this instance's own appends); `fn` may also be called when nothing was appended.
 */
export interface LogGrowth {
  subscribe(accountId: number, fn: () => void): () => void;
}

/** How often a request reads the row while it waits: [first, most] ms, doubling (see RoomJoins). */
export type PollMs = readonly [number, number];
/** Nothing wakes the request: polling is all there is, so look often (the room answers within milliseconds). */
const POLL_ALONE: PollMs = [5, 50];
/** Woken by the log: the poll is the fallback for what is not logged (a refused nick change, a leave) or a lost wake-up. */
const POLL_WOKEN: PollMs = [50, 250];

/**
 * Reads what the room answered from the row (past the deadline: `overdue`): an answer, a thrown
 * refusal, or undefined to wait; `due`, if set, is when to look again whatever wakes the request.
 */
type Answered<T> = ((row: ViewRow | null, overdue: boolean) => T | undefined) & { due?: () => number | null };

/** The row as a waiting request reads it: with the occupants, which its answer shows (src/services/rooms.ts view). */
type ViewRow = RoomRow & { occupants: OccupantRow[] };

/**
 * A join's answer: a refusal, or the row once the room presented the account and then sent its
 * subject, the last stanza of a join (XEP-0045 §7.2.16), so the answer carries the subject. A room
 * that sends none is given SUBJECT_GRACE_MS after the self-presence, never past the join's
 * deadline: the join succeeds without it.
 */
function joinAnswer(room: string): Answered<ViewRow> {
  let graceEnds: number | null = null;
  const answered: Answered<ViewRow> = (row, overdue) => {
    if (!row) throw new AppError("room-not-joined", `the join of ${room} was cancelled`);
    if (row.status === "failed") throw refusal(room, row.error, "the join");
    if (row.status !== "joined") return undefined;
    graceEnds ??= Date.now() + SUBJECT_GRACE_MS;
    return row.joinStage === "subject" || overdue || Date.now() >= graceEnds ? row : undefined;
  };
  // The grace's end is logged by nobody: the request looks then.
  answered.due = () => graceEnds;
  return answered;
}

/** Where a nick change that did not rename left the account, by the row's status then (nickChangeAnswer). */
const afterRefusal: Record<RoomRow["status"], (nick: string) => string> = {
  joined: (nick) => `; still in the room as ${nick}`,
  joining: (nick) => `; entering it again as ${nick}`,
  failed: () => "; the account is out of the room",
};

/**
 * A nick change's answer (XEP-0045 §7.6): the row once renamed, or once the room presented the
 * account again under the nick it has (the room took the requested nick as that one: servers
 * prepare nicks, e.g. NFKC); a refusal keeps the occupant under its old nick (§7.6.3).
 */
function nickChangeAnswer(account: AccountRef, room: string, oldNick: string): Answered<ViewRow> {
  return (row) => {
    if (!row) throw new AppError("room-not-joined", `${account.jid} left ${room} during the nick change`);
    // Renamed: to this nick, or by a change requested at the same time that the room took after it.
    if (row.nick !== oldNick && row.status === "joined") return row;
    // The room refused the account's rejoin under the nick asked for (src/services/inbound-room-
    // refusal.ts), or the one under its old nick after, other than for now: out of the room.
    if (row.status === "failed") throw refusal(room, row.error, "the nick change", afterRefusal.failed(row.nick));
    const answer = row.nickAnswer;
    // Out of the room during the change (src/db/room-rejoins.ts markRejoining): under the old nick
    // again, not by the room's answer to the change, which may never come. Not a refusal: asking
    // again once the account is back in may rename it (503, as for a room unavailable for now).
    if (answer && "cutShort" in answer) {
      const where = row.status === "joined" ? `; in the room again as ${row.nick}` : afterRefusal[row.status](row.nick);
      throw new AppError("room-unavailable", `${account.jid} was out of ${room} during the nick change (removed by the room, or the link was lost)${where}`, { retryAfter: 5 });
    }
    // Refused (§7.6.3), or the rejoin under the nick asked for refused as taken, the account back
    // under the nick it had (fallBackNick), whatever that rejoin met since; or, with no answer,
    // the rejoin under the nick asked for refused for now (src/db/room-rejoins.ts deferRejoin).
    const refused = answer?.refused ?? (row.status === "joining" ? row.error : null);
    if (refused) throw refusal(room, refused, "the nick change", afterRefusal[row.status](row.nick));
    if (row.joinStage !== null && row.status === "joined") return row;
    return undefined;
  };
}

/** A join in flight (under another nick) ended: joined, refused, or the account left. */
const ended: Answered<true> = (row) => (row?.status === "joining" ? undefined : true);

/** What a request found and did: see the top of this file. */
type Step = { kind: "in"; row: RoomRow } | { kind: "join" } | { kind: "rename"; oldNick: string } | { kind: "other-join" } | { kind: "raced" };

export class RoomJoins {
  private readonly poll: PollMs;

  /** `growth`: what wakes waiting requests (null: they poll often); `pollMs`: the fallback poll then (tests set it). */
  constructor(
    private readonly db: Database,
    private readonly delivery: Delivery,
    private readonly growth: LogGrowth | null = null,
    pollMs?: PollMs,
    /** Whether no instance holds a working XMPP link (src/services/link-control.ts readiness "down"). */
    private readonly linkDown: () => Promise<boolean> = async () => false,
  ) {
    this.poll = pollMs ?? (growth ? POLL_WOKEN : POLL_ALONE);
  }

  /** Returns once the room confirmed (the row, with its occupants when it read them), with `created` when the join made the room. */
  async join(account: AccountRef, room: string, req: JoinRequest): Promise<{ row: RoomRow | ViewRow; created: boolean }> {
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    const unanswered = `${room} did not answer the join within ${JOIN_TIMEOUT_MS / 1000} s; the gateway keeps trying`;
    // Most requests join a room the account is not in: the join and its presence are recorded in
    // one statement, with no transaction (one round trip instead of four). The rest take turns
    // on the row (step()).
    const history = req.history ?? null;
    const joinNow = { stanzas: [joinRoom(account.jid, room, req)], origin: this.delivery.origin };
    const recorded = unrefused(await recordJoin(autocommit(this.db.pool), account.id, room, req.nick, req.password ?? null, history, joinNow), room, req.nick);
    if (recorded === "recorded") {
      this.delivery.kick();
      const row = await this.awaitRoom(account, room, deadline, unanswered, joinAnswer(room));
      return { row, created: row.created };
    }
    for (;;) {
      // Raw SQL only (src/db/rooms.ts): a raw pg transaction, not Prisma's, for fewer round trips and less CPU.
      const step = await this.delivery.sqlTransaction((tx, send) => this.step(tx, send, account, room, req));
      switch (step.kind) {
        case "in":
          return { row: step.row, created: false };
        case "join": {
          // This request's join, or the same join in flight: `created` is that join's answer.
          const row = await this.awaitRoom(account, room, deadline, unanswered, joinAnswer(room));
          return { row, created: row.created };
        }
        case "rename": {
          const timeout = `${room} did not answer the nick change within ${JOIN_TIMEOUT_MS / 1000} s`;
          return { row: await this.awaitRoom(account, room, deadline, timeout, nickChangeAnswer(account, room, step.oldNick)), created: false };
        }
        case "other-join":
          await this.awaitRoom(account, room, deadline, unanswered, ended);
          break;
        case "raced":
          if (Date.now() > deadline) throw await this.unanswered(room, unanswered);
      }
    }
  }

  private async step(tx: AnyTx, send: (accountId: number, stanzas: readonly Stanza[]) => Promise<void>, account: AccountRef, room: string, req: JoinRequest): Promise<Step> {
    const history = req.history ?? null;
    // A join (the row was refused or gone since join() looked) is recorded first. It records
    // nothing when the account has a row for the room other than a refused join (and locks that
    // row, INSERT ... ON CONFLICT DO UPDATE), which is then read.
    const recorded = unrefused(await recordJoin(tx, account.id, room, req.nick, req.password ?? null, history), room, req.nick);
    if (recorded === "recorded") {
      await send(account.id, [joinRoom(account.jid, room, req)]);
      return { kind: "join" };
    }
    const row = await findRoom(tx, account.id, room, true);
    if (row?.status === "joined") {
      if (row.nick === req.nick) return { kind: "in", row };
      // A nick change is presence to the new occupant JID (§7.6.1), without the MUC <x/> of a join
      // (§7.2.1): Prosody takes a presence with it from an occupant as a join again, and sends the
      // occupants and the subject again. If the room refuses the change, the occupant stays under
      // its old nick (§7.6.3), so the row stays joined until the room says otherwise.
      await beginNickChange(tx, account.id, room);
      await send(account.id, [presence(occupantJid(account.jid), `${room}/${req.nick}`, null)]);
      return { kind: "rename", oldNick: row.nick };
    }
    // A rejoin under the nick a nick change asked for (nickBefore: src/db/room-rejoins.ts
    // rejoinAsAsked) may end under the nick the account had (fallBackNick), so its answer is not
    // this request's: it waits for it to end, as for a join under another nick, then decides again
    // (a nick change, which the room refuses if the nick is still taken).
    if (row?.status === "joining") return { kind: row.nick === req.nick && row.nickBefore === null ? "join" : "other-join" };
    // Not expected (the row the join found is locked): should it be gone or refused now, look again.
    return { kind: "raced" };
  }

  /**
   * No answer by the deadline: 503 xmpp-unavailable when no instance holds the XMPP link (API.md
   * Errors: the room cannot answer a join that has not gone out), else room-unavailable. Either
   * way the join stays recorded and goes out, or is sent again, until the room answers.
   */
  private async unanswered(room: string, timeout: string): Promise<AppError> {
    if (!(await this.linkDown().catch(() => false))) return new AppError("room-unavailable", timeout, { retryAfter: 5 });
    return new AppError("xmpp-unavailable", `the XMPP link is down (no gateway instance holds it): what ${room} was asked is recorded and goes out once the link is back`, { retryAfter: 5 });
  }

  /**
   * Reads the account's row for the room until `answered` says the room answered (an answer, or a
   * thrown refusal); 503 after the deadline, unless `answered` takes the last, overdue look as
   * enough. It reads again as soon as the account's log grew (subscribed before the first read:
   * an answer committed after that read wakes it), else at the next poll.
   */
  private async awaitRoom<T>(account: AccountRef, room: string, deadline: number, timeout: string, answered: Answered<T>): Promise<T> {
    let grew = false;
    let wake: (() => void) | null = null;
    const unsubscribe = this.growth?.subscribe(account.id, () => {
      grew = true;
      wake?.();
    });
    try {
      for (let wait = this.poll[0]; ; wait = Math.min(wait * 2, this.poll[1])) {
        grew = false;
        const overdue = Date.now() > deadline;
        const answer = answered(await findRoomView(autocommit(this.db.pool), account.id, room), overdue);
        if (answer !== undefined) return answer;
        if (overdue) throw await this.unanswered(room, timeout);
        // Grown while it read: what it read may predate the answer.
        if (grew) continue;
        const due = answered.due?.() ?? Infinity;
        const ms = Math.max(0, Math.min(wait, deadline + 1 - Date.now(), due - Date.now()));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    } finally {
      unsubscribe?.();
    }
  }
}
