// Changes to messages already sent or received (API.md "Message features (1.1)"): the account
// corrects (XEP-0308) or retracts (XEP-0424) its own messages, reacts to any message of its
// conversations (XEP-0444), and tells a sender it displayed theirs (XEP-0333). Each is one
// transaction: the stored message changes, the stanza saying so is recorded for the link, and a
// `message-update` event carries the message as it is now. In a room the account is in (XEP-0045)
// the change goes to the room, as a group message from the account's occupant JID (§7.4).
import type { AnyTx } from "../db/client.js";
import { markRead } from "../db/conversations.js";
import { appendEvents } from "../db/events.js";
import { correctBody, keyUse, lockMessage, recordCorrectionKey, markRetracted, messageRecord, setReactions, type MessageState } from "../db/message-state.js";
import { recordUndo } from "../db/message-undo.js";
import { findRoom, occupies } from "../db/rooms.js";
import { randomUUID } from "node:crypto";
import { accountJid, type Account } from "../domain/account.js";
import { blockedError } from "../domain/blocking.js";
import { AppError } from "../domain/errors.js";
import { event } from "../domain/events.js";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { canonicalJson, isMessageId, type ChatState, type LangText, type MessageType, type WireExt } from "../domain/message.js";
import type { MessageExt } from "../domain/message-features.js";
import { assertReplyBody, reactionRef, retractionRef, saysSomething, validReactions, wireId, MAX_REACTIONS } from "../domain/message-features.js";
import { occupantJid, ROOM_RESOURCE } from "../domain/muc.js";
import type { MessageAction, Resend, Stanza } from "../domain/stanza.js";
import { messageView, type MessageView } from "../domain/views.js";
import type { Delivery } from "./delivery.js";
import type { SendMessage } from "./messaging.js";
import { requestFingerprint } from "./request-fingerprint.js";
import { assertFits, type StanzaSizer } from "./stanza-size.js";
import { assertRoomReachable, rejoinWaiting } from "./rooms.js";

