// Sending messages (RFC 6121 §5) and reading them back. An accepted message is written (many
// requests batched into one statement) before the caller hears 202, then handed to Delivery,
// which writes it on the link (at once, on the link holder) and records it as sent once the XMPP
// server confirmed it.
import { randomUUID } from "node:crypto";
import type { AcceptedMessage, Messages, NewOutbound } from "../db/messages.js";
import type { Account } from "../domain/account.js";
import { accountJid } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { assertAddressSpeltAlike } from "../domain/stringprep-fold.js";
import { isMessageId, stanzaBytesBound, type ChatState, type LangText, type MessageType, type OutboundMessage } from "../domain/message.js";
import { assertReplyBody, replyQuote, replyRef, saysSomething, type Attachment } from "../domain/message-features.js";
import { messageView, type MessageView } from "../domain/views.js";
import { forwardPageOf, pageOf, type Page } from "../domain/page.js";
import { occupantJid } from "../domain/muc.js";
import { Batcher } from "./batcher.js";
import { cachedJidParser } from "./jid-cache.js";
import type { Delivery } from "./delivery.js";
import type { OutboundPort, ServiceMetrics } from "./ports.js";
import { assertFits } from "./stanza-size.js";
import { formerFingerprint, requestFingerprint } from "./request-fingerprint.js";

export interface SendMessage {
  to: string;
  type?: MessageType;
  body?: LangText;
  subject?: LangText;
  thread?: string;
  lang?: string;
  receipt?: boolean;
  state?: ChatState;
  /** XEP-0461: reply to this message of the same conversation. */
  reply?: { id: string };
  attachments?: Attachment[];
  /** XEP-0333: ask for markers (default: true for chat). */
  markable?: boolean;
  /** XEP-0308: handled by MessageActions.correct, not here. */
  replace?: string;
}

export interface Accepted {
  id: string;
  /** Durable and on its way (API.md also allows "sent", never answered here); GET reads "sent" once the XMPP server has confirmed it. */
  status: "queued";
  createdAt: Date;
  /** An idempotent retry: the first request's answer, nothing sent again. */
  replayed: boolean;
}

/** The fields of a message that go on the wire (a stored row carries more). */
const outbound = (m: OutboundMessage): OutboundMessage => ({
  id: m.id,
  from: m.from,
  to: m.to,
  type: m.type,
  body: m.body,
  subject: m.subject,
  thread: m.thread,
  lang: m.lang,
  receipt: m.receipt,
  state: m.state,
  ext: m.ext ?? null,
});

export class Messaging {
  /** Each message's row, or why it was not written (a block another instance committed: AppError). */
  private readonly writer: Batcher<NewOutbound, AcceptedMessage | AppError>;
  /** Recipients repeat a lot (integrations post to the same JIDs): remember recent parses. */
  private readonly recipient = cachedJidParser();
  /** A keyed message's former fingerprint, where it has one (formerFingerprint). */
  private readonly formerHashes = new WeakMap<NewOutbound, string>();

  constructor(
    private readonly messages: Messages,
    delivery: Delivery,
    private readonly out: OutboundPort,
    private readonly domain: string,
    metrics: Pick<ServiceMetrics, "messagesAccepted">,
    /** The account's nick in a room, null when it is not in it (XEP-0045): group messages go only to rooms it is in. */
    private readonly roomNick: (accountId: number, room: string) => Promise<string | null> = async () => null,
    /** Throws when the account blocked the recipient (XEP-0191 §3.3). */
    private readonly notBlocked: (accountId: number, to: string) => Promise<void> = async () => undefined,
  ) {
    // One insert at a time (Delivery.record serialises them anyway): under load the next batch
    // fills while one is written, and an idle request is one statement.
    this.writer = new Batcher(
      (items) =>
        delivery.record(async (markSent, countQueuedUpTo) => {
          const { results, queuedBefore, otherBefore } = await messages.insertOutboundChecked(items, { markSent, countQueuedUpTo });
          const created = results.filter((r): r is AcceptedMessage => !(r instanceof AppError) && r.created).map((r) => outbound(r.message));
          metrics.messagesAccepted(created.length);
          return { value: results, created, check: { queuedBefore, otherBefore } };
        }),
      1000,
      1,
    );
  }

  /** POST /v1/messages: validates, persists, and queues the message for the link. */
  async send(account: Account, resource: string | null, m: SendMessage, idempotencyKey: string | null): Promise<Accepted> {
    const message = this.prepare(account, resource, m, idempotencyKey);
    return (await this.checkContext(message, m)) ?? this.answer(message, await this.writer.push(message));
  }

