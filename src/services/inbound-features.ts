// Message features from contacts (API.md "Message features (1.1)"): corrections (XEP-0308) and
// retractions (XEP-0424) of the sender's own messages, reactions (XEP-0444) to any message of the
// conversation, markers (XEP-0333) for ours. Each changes the stored message only when it comes
// from whoever may make it (the conversation is the sender's bare JID, so a third party finds
// nothing to change; in a room, the occupant that sent it) and appends a `message-update` event.
// Anything else is ignored (debug log).
import type { AnyTx } from "../db/client.js";
import { correctBody, lockOccupantMessage, lockPrivateMessage, lockReferenced, lockRoomMessage, markRetracted, messageRecord, raiseMarkers, recordAliases, recordRoomAlias, setReactions, type MessageState } from "../db/message-state.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundFeatures, InboundMessage } from "../domain/inbound.js";
import { jidToString, type Jid } from "../domain/jid.js";
import { afterFallback, isEmoji, MAX_REACTIONS, sameOccupant, saysSomething, withoutUrlEcho, type MessageExt, type Occupant } from "../domain/message-features.js";
import { canonicalJson, type LangText } from "../domain/message.js";
import { messageView, type MessageRecord } from "../domain/views.js";
import type { NewEvent } from "../db/events.js";

/** The batch's pending writes (src/services/inbound-message.ts PendingWrites), as far as changes need them. */
interface PendingWrites {
  flush(tx: AnyTx): Promise<void>;
  add(event: NewEvent): void;
  absent(account: Account): Promise<void>;
}

/** Whether the message changes an earlier one (and is not a message of its own). */
export const changesEarlier = (f: InboundFeatures | null | undefined): boolean => !!f && (!!f.replace || !!f.retract || !!f.reactions || !!f.marker);

/**
 * Applies a correction, retraction, reaction or marker from `peer` (the sender's bare JID) in the
 * conversation with it. Returns false when the message is none of these.
 */
export async function applyChange(tx: AnyTx, m: InboundMessage, f: InboundFeatures, account: Account, peer: string, pending: PendingWrites): Promise<boolean> {
  if (!changesEarlier(f)) return false;
  // The message changed may be in this batch's pending rows.
  await pending.flush(tx);
  // No message it names (under a cached id whose account is gone, none is found): pending.absent.
  const referenced: Referenced = async (ref, direction) => (await lockReferenced(tx, account.id, peer, ref, direction)) ?? (await pending.absent(account), null);
  updated(await change(tx, m, f, account, peer, referenced), m, f, account, pending);
  return true;
}

/**
 * One message-update per message changed, in sequence order (a marker may raise several). XEP-0184
 * §5.4: a correction, retraction or reaction is a content message, and its receipt is answered as
 * a message's is (once a stream has its event), under its own stanza id. A marker asks for none.
 */
function updated(changed: MessageRecord[], m: InboundMessage, f: InboundFeatures, account: Account, pending: PendingWrites): void {
  const receipt = m.receiptRequested && m.id && m.fromRaw && !f.marker ? { to: m.fromRaw, id: m.id } : null;
  for (const [i, record] of changed.entries()) pending.add({ accountId: account.id, ...event("message-update", messageView(record)), receipt: i === 0 ? receipt : null });
}

/** lockReferenced in the conversation with the sender. */
type Referenced = (ref: string, direction: "in" | "out" | null) => ReturnType<typeof lockReferenced>;

async function change(tx: AnyTx, m: InboundMessage, f: InboundFeatures, account: Account, peer: string, referenced: Referenced): Promise<MessageRecord[]> {
  if (f.replace || f.retract || f.reactions) {
    const changed = await changeOne(tx, m, f, account.id, peer, referenced);
    return changed ? [await messageRecord(tx, changed)] : [];
  }
  // XEP-0333: markers only for our messages to this peer, only forward, and each marks every
  // message up to the one it names (src/db/message-state.ts raiseMarkers).
  const ours = await referenced(f.marker!.id, "out");
  return ours ? raiseMarkers(tx, account.id, peer, ours.id, f.marker!.name, m.thread) : [];
}