type Send = (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>;

export interface Correction {
  to: string;
  body: LangText;
  lang: string | null;
  /** As the request gave it (absent: chat, the schema's default): the original's, or chat. */
  type?: MessageType;
  /** The request's Idempotency-Key and its payload's fingerprint (as a new message's: src/services/messaging.ts). */
  key?: { key: string; hash: string } | null;
}

/** What a correction request may carry: everything else it re-sends of the original (resendOf). */
const CORRECTION_FIELDS: ReadonlySet<string> = new Set(["to", "body", "lang", "replace", "type"]);

/**
 * What a correction takes of a POST /v1/messages body with `replace`: it carries the new text.
 * XEP-0308 §Business Rules re-sends the original whole, so a subject, thread, attachments, reply
 * and the like in the request could only be dropped: they are refused, naming the field.
 */
export function correctionOf(m: SendMessage, idempotencyKey: string | null = null): Correction {
  const extra = Object.entries(m).find(([k, v]) => !CORRECTION_FIELDS.has(k) && v !== undefined)?.[0];
  if (extra !== undefined) {
    throw new AppError("validation-failed", `${extra}: a correction (replace) carries only to, body and lang; it re-sends the rest of the original as it was (XEP-0308 §Business Rules)`, { field: `body.${extra}` });
  }
  if (m.body === undefined) throw new AppError("validation-failed", "body: a correction (replace) carries the new body", { field: "body.body" });
  const key = idempotencyKey === null ? null : { key: idempotencyKey, hash: requestFingerprint(m, parseJid(m.to)) };
  return { to: m.to, body: m.body, lang: m.lang ?? null, ...(m.type !== undefined ? { type: m.type } : {}), key };
}

const keyReused = () => new AppError("idempotency-key-reused", "this Idempotency-Key was used within 24 h for a different request", { field: "headers.idempotency-key" });

type Corrected = { id: string; status: "queued" | "sent"; createdAt: Date; replayed: boolean };

export class MessageActions {
  constructor(
    private readonly delivery: Delivery,
    private readonly out: StanzaSizer,
    private readonly domain: string,
    /**
     * XEP-0191 §3.3: whether the account blocked a JID (nothing is routed to it), read in the
     * action's transaction: a block another instance just committed counts before this one's cache hears of it.
     */
    private readonly blocked: (accountId: number, jid: string, tx: AnyTx) => Promise<boolean> = async () => false,
  ) {}

  /**
   * POST /v1/messages with `replace`: the account's own message gets a new text. A correction to
   * the text a correction already gave it is a retry (the client did not hear the first answer):
   * answered the same, `replayed`, and nothing is sent again. The correction of a message still
   * queued is recorded all the same; the drain then sends the message once, with its latest text,
   * and drops the corrections that text already has (src/db/outbox.ts MOOT).
   */
  async correct(account: Account, resource: string | null, originalId: string, c: Correction): Promise<Corrected> {
    const to = parseJid(c.to);
    if (!to) throw new AppError("invalid-jid", `to: "${c.to}" is not a valid JID (RFC 7622)`, { field: "body.to" });
    return this.change(account, originalId, async (tx, m, send) => {
      // XEP-0308 §4: only the sender corrects, and only a message of this conversation (a room's:
      // to the room's bare JID, as the message went).
      if (m.direction !== "out" || m.peer !== jidToString(bare(to)) || m.retractedAt || (m.type === "groupchat" && to.resource !== undefined)) {
        throw notFound(originalId, "a message this account sent to body.to");
      }
      // XEP-0308 §Business Rules: no correction of "a message that contains non-messaging payloads" (a chat state alone).
      if (!saysSomething(m)) throw notFound(originalId, "a message: a chat state sent alone is none");
      // The whole original goes again (below): a reply's quote too, which a language map cannot carry.
      if ((m.ext as WireExt | null)?.reply) assertReplyBody(c.body);
      // The original's type goes out again (action): another could only be dropped. `chat` is also
      // what the schema makes of none given, so it stands for the original's.
      if (c.type !== undefined && c.type !== "chat" && c.type !== m.type) {
        throw new AppError("validation-failed", `type: a correction goes as its original went (${m.type}), not as ${c.type} (XEP-0308 §Business Rules)`, { field: "body.type" });
      }
      // A group message's status: `queued` until the room reflected it (`written` on the way), then `sent`.
      const answer = { id: m.id, status: m.status === "queued" || m.status === "written" ? ("queued" as const) : ("sent" as const), createdAt: m.createdAt };
      // API.md Messages: a key sent again with the same payload answers as the first time and sends
      // nothing; with another payload (or a new message's key) it is 422.
      const use = c.key ? await keyUse(tx, account.id, c.key.key) : null;
      if (use !== null && (use === "message" || use.hash !== c.key!.hash)) throw keyReused();
      if (use !== null) return { ...answer, status: use.status === "sent" ? "sent" : "queued", replayed: true };
      if (m.editedAt !== null && canonicalJson(m.body) === canonicalJson(c.body)) return { ...answer, replayed: true };
      // After the replays: a correction accepted before the message bounced answers as it did.
      assertReached(m, "corrected");
      await this.inRoom(tx, account, m);
      // XEP-0308 §Business Rules: the whole original again (in a room too: it names the original by
      // its 'id', our id), only the id and the text new. Measured as sent: the same limit as a new
      // message's (src/services/messaging.ts).
      const stanza = this.action(account, resource, m, { kind: "replace", ref: m.id, body: c.body, lang: c.lang ?? m.lang, resend: resendOf(m) });
      assertFits(this.out, stanza, "body.body");
      await correctBody(tx, m.id, c.body);
      // A marker or reaction may name the correction rather than the message (XEP-0444 §Business
      // Rules); an error under its id puts the text back (src/services/refused-change.ts).
      await recordUndo(tx, account.id, m.peer, m.id, stanza.id, { kind: "replace", before: { body: m.body, editedAt: m.editedAt?.toISOString() ?? null }, after: c.body });
      if (c.key && !(await recordCorrectionKey(tx, account.id, c.key.key, c.key.hash, m.id, answer.status))) throw keyReused();
      await send(account.id, [stanza]);
      return { ...answer, replayed: false };
    }, false, "body.to");
  }

  /**
   * The corrections of a POST /v1/messages/batch, one after the other in the order given (two of
   * one message leave the later text), each on its own: an error refuses only its item.
   */
  async correctEach(account: Account, resource: string | null, items: { message: SendMessage; idempotencyKey: string | null }[]): Promise<(Corrected | AppError)[]> {
    const results: (Corrected | AppError)[] = [];
    for (const { message: m, idempotencyKey } of items) {
      try {
        results.push(await this.correct(account, resource, m.replace!, correctionOf(m, idempotencyKey)));
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        results.push(err);
      }
    }
    return results;
  }

  /**
   * DELETE /v1/messages/{id}: unsends one of the account's own messages; a tombstone stays. Only
   * the link holder knows whether a message still queued was written (it may have gone out on the
   * direct path, src/services/delivery.ts, and wait for its "sent" record), so the retraction is
   * recorded whatever the queue says, and the drain decides under its claim's lock: a message it
   * finds retracted is withdrawn (never sent, `failed`), and its retraction with it (src/db/outbox.ts MOOT).
   */
  async retract(account: Account, id: string): Promise<void> {
    await this.change(account, id, async (tx, m, send) => {
      if (m.direction !== "out") throw notFound(id, "a message this account sent");
      if (m.retractedAt) return;
      // A chat state sent alone is a notification, not a message: nothing to unsend (nor to correct or react to).
      if (!saysSomething(m)) throw notFound(id, "a message: a chat state sent alone is none");
      // A message that failed never reached its recipient (XEP-0424 §1 unsends what it has): the
      // account may still clear it from its history, but nothing goes out about it.
      const failed = m.status === "failed";
      if (!failed) await this.inRoom(tx, account, m);
      await markRetracted(tx, m.id);
      // To a blocked peer nothing is sent either: the tombstone is kept here only.
      if (!failed && !(await this.blocked(account.id, addressee(m), tx))) await send(account.id, [this.action(account, null, m, { kind: "retract", ref: retractionRef(m) })]);
      else await appendEvents(tx, [{ accountId: account.id, ...event("message-update", messageView(await messageRecord(tx, m.id))) }]);
    }, true);
  }

  /** POST /v1/messages/{id}/reactions: the account's whole set of reactions to a message of its conversations. */
  async react(account: Account, id: string, emojis: string[]): Promise<MessageView> {
    if (!validReactions(emojis)) {
      throw new AppError("validation-failed", `emojis: at most ${MAX_REACTIONS} different emoji, each one emoji (Unicode TS #51)`, { field: "body.emojis" });
    }
    return this.change(account, id, async (tx, m, send) => {
      const ref = reactionRef(m);
      // XEP-0444 §Using the correct ID: "group chat messages without a XEP-0359 stanza-id cannot be reacted to".
      if (m.retractedAt || ref === null) throw notFound(id, m.type === "groupchat" ? "a group message its room gave a stanza-id (XEP-0359)" : "a message that has an id");
      if (!saysSomething(m)) throw notFound(id, "a message: a chat state sent alone is none");
      assertReached(m, "reacted to");
      await this.inRoom(tx, account, m);
      const by = accountJid(account.localpart, this.domain);
      await setReactions(tx, m.id, by, emojis);
      const stanza = this.action(account, null, m, { kind: "reactions", ref, emojis });
      await recordUndo(tx, account.id, m.peer, m.id, stanza.id, { kind: "reactions", by, before: m.reactions?.[by] ?? [], after: emojis });
      await send(account.id, [stanza]);
      return messageView(await messageRecord(tx, m.id));
    });
  }

  /**
   * POST /v1/messages/{id}/displayed: marks the conversation read up to the message and tells its
   * sender (if it asked, XEP-0333) that it was displayed. A group message's marker goes to its room
   * (XEP-0333 §Usage within MUC), naming the id the room assigned (its XEP-0359 stanza-id: none, no
   * marker), while the account is in the room. From a blocked JID only the marker is not sent
   * (XEP-0191 §3.3 forbids routing to it): reading the conversation is the account's own business.
   */
  async displayed(account: Account, id: string): Promise<void> {
    await this.change(account, id, async (tx, m, send) => {
      if (m.direction !== "in") throw notFound(id, "a message this account received");
      await markRead(tx, account.id, m.id);
      const group = m.type === "groupchat";
      const ref = group ? m.originId : wireId(m);
      if (ref === null || !(m.ext as MessageExt | null)?.markable) return;
      if (group) {
        const row = await findRoom(tx, account.id, m.peer);
        if (!occupies(row) || rejoinWaiting(row)) return;
      }
      if (await this.blocked(account.id, addressee(m), tx)) return;
      // XEP-0333 §Protocol Format: the marker "MUST have a 'thread' child element" when the message had one.
      await send(account.id, [this.action(account, null, m, { kind: "displayed", ref, thread: m.thread })]);
    }, true);
  }

  /** Locks the message, applies `fn`, and appends the message as it is now as a `message-update` event. */
  private change<T>(account: Account, id: string, fn: (tx: AnyTx, m: MessageState, send: Send) => Promise<T>, blockedPeerOk = false, blockedField = "params.id"): Promise<T> {
    if (!isMessageId(id)) return Promise.reject(notFound(id, "a message of this account"));
    return this.delivery.transaction(async (tx, send) => {
      const m = await lockMessage(tx, account.id, id);
      if (!m) throw notFound(id, "a message of this account");
      if (!blockedPeerOk && (await this.blocked(account.id, addressee(m), tx))) throw blockedError(addressee(m), blockedField);
      const sent: Stanza[] = [];
      const result = await fn(tx, m, async (accountId, stanzas) => {
        sent.push(...stanzas);
        await send(accountId, stanzas);
      });
      if (sent.length > 0 && sent.some((s) => s.kind === "message-action" && s.action.kind !== "displayed")) {
        await appendEvents(tx, [{ accountId: account.id, ...event("message-update", messageView(await messageRecord(tx, m.id))) }]);
      }
      return result;
    });
  }

  /** A change to a group message goes to its room: only while the account is in it (XEP-0045 §7.4; a rejoin under way counts). */
  private async inRoom(tx: AnyTx, account: Account, m: MessageState): Promise<void> {
    if (m.type !== "groupchat") return;
    const row = await findRoom(tx, account.id, m.peer);
    if (!occupies(row)) throw new AppError("room-not-joined", `${m.peer} is not a room this account is in (PUT /v1/rooms/{room} first)`);
    assertRoomReachable(row, m.peer);
  }

  private action(account: Account, resource: string | null, m: MessageState, action: MessageAction): Extract<Stanza, { kind: "message-action" }> {
    const jid = accountJid(account.localpart, this.domain);
    // XEP-0045 §7.4: to the room's bare JID, from the account's occupant JID, as a group message.
    if (m.type === "groupchat") return { kind: "message-action", from: occupantJid(jid), to: m.peer, id: randomUUID(), type: "groupchat", action };
    // §7.5: a private message with an occupant went through the room between it and the account's
    // occupant JID (src/db/room-lookups.ts occupantSender), and so does what changes or marks it.
    const own = parseJid(m.direction === "out" ? m.from : m.to);
    const from = own?.resource === ROOM_RESOURCE ? occupantJid(jid) : jid + (resource ? `/${resource}` : "");
    // The original's type (XEP-0308: a correction re-sends the stanza); other changes are chat.
    const type = action.kind === "replace" && m.type !== "chat" ? { type: m.type as MessageType } : {};
    return { kind: "message-action", from, to: addressee(m), id: randomUUID(), ...type, action };
  }
}

/**
 * Where a change to `m` goes (action below), and so what a block must not cover (XEP-0191 §3.3:
 * nothing is routed to a blocked JID): its room for a group message; else the other party's address
 * on it, a full JID or a room occupant's (§7.5), which an item may block though the conversation's
 * bare JID is not (XEP-0016 §2.1's order; the blocking audit).
 */
const addressee = (m: MessageState): string => (m.type === "groupchat" ? m.peer : m.direction === "out" ? m.to : m.from);

/** What a correction repeats of the account's message (XEP-0308 §Business Rules): all but its id, addresses, type and text. */
const resendOf = (m: MessageState): Resend => ({
  subject: m.subject as LangText | null,
  thread: m.thread,
  receipt: m.receipt,
  state: m.state as ChatState | null,
  ext: m.ext as WireExt | null,
});

/**
 * A correction (XEP-0308 §1) and a reaction (XEP-0444 §1) each name a message the recipient has.
 * An outbound message that failed (an error bounce, RFC 6120 §8.3; one over the stanza limit; one
 * withdrawn while queued, already a tombstone) never reached it: the change would go to an address
 * that refused the message, about a message it never showed. (A retraction of it is a tombstone
 * here only: see retract.)
 */
function assertReached(m: MessageState, what: string): void {
  if (m.direction === "out" && m.status === "failed") {
    throw new AppError("message-failed", `${m.id} failed: its recipient never got it, so it cannot be ${what} (send a new message instead)`);
  }
}

const notFound = (id: string, what: string) => new AppError("message-not-found", `${id} is not ${what}`);