  /**
   * The checks that depend on state, not on the request: a block, the room, the message replied
   * to. A retry of a request accepted before answers as the first did, even when a check would
   * refuse it now (the peer was blocked or the reply's message retracted since): the platform
   * that retries must not read "refused" for a message that went out. Looked up only on a
   * refusal, so an accepted request pays nothing for it. Null when the checks pass.
   */
  private async checkContext(message: NewOutbound, m: SendMessage): Promise<Accepted | null> {
    try {
      const nick = await this.checkRoom(message);
      if (m.reply) {
        await this.resolveReply(message, m.reply.id, nick);
        this.checkSize(message);
      }
      return null;
    } catch (err) {
      const prior = err instanceof AppError ? await this.messages.byKey(message) : null;
      if (prior) return this.answer(message, prior);
      throw err;
    }
  }

  /**
   * XEP-0461: the message replied to must be one of this conversation's. The wire names it by the
   * id its sender gave it and quotes it (XEP-0428 fallback) for clients without replies. Its `to`
   * is the author's full JID: in a room, the occupant JID (room/nick), ours by `nick`, the
   * account's nick there now.
   */
  private async resolveReply(message: NewOutbound, id: string, nick: string | null): Promise<void> {
    const row = await this.messages.get(id);
    // Not to a chat state sent alone: a notification, no message (saysSomething), as a correction's target.
    if (!row || row.accountId !== message.accountId || row.peer !== message.peer || row.retractedAt || !saysSomething(row)) {
      throw new AppError("message-not-found", `reply.id: ${id} is not a message of the conversation with ${message.peer}`, { field: "body.reply.id" });
    }
    const ref = replyRef(row);
    if (ref === null) {
      const why = row.type === "groupchat" ? "a group message its room gave no stanza-id (XEP-0359), which cannot be replied to (XEP-0461)" : "came without an id its sender would know it by";
      throw new AppError("validation-failed", `reply.id: ${id}: ${why}`, { field: "body.reply.id" });
    }
    const quoted = typeof row.body === "string" ? row.body : Object.values((row.body ?? {}) as Record<string, string>)[0] ?? "";
    const group = row.type === "groupchat";
    const author = row.direction === "in" ? row.from : group && nick !== null ? `${row.peer}/${nick}` : jidToString(bare(parseJid(row.from)!));
    // The quote names who wrote it: in a room, by the nick of its occupant JID (XEP-0045 room/nick).
    const writer = parseJid(author)!;
    const name = group && writer.resource ? writer.resource : jidToString(bare(writer));
    message.ext = { ...message.ext, replyTo: { id }, reply: { id: ref, to: author, quote: replyQuote(name, quoted) } };
  }

  /**
   * Not to a JID the account blocked; a group message only to a room the account is in (XEP-0045
   * §7.4), from its occupant JID. The account's nick there for a group message, else null.
   */
  private async checkRoom(message: NewOutbound): Promise<string | null> {
    await this.notBlocked(message.accountId, message.to);
    if (message.type !== "groupchat") return null;
    const nick = await this.roomNick(message.accountId, message.peer);
    if (nick === null) throw new AppError("room-not-joined", `${message.peer} is not a room this account joined (PUT /v1/rooms/{room} first)`, { field: "body.to" });
    return nick;
  }

  /**
   * POST /v1/messages/batch: each message is checked on its own and the valid ones are written
   * together (one statement for up to 1,000), before this resolves. One result per message, in
   * order: its acceptance, or the error that refused it alone.
   */
  async sendBatch(account: Account, resource: string | null, items: { message: SendMessage; idempotencyKey: string | null }[]): Promise<(Accepted | AppError)[]> {
    const prepared = await Promise.all(
      items.map(async (it) => {
        try {
          const message = this.prepare(account, resource, it.message, it.idempotencyKey);
          return (await this.checkContext(message, it.message)) ?? message;
        } catch (err) {
          if (err instanceof AppError) return err;
          throw err;
        }
      }),
    );
    const pending = (p: (typeof prepared)[number]): p is NewOutbound => !(p instanceof AppError) && "accountId" in p;
    // Pushed in one tick: the writer takes them as one batch (in order) when it is idle.
    const written = await Promise.all(prepared.map((p) => (pending(p) ? this.writer.push(p) : p)));
    return written.map((w, i) => {
      const p = prepared[i]!;
      if (!pending(p)) return p;
      try {
        return this.answer(p, w as AcceptedMessage | AppError);
      } catch (err) {
        if (err instanceof AppError) return err;
        throw err;
      }
    });
  }