/** A correction, retraction or reaction: the one message it changed, if any. */
async function changeOne(tx: AnyTx, m: InboundMessage, f: InboundFeatures, accountId: number, peer: string, referenced: Referenced): Promise<string | null> {
  if (f.replace) {
    // XEP-0308 §4: only the sender's own message, with a new text.
    const original = await referenced(f.replace, "in");
    if (!original || original.retractedAt || m.body === null) return null;
    await correctBody(tx, original.id, correctedText(m.body, f));
    // What names the correction names the original (XEP-0444 §Business Rules): the ids it came under.
    await recordAliases(tx, accountId, peer, original.id, [m.id, m.originId]);
    return original.id;
  }
  if (f.retract) {
    const original = await referenced(f.retract, "in");
    if (!original || original.retractedAt) return null;
    await markRetracted(tx, original.id);
    return original.id;
  }
  if (f.reactions) {
    // XEP-0444 §4: the peer of a one-to-one conversation may react to any of its messages.
    const target = await referenced(f.reactions.id, null);
    const emojis = keptReactions(f.reactions);
    // Not to a chat state the account sent alone: no message (saysSomething).
    if (!target || target.retractedAt || target.type === "groupchat" || !saysSomething(target)) return null;
    await setReactions(tx, target.id, peer, emojis);
    return target.id;
  }
  return null;
}

/** XEP-0444 §Business Rules: a <reaction> that is not one emoji "MAY" be ignored; the others are kept, up to MAX_REACTIONS. */
const keptReactions = (r: { emojis: string[] }): string[] => r.emojis.filter(isEmoji).slice(0, MAX_REACTIONS);

/**
 * A correction's new text: its body without the fallback quote of the reply it re-sends (XEP-0308
 * §Business Rules re-sends the whole stanza, XEP-0461 §3 and all), as the original was stored.
 */
const correctedText = (body: LangText, f: InboundFeatures): LangText =>
  f.reply && f.reply.quoteEnd !== null && typeof body === "string" ? afterFallback(body, f.reply.quoteEnd) : body;

/**
 * A group message in a room the account is in (XEP-0045) that changes an earlier one: true when it
 * is one (then it is no message of its own, whether it changed anything or not). A correction
 * (XEP-0308) or retraction (XEP-0424) changes only the group message of the occupant that sends it:
 * the same occupant JID `room/nick`, and the same real JID and XEP-0421 occupant-id as far as the
 * room told them (`sender`; sameOccupant). A reaction (XEP-0444) from any occupant sets that
 * occupant's own (under its real bare JID where the room gives it, else its occupant JID) on the
 * message the room's stanza-id names. The
 * account's own (`own`: reflected by the room, §7.4) were applied when it sent them. A marker
 * (XEP-0333) from another occupant raises the account's own group messages, as a contact's does
 * one-to-one (markInRoom). A change that changes nothing (one the room replays in the history a
 * rejoin asks for, §7.2.15) is no update.
 */
export async function applyRoomChange(tx: AnyTx, m: InboundMessage & { fromRaw: string }, f: InboundFeatures, account: Account, room: string, sender: Occupant, own: boolean, pending: PendingWrites): Promise<boolean> {
  if (!changesEarlier(f)) return false;
  if (own) {
    // The room's stanza-id for the account's own correction, which others' reactions and markers name.
    if (f.replace && m.roomStanzaId) await recordRoomAlias(tx, account.id, room, f.replace, m.roomStanzaId);
    return true;
  }
  // The message changed may be in this batch's pending rows.
  await pending.flush(tx);
  const changed = f.replace || f.retract || f.reactions ? await changeInRoom(tx, m, f, account.id, room, sender) : await markInRoom(tx, m, f.marker!, account.id, room);
  for (const record of changed) pending.add({ accountId: account.id, ...event("message-update", messageView(record)) });
  return true;
}

