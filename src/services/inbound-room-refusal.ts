// A room's error answer to what the account sent it other than a join's refusal the request reads:
// a subject change (XEP-0045 §8.1) or a mediated invitation (§7.8.2), which only its id says; a
// nick change (§7.6.3) or a rejoin of the gateway's own; and any such answer that says the account
// is not an occupant (src/domain/muc-self-ping.ts outOfRoom), after which it enters the room again.
import { randomUUID } from "node:crypto";
import type { AnyTx } from "../db/client.js";
import { deferRejoin, fallBackNick, rejoinAsAsked, rejoinNow } from "../db/room-rejoins.js";
import { deleteRoom, findRoom, markFailed, setNickRefusal, type RoomRow } from "../db/rooms.js";
import { accountJid, type Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage, InboundPresence } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import { refusedForNow, refusedRoomRequest, REJOIN_RETRY_MS, rejoinRoom } from "../domain/muc.js";
import { outOfRoom, selfPing } from "../domain/muc-self-ping.js";
import type { Stanza } from "../domain/stanza.js";
import type { PendingWrites } from "./inbound-message.js";

const UNDEFINED = { type: "cancel", condition: "undefined-condition" };

/**
 * An error message from a room the account is in, answering what the account asked of it (a
 * subject change, an invitation: src/domain/muc.ts refusedRoomRequest): a `room` event with the
 * room's error, as nothing else records the request. False when it is no such answer (a bounced
 * group message: the caller marks it failed, src/services/inbound-message.ts); one to a room the
 * account is not in pays pending.absent (src/services/inbound-stale.ts). Either way, an error from
 * the room's bare JID that says the account is not an occupant (a group message or subject change
 * to a room that is gone or lost the account) makes it enter the room again (leftRoom).
 */
export async function roomRefusal(tx: AnyTx, m: InboundMessage & { from: Jid; to: Jid }, account: Account, pending: PendingWrites): Promise<boolean> {
  const kind = refusedRoomRequest(m.id);
  // Only the room's answers to what went to its bare JID, and not an invitation's (its conditions are about the invitee).
  const out = !m.from.resource && kind !== "invitation-failed" && outOfRoom(m.error, "message");
  if (!kind && !out) return false; // no answer to a request of ours, nor news of the room: nothing to look up
  const room = jidToString(bare(m.from));
  // In no room of ours under the account's id: as under a cached id whose account is gone, which
  // throws AccountMoved and the answer is decided again for the account now (pending.absent).
  const row = await findRoom(tx, account.id, room, out);
  if (!row) return (await pending.absent(account), false);
  if (out) await leftRoom(tx, account, row, m.to.domain);
  if (!kind) return false;
  pending.add({ accountId: account.id, ...event("room", { room, kind, error: m.error ?? UNDEFINED }) });
  return true;
}

/**
 * The room says the account is not an occupant of a room it is joined to (XEP-0410 §3.2: a client
 * no longer joined rejoins): it enters again at once, ahead of what is queued for the room, as
 * after a removal by an error (src/services/inbound-room.ts). What bounced stays failed (its
 * `message-status` event); what is posted after goes out behind the join. Only from `joined`:
 * the bounces of what went out before the rejoin arrive before its answer and change nothing.
 */
async function leftRoom(tx: AnyTx, account: Account, row: RoomRow, domain: string): Promise<void> {
  if (row.status !== "joined") return;
  await rejoinNow(tx, account.id, row.room, rejoinRoom(accountJid(account.localpart, domain), row));
}

/**
 * Presence of type error from a room the account has a row for (`row`): a refused nick change, join
 * or rejoin. `replies`: what goes back to the room (a self-ping after a refused nick change).
 */