  /** Checks a message and makes its row; throws AppError for what is wrong with it. */
  private prepare(account: Account, resource: string | null, m: SendMessage, idempotencyKey: string | null): NewOutbound {
    const to = this.recipient(m.to);
    if (!to) throw new AppError("invalid-jid", `to: "${m.to}" is not a valid JID (RFC 7622)`, { field: "body.to" });
    assertAddressSpeltAlike(to, "body.to", "its receipts, errors and replies would come from there, as another conversation");
    if (m.body === undefined && m.subject === undefined && m.state === undefined && m.attachments === undefined) {
      throw new AppError("validation-failed", "a message needs at least one of body, subject, state or attachments", { field: "body.body" });
    }
    // A correction changes a message (MessageActions.correct); it is not a new one.
    if (m.replace !== undefined) throw new AppError("validation-failed", "replace: a correction is not a new message", { field: "body.replace" });
    const group = m.type === "groupchat";
    if (group && (to.resource !== undefined || to.local === undefined)) throw new AppError("invalid-jid", `to: a group message goes to a room's bare JID, not "${m.to}"`, { field: "body.to" });
    // XEP-0184 §5.3: receipts are not requested in group chat.
    if (group && m.receipt) throw new AppError("validation-failed", "receipt: not available for group messages (XEP-0184 §5.3)", { field: "body.receipt" });
    if (m.reply) assertReplyBody(m.body);
    const requestHash = idempotencyKey === null ? null : requestFingerprint(m, to);
    const jid = accountJid(account.localpart, this.domain);
    const message: NewOutbound = {
      id: randomUUID(),
      accountId: account.id,
      peer: jidToString(bare(to)),
      // A room knows the account by its occupant JID (src/services/rooms.ts).
      from: group ? occupantJid(jid) : resource ? `${jid}/${resource}` : jid,
      to: jidToString(to),
      type: m.type ?? "chat",
      body: m.body,
      subject: m.subject,
      thread: m.thread ?? null,
      lang: m.lang ?? null,
      receipt: m.receipt ?? false,
      state: m.state ?? null,
      idempotencyKey,
      requestHash,
      // Stored only when it says something (markable defaults by type, src/xmpp/render.ts).
      ext: m.attachments || m.markable !== undefined ? { ...(m.attachments ? { attachments: m.attachments } : {}), ...(m.markable !== undefined ? { markable: m.markable } : {}) } : null,
    };
    this.checkSize(message);
    // A key stored before defaults were left out of the hash may hold this request's as sent.
    const former = idempotencyKey === null ? null : formerFingerprint(m, to);
    if (former !== null) this.formerHashes.set(message, former);
    return message;
  }

  private answer(message: NewOutbound, result: AcceptedMessage | AppError): Accepted {
    if (result instanceof AppError) throw result;
    if (!result.created && result.requestHash !== message.requestHash && result.requestHash !== this.formerHashes.get(message)) {
      throw new AppError("idempotency-key-reused", "this Idempotency-Key was used within 24 h for a different request", { field: "headers.idempotency-key" });
    }
    // API.md: a replay "returns the first response", and the first response is always `queued`:
    // the 202 goes out once the row is written, before the XMPP server can have confirmed it (an
    // insert reports its rows `queued`, even a retry's after an expired key). So a replay says
    // `queued` too, whatever became of the message since: GET /v1/messages/{id} tells that.
    return { id: result.id, status: "queued", createdAt: result.createdAt, replayed: !result.created };
  }

  /** The XMPP server drops a component that sends a stanza over its limit: refuse it here. */
  private checkSize(message: NewOutbound): void {
    const limit = this.out.maxStanzaBytes;
    // A cheap bound first: only a message that could be too big is rendered to measure it.
    if (stanzaBytesBound(message) <= limit) return;
    assertFits(this.out, { kind: "message", ...message }, "body.body");
  }

  /** GET /v1/messages/{id}: another account's message is reported exactly like a missing one. */
  async get(account: Account, id: string): Promise<MessageView> {
    const row = isMessageId(id) ? await this.messages.get(id) : null;
    if (!row || row.accountId !== account.id) throw new AppError("message-not-found", `no message ${id}`);
    return messageView(row);
  }

  /**
   * GET /v1/messages?with=: the conversation with one bare JID, each page newest first. Without
   * `after` a page goes back from `before` (or from the newest) and nextCursor is the next page's
   * `before`; with `after` it is the messages right after that cursor (below `before`, if given)
   * and nextCursor the next page's `after`, so a client paging forward misses none.
   */
  async history(account: Account, withJid: string, page: { before: number | null; after: number | null; limit: number }): Promise<Page<MessageView>> {
    const peer = parseJid(withJid);
    if (!peer || peer.resource) throw new AppError("invalid-jid", `with: "${withJid}" is not a bare JID`, { field: "querystring.with" });
    const { rows, cut } = await this.messages.history(account.id, jidToString(peer), page.before, page.after, page.limit + 1);
    return (page.after === null ? pageOf : forwardPageOf)(rows, page.limit, messageView, (r) => String(r.seq), cut);
  }

  /** Resolves once every accepted message is written (for an orderly shutdown). */
  idle(): Promise<void> {
    return this.writer.idle();
  }
}