/**
 * A private message from an occupant (XEP-0045 §7.5) that changes an earlier private message of
 * the conversation with that occupant JID, as a contact's does one-to-one (applyChange): a
 * correction (XEP-0308) or retraction (XEP-0424) of one of its own ("in MUCs and MUC-PMs the
 * correction's full-JID must match the original full-JID", XEP-0308 §Business Rules); a reaction
 * (XEP-0444) to one of either side, keyed by its occupant JID as in the room, naming the message's
 * own 'id' or origin-id (§Using the correct ID: only a group message is named by the room's
 * stanza-id); a marker (XEP-0333) for the account's own, which raises them as one-to-one. A group
 * message, or another occupant's conversation, is not changed. True when it is one: then it is no
 * message of its own, whether it changed anything or not; its receipt is asked as one-to-one.
 */
export async function applyPrivateChange(tx: AnyTx, m: InboundMessage & { from: Jid; fromRaw: string }, f: InboundFeatures, account: Account, room: string, pending: PendingWrites): Promise<boolean> {
  if (!changesEarlier(f)) return false;
  await pending.flush(tx);
  const occupant = { raw: m.fromRaw, jid: jidToString(m.from) };
  if (f.marker) {
    const ours = await lockPrivateMessage(tx, account.id, room, occupant, f.marker.id, "out");
    updated(ours ? await raiseMarkers(tx, account.id, room, ours.id, f.marker.name, m.thread, { to: ours.to }) : [], m, f, account, pending);
    return true;
  }
  const changed = f.reactions ? await occupantReaction(tx, m, f.reactions, await lockPrivateMessage(tx, account.id, room, occupant, f.reactions.id, null)) : await occupantEdit(tx, m, f, account.id, room, false);
  updated(changed ? [await messageRecord(tx, changed)] : [], m, f, account, pending);
  return true;
}

/**
 * A correction or retraction by the occupant JID that sent it (`m.fromRaw`) of its own message in
 * `room`: a group message, or with `group` false a private one (XEP-0045 §7.5), which `mine` may
 * refuse (another occupant under the nick). The message it changed, if any: a correction that
 * repeats the text the message has (the room's history replaying it) changes nothing.
 */
async function occupantEdit(tx: AnyTx, m: InboundMessage & { fromRaw: string }, f: InboundFeatures, accountId: number, room: string, group: boolean, mine: (original: MessageState) => boolean = () => true): Promise<string | null> {
  // XEP-0308 names the original by its 'id', XEP-0424 by the room's stanza-id: either finds only this occupant's.
  const original = await lockOccupantMessage(tx, accountId, room, m.fromRaw, (f.replace ?? f.retract)!, group);
  if (!original || original.retractedAt || !mine(original)) return null;
  if (f.replace) {
    if (m.body === null) return null;
    const body = correctedText(m.body, f);
    if (original.editedAt !== null && canonicalJson(original.body) === canonicalJson(body)) return null;
    await correctBody(tx, original.id, body);
    // A reaction or marker names a group message by the room's stanza-id (XEP-0444 §Using the correct ID).
    await recordAliases(tx, accountId, room, original.id, [m.id, m.originId, group ? m.roomStanzaId : null]);
  } else {
    await markRetracted(tx, original.id);
  }
  return original.id;
}

/**
 * XEP-0333 §Usage within MUC: an occupant's marker names the stanza-id the room gave the message,
 * or, in a room that gives none, the message's own id (ours: the account's message id, which is
 * also its origin-id). Naming one of the account's own group messages, it raises that one and the
 * account's earlier group messages in the room (only forward: src/db/message-state.ts
 * raiseMarkers), so `marker` reads what at least one other occupant reported. A marker for
 * someone else's message changes nothing here.
 */
