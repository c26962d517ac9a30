// Message features from contacts (API.md "Message features (1.1)"): corrections (XEP-0308) and
// retractions (XEP-0424) of the sender's own messages, reactions (XEP-0444) to any message of the
// conversation, markers (XEP-0333) for ours. Each changes the stored message only when it comes
// from whoever may make it (the conversation is the sender's bare JID, so a third party finds
// nothing to change) and appends a `message-update` event. Anything else is ignored (debug log).
import type { AnyTx } from "../db/client.js";
import { correctBody, lockReferenced, markRetracted, messageRecord, raiseMarkers, setReactions } from "../db/message-state.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundFeatures, InboundMessage } from "../domain/inbound.js";
import { afterFallback, isEmoji, MAX_REACTIONS, type MessageExt } from "../domain/message-features.js";
import type { LangText } from "../domain/message.js";
import { messageView, type MessageRecord } from "../domain/views.js";
import type { NewEvent } from "../db/events.js";

/** The batch's pending writes (src/services/inbound-message.ts PendingWrites), as far as changes need them. */
interface PendingWrites {
  flush(tx: AnyTx): Promise<void>;
  add(event: NewEvent): void;
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
  // One message-update per message changed, in sequence order (a marker may raise several).
  for (const changed of await change(tx, m, f, account, peer)) pending.add({ accountId: account.id, ...event("message-update", messageView(changed)) });
  return true;
}

async function change(tx: AnyTx, m: InboundMessage, f: InboundFeatures, account: Account, peer: string): Promise<MessageRecord[]> {
  if (f.replace || f.retract || f.reactions) {
    const changed = await changeOne(tx, m, f, account, peer);
    return changed ? [await messageRecord(tx, changed)] : [];
  }
  // XEP-0333: markers only for our messages to this peer, only forward, and each marks every
  // message up to the one it names (src/db/message-state.ts raiseMarkers).
  const ours = await lockReferenced(tx, account.id, peer, f.marker!.id, "out");
  return ours ? raiseMarkers(tx, account.id, peer, ours.id, f.marker!.name, m.thread) : [];
}

/** A correction, retraction or reaction: the one message it changed, if any. */
async function changeOne(tx: AnyTx, m: InboundMessage, f: InboundFeatures, account: Account, peer: string): Promise<string | null> {
  if (f.replace) {
    // XEP-0308 §4: only the sender's own message, with a new text.
    const original = await lockReferenced(tx, account.id, peer, f.replace, "in");
    if (!original || original.retractedAt || m.body === null) return null;
    await correctBody(tx, original.id, m.body);
    return original.id;
  }
  if (f.retract) {
    const original = await lockReferenced(tx, account.id, peer, f.retract, "in");
    if (!original || original.retractedAt) return null;
    await markRetracted(tx, original.id);
    return original.id;
  }
  if (f.reactions) {
    // XEP-0444 §4: the peer of a one-to-one conversation may react to any of its messages; a
    // <reaction> that is not one emoji "MAY" be ignored (§Business Rules), the others are kept.
    const target = await lockReferenced(tx, account.id, peer, f.reactions.id, null);
    const emojis = f.reactions.emojis.filter(isEmoji).slice(0, MAX_REACTIONS);
    if (!target || target.retractedAt || target.type === "groupchat") return null;
    await setReactions(tx, target.id, peer, emojis);
    return target.id;
  }
  return null;
}

/**
 * What a new message stores of its features: the message it replies to (by our id for it, null
 * when we do not have it), attachments, markable; and its body without the reply's fallback quote.
 */
export async function newMessageExt(tx: AnyTx, f: InboundFeatures | null | undefined, body: LangText | null, account: Account, peer: string): Promise<{ ext: MessageExt | null; body: LangText | null }> {
  if (!f) return { ext: null, body };
  const ext: MessageExt = {};
  if (f.markable) ext.markable = true;
  if (f.attachments) ext.attachments = f.attachments;
  if (f.reply) {
    const target = await lockReferenced(tx, account.id, peer, f.reply.id, null);
    ext.replyTo = { id: target?.id ?? null };
    if (f.reply.quoteEnd !== null && typeof body === "string") body = afterFallback(body, f.reply.quoteEnd);
  }
  return { ext: Object.keys(ext).length > 0 ? ext : null, body };
}
