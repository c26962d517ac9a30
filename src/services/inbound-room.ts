// What rooms send to an account's occupant JID (localpart@domain/rooms), XEP-0045: presence of
// occupants (§7.2.3; our own with status 110 confirms a join, §7.2.2, and gives the nick the room
// took; 201 means we created the room, which we then configure as an instant room, §10.1.2), the
// subject message that ends a join (§7.2.16), refusals (§7.2.6-§7.2.10), departures with
// their reasons (§7.14, §8.2 kick, §9.1 ban, §7.6 nick change), group messages and history
// (§7.2.15, delay-stamped per XEP-0203), subject changes (§8.1) and private messages (§7.5).
// Each becomes state in `room`/`room_occupant` and events in the account's log.
import { randomUUID } from "node:crypto";
import type { AnyTx } from "../db/client.js";
import { markReflected, markSubjectReflected } from "../db/room-reflections.js";
import { rejoinNow } from "../db/room-rejoins.js";
import { deleteRoom, findRoom, markCreated, markJoined, occupantPresence, presented, removeOccupant, renameOccupant, renameSelf, setSelfPrivileges, setSubject } from "../db/rooms.js";
import { accountJid, type Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage, InboundPresence, InboundStanza } from "../domain/inbound.js";
import { bare, jidToString, parseJid, type Jid } from "../domain/jid.js";
import { isMessageId } from "../domain/message.js";
import { storedId, storedOriginId, type MessageExt, type Occupant } from "../domain/message-features.js";
import { departure, INSTANT_PREFIX, rejoinRoom, roomSubject, STATUS, type MucPresence } from "../domain/muc.js";
import { selfPing } from "../domain/muc-self-ping.js";
import type { Stanza } from "../domain/stanza.js";
import type { RoomMessageKey } from "../db/room-lookups.js";
import { applyPrivateChange, applyRoomChange, changesEarlier, newMessageExt } from "./inbound-features.js";
import { takeReceipt, type MessageStores, type PendingWrites } from "./inbound-message.js";
import { roomPresenceError } from "./inbound-room-refusal.js";

type From = { from: Jid; fromRaw: string; to: Jid; toRaw: string };

/** Why and by whom an occupant was kicked, banned or removed: the item's <reason/> and <actor nick/> (§8.2, §9.1), when the room says. */
const departureDetails = (muc: MucPresence) =>
  muc.destroyed
    ? { reason: muc.destroyed.reason, ...(muc.destroyed.alternate ? { alternate: muc.destroyed.alternate } : {}) }
    : { ...(muc.reason ? { reason: muc.reason } : {}), ...(muc.actor ? { actor: muc.actor } : {}) };

/** Presence from room@service/nick to our occupant JID. */
export async function roomPresence(tx: AnyTx, p: InboundPresence & From, account: Account, pending: PendingWrites, replies: Stanza[]): Promise<void> {
  const room = jidToString(bare(p.from));
  // What it changes (occupants, our nick, our being there) is read anew by the batch's later messages.
  pending.roomChanged(account.id, room);
  const nick = p.from.resource ?? "";
  const roomEvent = (data: RoomEventData) => pending.add({ accountId: account.id, ...event("room", data) });
  // In no room of ours under the account's id: as under a cached id whose account is gone (pending.absent).
  if (p.type !== "error" && p.type !== "unavailable" && p.muc) return (await occupantAvailable(tx, p.muc, account, room, nick, roomEvent, replies, p.toRaw)) ? undefined : pending.absent(account);
  const row = await findRoom(tx, account.id, room);
  if (!row) return pending.absent(account);

  if (p.type === "error") return roomPresenceError(tx, p, account, row, roomEvent, replies);
  // Unavailable (an available presence with the MUC <x/> is occupantAvailable's).
  const muc = p.muc;
  if (!muc) return;
  const self = muc.statuses.includes(STATUS.self) || nick === row.nick;
  const why = departure(muc);
  if (self) {
    if (why === "nick-changed" && muc.newNick) {
      // §7.6.2: the same occupant under its new nick (the old one is gone from the room).
      await renameSelf(tx, account.id, room, muc.newNick);
      await renameOccupant(tx, account.id, room, nick, muc.newNick);
      roomEvent({ room, kind: "nick-changed", nick, newNick: muc.newNick, self: true });
      // Is the room still there? Prosody (0.12) destroys a non-persistent room whose only occupant
      // changes nick, after telling it of the change: a self-ping (XEP-0410 §3.2) under the new
      // nick, answered item-not-found then, makes the account enter it again at once (src/
      // services/room-self-pings.ts), instead of after the next quiet spell. One iq per change.
      replies.push(selfPing(accountJid(account.localpart, p.to.domain), room, muc.newNick, randomUUID()));
    } else if (why === "kicked" || why === "banned" || why === "removed" || why === "destroyed") {
      // No longer in the room (§8.2, §9.1, §10.9: a destroyed room is gone): it is not rejoined.
      await deleteRoom(tx, account.id, room);
      roomEvent({ room, kind: why, nick, self: true, ...departureDetails(muc) });
    } else if ((why === "dropped" || why === null) && row.status === "joined") {
      // Removed by no one's decision: because of an error (333; ejabberd gives no reason at all,
      // and the account's own leave forgets the room first) or a service shutting down (332,
      // ejabberd's MUC module restarting). The join lasts until the account leaves (API.md), so it
      // enters again at once, ahead of what is queued for the room, asking for the history it
      // missed (XEP-0410 §3.2: a client that is no longer joined rejoins). Its self-presence is a
      // `joined` event again; a refusal for now is tried again later (deferRejoin above). Only
      // from `joined`: a room that drops the rejoin too leaves it joining, sent again only after a
      // growing wait (src/db/room-rejoins.ts takeDueRejoins), so the two never loop at speed.
      await rejoinNow(tx, account.id, room, rejoinRoom(accountJid(account.localpart, p.to.domain), row));
    }
    return;
  }
  if (why === "nick-changed" && muc.newNick) {
    // §7.6.2: renamed, not replaced: the available presence that follows for the new nick is
    // this occupant again, not a newcomer.
    await renameOccupant(tx, account.id, room, nick, muc.newNick);
    roomEvent({ room, kind: "nick-changed", nick, newNick: muc.newNick });
    return;
  }
  await removeOccupant(tx, account.id, room, nick);
  // Another occupant removed by the room's decision (status 321, 322, as 307, 301), with its reason and actor.
  if (why === "kicked" || why === "banned" || why === "removed") roomEvent({ room, kind: why, nick, ...departureDetails(muc) });
  else roomEvent({ room, kind: "occupant-left", nick });
}