async function markInRoom(tx: AnyTx, m: InboundMessage, marker: NonNullable<InboundFeatures["marker"]>, accountId: number, room: string): Promise<MessageRecord[]> {
  const byRoomId = await lockRoomMessage(tx, accountId, room, marker.id);
  const target = byRoomId ?? (await lockReferenced(tx, accountId, room, marker.id, "out"));
  // Where the room gave a stanza-id, clients "MUST always use the MUC-assigned id".
  const named = target && (target === byRoomId || target.originId === null);
  if (!named || target.direction !== "out" || target.type !== "groupchat") return [];
  return raiseMarkers(tx, accountId, room, target.id, marker.name, m.thread, "groupchat");
}

async function changeInRoom(tx: AnyTx, m: InboundMessage & { fromRaw: string }, f: InboundFeatures, accountId: number, room: string, sender: Occupant): Promise<MessageRecord[]> {
  const changed = await changeOneInRoom(tx, m, f, accountId, room, sender);
  return changed ? [await messageRecord(tx, changed)] : [];
}

/** A correction, retraction or reaction in a room: the one message it changed, if any. */
async function changeOneInRoom(tx: AnyTx, m: InboundMessage & { fromRaw: string }, f: InboundFeatures, accountId: number, room: string, sender: Occupant): Promise<string | null> {
  if (f.replace || f.retract) return occupantEdit(tx, m, f, accountId, room, true, (original) => sameOccupant((original.ext as MessageExt | null)?.occupant, sender));
  // XEP-0444 §Using the correct ID: "the ID assigned to the stanza by the group chat itself".
  return occupantReaction(tx, m, f.reactions!, await lockRoomMessage(tx, accountId, room, f.reactions!.id), sender.jid);
}

/**
 * An occupant's reactions (XEP-0444) to `target`, a group message or a private one of its
 * conversation with the account: the message changed, if any (the same set again, as the room's
 * history replays it, changes nothing). Set under the occupant's real bare JID where the room told
 * it (`realJid`: XEP-0444 §Acceptable reactions, "the real bare JID of the sending occupant"; so a
 * newcomer under a nick does not replace what the nick's earlier occupant set, and one person under
 * two nicks has one set), else under its occupant JID.
 */
async function occupantReaction(tx: AnyTx, m: InboundMessage & { fromRaw: string }, reactions: NonNullable<InboundFeatures["reactions"]>, target: MessageState | null, realJid?: string): Promise<string | null> {
  if (!target || target.retractedAt || !saysSomething(target)) return null;
  const by = realJid ?? m.fromRaw;
  const emojis = keptReactions(reactions);
  if (canonicalJson(target.reactions?.[by] ?? []) === canonicalJson(emojis)) return null;
  await setReactions(tx, target.id, by, emojis);
  return target.id;
}

/**
 * What a new message stores of its features: the message it replies to (by our id for it, null
 * when we do not have it), attachments, markable; and its body without the reply's fallback quote.
 * A group message (`group`) names the message it replies to by the stanza-id its room gave that
 * (XEP-0461 §Using the correct ID), which the room's messages keep as their origin_id.
 */
export async function newMessageExt(tx: AnyTx, f: InboundFeatures | null | undefined, body: LangText | null, account: Account, peer: string, group = false): Promise<{ ext: MessageExt | null; body: LangText | null }> {
  if (!f) return { ext: null, body };
  const ext: MessageExt = {};
  if (f.markable) ext.markable = true;
  if (f.attachments) ext.attachments = f.attachments;
  if (f.reply) {
    const target = group ? await lockRoomMessage(tx, account.id, peer, f.reply.id) : await lockReferenced(tx, account.id, peer, f.reply.id, null);
    ext.replyTo = { id: target?.id ?? null };
    if (f.reply.quoteEnd !== null && typeof body === "string") body = afterFallback(body, f.reply.quoteEnd);
  }
  // A body that only repeats an attachment's URL is no text: stored as the account's own attachment-only message is, without one.
  body = withoutUrlEcho(body, f.attachments);
  return { ext: Object.keys(ext).length > 0 ? ext : null, body };
}