export async function roomPresenceError(tx: AnyTx, p: InboundPresence & { from: Jid; to: Jid }, account: Account, row: RoomRow, roomEvent: (data: Parameters<typeof event<"room">>[1]) => void, replies: Stanza[]): Promise<void> {
  const { room } = row;
  if (row.status === "joined") {
    const nick = p.from.resource;
    if (nick && outOfRoom(p.error, "presence")) {
      // The room has no such occupant (or is gone) to change the nick of: the account enters it
      // again, under the nick it asked for (the nick change's request then answers with the
      // rejoin: src/services/room-joins.ts nickChangeAnswer), or under the one it had if the
      // asked one is taken there (below).
      if (nick === row.nick) return leftRoom(tx, account, row, p.to.domain);
      return rejoinAsAsked(tx, account.id, room, nick, row.nick, rejoinRoom(accountJid(account.localpart, p.to.domain), { ...row, nick }));
    }
    // A refused nick change (§7.6.3): the occupant stays, under its old nick; the request reads the
    // error. Unless the room had lost the account: ejabberd takes a nick change from a
    // non-occupant as a join, and refuses a taken nick (conflict, §7.2.9) as it would a join's. A
    // self-ping under the old nick (XEP-0410 §3.2) asks: a room without the account answers that
    // it is not an occupant, and it enters again (src/services/room-self-pings.ts). One iq per
    // refused change.
    await setNickRefusal(tx, account.id, room, p.error ?? UNDEFINED);
    replies.push(selfPing(accountJid(account.localpart, p.to.domain), room, row.nick, randomUUID()));
    return;
  }
  // A refused join (§7.2.6-§7.2.10): the waiting request reads the row.
  if (row.status !== "joining") return;
  // The gateway's rejoin goes to the occupant JID of the row's nick, a nick the room gave or
  // answered from (both prepared as parsed: src/domain/jid.ts): an error from another answers a
  // presence the row has moved past (the join under the nick a fallback below left, sent again
  // unanswered, or read for a rejoin before it; a nick change the rejoin cut short, which its
  // request answers as such: src/db/room-rejoins.ts markRejoining), and would fail the join
  // under the nick it has now.
  if (row.rejoinAttempts !== null && p.from.resource !== undefined && p.from.resource !== row.nick) return;
  // The gateway's rejoin under the nick the account asked for in a nick change (above), refused
  // as taken (§7.2.9, conflict): as a nick change into a taken nick (§7.6.3), the account keeps
  // the nick it had, and enters under that again; the request reads the conflict. Once: a
  // conflict there too fails the join, as any rejoin's.
  if (p.error?.condition === "conflict" && p.from.resource === row.nick && row.nickBefore !== null) {
    const before = await fallBackNick(tx, account.id, room);
    if (before !== null) return rejoinNow(tx, account.id, room, rejoinRoom(accountJid(account.localpart, p.to.domain), { ...row, nick: before }), p.error);
  }
  // The gateway's own rejoin answered gone (RFC 6120 §8.3.3.5): the room is no more. Prosody keeps
  // a tombstone of a destroyed persistent room, naming the room its owner named instead (XEP-0045
  // §10.9): as a destroy seen live, the room is forgotten, not rejoined, and the account told.
  if (row.rejoinAttempts !== null && p.error?.condition === "gone") {
    await deleteRoom(tx, account.id, room);
    return roomEvent({ room, kind: "destroyed", nick: row.nick, self: true, reason: p.error.text ?? null, ...(p.goneTo ? { alternate: p.goneTo } : {}) });
  }
  // The gateway's own rejoin, refused for now (the room's service is unavailable): tried again
  // later (src/db/room-rejoins.ts), and the account hears of it once, with when. A fallback's
  // conflict stays the nick change's answer (nick_answer, apart from the row's error).
  const later = p.error && row.rejoinAttempts !== null && refusedForNow(p.error) ? await deferRejoin(tx, account.id, room, p.error, REJOIN_RETRY_MS) : null;
  if (later) {
    if (later.first) roomEvent({ room, kind: "join-failed", nick: row.nick, error: p.error!, retryAt: later.at.toISOString() });
    return;
  }
  // A join answered gone names where the room went, if its service knows (RFC 6120 §8.3.3.5):
  // kept with the error, for the request's 404 (src/services/room-joins.ts refusal).
  const alternate = p.error?.condition === "gone" && p.goneTo ? { alternate: p.goneTo } : {};
  await markFailed(tx, account.id, room, p.error && { ...p.error, ...alternate });
  roomEvent({ room, kind: "join-failed", nick: row.nick, ...(p.error ? { error: p.error } : {}), ...alternate });
}