type RoomEventData = Parameters<typeof event<"room">>[1];

/**
 * An occupant's available presence (roomPresence): an occupant present, or our own presence
 * (status 110, or our nick) confirming a join. `replyFrom`: our occupant JID it was sent to.
 * False when the account is not in the room.
 */
async function occupantAvailable(tx: AnyTx, muc: MucPresence, account: Account, room: string, nick: string, roomEvent: (data: RoomEventData) => void, replies: Stanza[], replyFrom: string): Promise<boolean> {
  const occupant = { nick, role: muc.role, affiliation: muc.affiliation, jid: muc.jid };
  // With status 110 the presence is our own before the row is read: the nick the room presents
  // the account under is its nick there, whatever it asked for (§7.2.2: status 210; or the
  // server's own preparation of the nick, e.g. NFKC): its own messages come back from it (`own`),
  // and the join's answer shows it. That, and with status 201 the room's creation, is recorded in
  // the statement that reads the row and stores the occupant (one round trip, not five).
  const selfSaid = muc.statuses.includes(STATUS.self);
  const created = muc.statuses.includes(STATUS.created);
  const found = await occupantPresence(tx, account.id, room, occupant, selfSaid ? (created ? "created" : "presented") : null);
  if (!found) return false;
  const { row, before } = found;
  const changed = (was: { role: string | null; affiliation: string | null }) => was.role !== muc.role || was.affiliation !== muc.affiliation;
  if (selfSaid || nick === row.nick) {
    if (!selfSaid) await presented(tx, account.id, room, nick);
    if (created) {
      // §10.1.2: a room we created stays locked until configured: accept the defaults. The join
      // is complete (and others can enter) once the room accepted that (Rooms.configured). The
      // self-presence is the account's entry all the same (§7.2.2): `joined` now, before the
      // subject message that follows it (§7.2.16), which comes before the configuration's answer.
      if (!selfSaid) await markCreated(tx, account.id, room, muc.role, muc.affiliation);
      roomEvent({ room, kind: "joined", nick, role: muc.role, affiliation: muc.affiliation, self: true });
      replies.push({ kind: "muc-instant", from: replyFrom, to: room, id: `${INSTANT_PREFIX}${randomUUID()}` });
    } else if (row.status !== "joined") {
      const gone = await markJoined(tx, account.id, room, muc.role, muc.affiliation, false);
      roomEvent({ room, kind: "joined", nick, role: muc.role, affiliation: muc.affiliation, self: true });
      for (const left of gone) roomEvent({ room, kind: "occupant-left", nick: left });
    } else if (changed(row)) {
      // Already in: a moderator changed our role (voice, §8.3-§8.5; moderator, §9.6-§9.8) or an
      // admin or owner our affiliation (§9.3-§9.5, §10.3-§10.8); the room tells us in a new
      // self-presence. With nothing changed it is a mere presence update, no event.
      await setSelfPrivileges(tx, account.id, room, muc.role, muc.affiliation);
      roomEvent({ room, kind: "role-changed", nick, role: muc.role, affiliation: muc.affiliation, self: true });
    }
    return true;
  }
  // The occupants present before our own presence arrived are the room as we found it (the join's
  // answer lists them); after it, newcomers and role changes are events.
  if (row.status !== "joined") return true;
  if (before === null) roomEvent({ room, kind: "occupant-joined", nick, role: muc.role, affiliation: muc.affiliation, jid: muc.jid });
  else if (changed(before)) roomEvent({ room, kind: "role-changed", nick, role: muc.role, affiliation: muc.affiliation });
  return true;
}

/**
 * Who sent a room message beyond its nick, as far as the room tells (src/domain/message-features.ts
 * Occupant): the real bare JID it gave in the occupant's presence (XEP-0045 §7.2.3), and the
 * message's XEP-0421 occupant-id.
 */
function occupantOf(realJid: string | null, occupantId: string | null | undefined): Occupant {
  const jid = realJid === null ? null : parseJid(realJid);
  return { ...(jid ? { jid: jidToString(bare(jid)) } : {}), ...(occupantId ? { id: occupantId } : {}) };
}

/**
 * A message from a room to our occupant JID: a group message (ours reflected: `own`), history, a
 * change to an earlier group message (XEP-0308, XEP-0424, XEP-0444: src/services/inbound-features.ts
 * applyRoomChange), a subject change, or a private message from an occupant. Returns false when it
 * is not from a room the account is in (the caller handles it as an ordinary message).
 */
export async function roomMessage(tx: AnyTx, stores: MessageStores, m: InboundMessage & From, account: Account, pending: PendingWrites): Promise<boolean> {
  const key = roomMessageKey(m, account.id);
  const { room, nick } = key;
  if (m.type === "groupchat" && m.subject !== null && m.body === null) {
    // §8.1: a subject change (also sent once after joining: the current subject, §7.2.16, the
    // last stanza of the join, which the join's answer waits for). Its statement also tells
    // whether the account is in the room (no facts to read first: one round trip less a join).
    const subject = roomSubject(m.subject);
    const set = await setSubject(tx, account.id, room, subject);
    if (set === null) return false;
    // A rejoin's subject the account already has is no change (the first join's is news).
    if (!set.same) pending.add({ accountId: account.id, ...event("room", { room, kind: "subject", subject, ...(nick ? { nick } : {}) }) });
    // One the account set with POST /v1/messages is its message: reflected, it is `sent`.
    if (nick && nick === set.nick) await markSubjectReflected(tx, account.id, room, JSON.stringify(m.subject));
    return true;
  }
  const row = await pending.roomFacts(tx, key);
  if (!row) return false;
  // Live, the nick is the account's own: the room gives a nick to one occupant at a time. In the
  // history (delayed, §7.2.15) it may be someone who had it before: only the account's own
  // message id says so there (below).
  let own = m.type === "groupchat" && nick === row.selfNick;
  const at = m.delay ? new Date(m.delay) : new Date();
  // Seen, like any room message: a rejoin asks for the history after it, not for it again.
  const saw = () => {
    if (m.type === "groupchat" && !Number.isNaN(at.getTime())) pending.sawRoom(account.id, room, at);
  };
  const sender = occupantOf(row.occupantJid, m.occupantId);
  if (m.type === "groupchat" && m.features && (await applyRoomChange(tx, m, m.features, account, room, sender, own, pending))) {
    saw();
    return true;
  }
  // XEP-0184: an occupant's receipt marks the account's private message to it delivered (§7.5),
  // as a contact's does one-to-one; in group chat none is asked (§5.3).
  if (m.type !== "groupchat" && m.receivedId) await takeReceipt(tx, stores, m, account, room, pending, jidToString(m.from));
  if (m.type !== "groupchat" && m.features && (await applyPrivateChange(tx, m, m.features, account, room, pending))) return true;
  // A message says something with a body, or with attachments alone (XEP-0066), as one-to-one.
  // A chat state alone the account sent is its message all the same: reflected, it is `sent`.
  if (m.body === null && !m.features?.attachments) {
    if (own && m.originId && isMessageId(m.originId)) await markReflected(tx, account.id, m.originId);
    return true;
  }
  // A room may send a message live and then again as history when the gateway rejoins
  // (§7.2.15 `since` is inclusive, and the room may not have noticed the gateway was away):
  // the same stanza-id the room gave it (XEP-0359), or in the history the same sender's stanza id,
  // in this room is one message (key: group messages only; a live message is news whatever its
  // id: src/db/room-lookups.ts RoomMessageKey.history).
  if (row.seen) return true;
  saw();
  // The room's reflection of a message the account sent (its origin-id is our message id, XEP-0359):
  // one message, already stored; the event shows it with own: true.
  // The reflection is what makes it `sent` (API.md; it may come before the link recorded the write).
  // It keeps the stanza-id the room gave it (XEP-0359): XEP-0424 and XEP-0444 name it by that.
  const reflected = own && m.originId && isMessageId(m.originId) ? await markReflected(tx, account.id, m.originId, storedId(m.roomStanzaId)) : "unknown";
  if (m.delay && reflected === "unknown") own = false;
  // Shown once: a reflection seen before (replayed as history after a rejoin) is not news.
  if (reflected === "again") return true;
  const mine = reflected === "first";
  const id = mine ? m.originId! : randomUUID();
  const type = m.type === "groupchat" ? "groupchat" : m.type === "headline" ? "headline" : m.type === "normal" ? "normal" : "chat";
  // Replies (by the room's stanza-id in group chat, XEP-0461 §Using the correct ID) and attachments, as one-to-one.
  const { ext, body } = await newMessageExt(tx, m.features, m.body, account, room, m.type === "groupchat");
  const features = { ...(ext?.replyTo ? { replyTo: ext.replyTo } : {}), ...(ext?.attachments ? { attachments: ext.attachments } : {}) };
  // XEP-0184: a private message's receipt is owed as a one-to-one message's (src/services/events.ts
  // answers it from the account's occupant JID, through the room); none in group chat (§5.3).
  const receipt = m.type !== "groupchat" && m.receiptRequested && m.id ? { to: m.fromRaw, id: m.id } : null;
  pending.add(
    {
      accountId: account.id,
      ...event("message", {
        id,
        from: m.fromRaw,
        to: jidToString(m.to),
        type,
        body,
        subject: m.subject,
        thread: m.thread,
        lang: m.lang,
        state: m.state,
        receiptRequested: receipt !== null,
        stanzaId: m.id,
        createdAt: new Date().toISOString(),
        room,
        ...(nick ? { nick } : {}),
        ...(m.type === "groupchat" ? { own } : {}),
        ...(m.delay ? { delay: m.delay } : {}),
        ...features,
      }),
      receipt,
    },
    mine ? undefined : { id, accountId: account.id, peer: room, from: m.fromRaw, to: jidToString(m.to), type, body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receipt: receipt !== null, stanzaId: m.id, ...groupFields(m, sender, ext) },
  );
  if (!mine) pending.storedRoomMessage(key);
  return true;
}

/** What identifies a message from a room for its facts (src/db/room-lookups.ts): only group messages are checked for having been seen. */
export function roomMessageKey(m: InboundMessage & { from: Jid; fromRaw: string }, accountId: number): RoomMessageKey {
  const group = m.type === "groupchat";
  return { accountId, room: jidToString(bare(m.from)), nick: m.from.resource ?? null, stanzaId: (group && m.id) || null, history: m.delay !== null, from: m.fromRaw, roomStanzaId: (group && m.roomStanzaId) || null };
}

/**
 * A message from a room that needs no statement of its own (src/services/inbound.ts): a group or
 * private message with a body that changes no earlier message (XEP-0308, XEP-0424, XEP-0444,
 * XEP-0333) and replies to none (XEP-0461: the message replied to is looked up). Its facts are
 * read with the batch's; it is stored with the batch's rows.
 */
export function plainRoomMessage(s: InboundStanza): boolean {
  return s.kind === "message" && (s.type === "groupchat" || s.type === "chat") && (s.body !== null || !!s.features?.attachments) && s.invitation === null && s.receivedId === null && !changesEarlier(s.features) && !s.features?.reply;
}

/**
 * What a message from the room stores beyond its text: its features (`ext`: replies, attachments,
 * markable) and, for a group message from another occupant, the stanza-id its room gave it
 * (XEP-0359, as its origin_id: XEP-0424, XEP-0444 and XEP-0461 name it by that) and who sent it
 * (XEP-0308 and XEP-0424 accept changes only from the same).
 */
function groupFields(m: InboundMessage, sender: Occupant, ext: MessageExt | null) {
  // A private message keeps all of them: its marker goes back from our occupant JID (src/services/message-actions.ts).
  // And its origin-id, as one-to-one: XEP-0444 §Using the correct ID names it by that.
  if (m.type !== "groupchat") return { ext, originId: storedOriginId(m.id, m.originId) };
  const occupant = sender.jid !== undefined || sender.id !== undefined ? { occupant: sender } : null;
  return { originId: m.roomStanzaId ?? null, ext: ext || occupant ? { ...ext, ...occupant } : null };
}
