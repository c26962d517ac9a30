// Stanzas from the XMPP network to hosted accounts: routing (RFC 6121 §8.5), inbound messages,
// XEP-0184 receipts and error bounces (RFC 6120 §8.3) into storage and the event log.
// Stanzas are processed in arrival order, in batches that share one transaction.
import { randomUUID } from "node:crypto";
import type { Element } from "@xmpp/xml";
import type { Database } from "../db/client.js";
import type { Accounts } from "../db/accounts.js";
import { Batcher } from "../db/batch.js";
import { appendEvents, type NewEvent } from "../db/events.js";
import type { Messages } from "../db/messages.js";
import type { Sessions } from "../db/sessions.js";
import type { Prisma } from "../db/generated/client.js";
import { bare, jidToString, parseJid, type Jid } from "../domain/jid.js";
import { CHAT_STATES } from "../domain/message.js";
import { inboundPresence } from "./presence-in.js";
import { readLangText } from "./text-content.js";
import type { XmppLink } from "./link.js";
import { stanzaError } from "./errors.js";
import { errorReply, NS } from "./stanzas.js";

type Tx = Prisma.TransactionClient;

export interface InboundDeps {
  db: Database;
  domain: string;
  accounts: Accounts;
  messages: Messages;
  sessions: Sessions;
  link: XmppLink;
  log: { warn(o: object, m: string): void; debug(o: object, m: string): void };
}

function stanzaErrorOf(stanza: Element): { type: string; condition: string; text?: string } {
  const err = stanza.getChild("error");
  const condition = err?.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas && c.name !== "text")?.name ?? "undefined-condition";
  const text = err?.getChildText("text", NS.stanzas) ?? undefined;
  return { type: err?.attrs.type ?? "cancel", condition, ...(text ? { text } : {}) };
}

const MESSAGE_TYPES = new Set(["chat", "normal", "headline", "groupchat", "error"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Replies come from the address the stanza was sent to if it is a valid one of ours, else from our domain. */
function replyFrom(to: Jid | null, domain: string): string {
  return to && to.domain === domain ? jidToString(to) : domain;
}

export class Inbound {
  private readonly batcher: Batcher<Element, void>;

  constructor(private readonly deps: InboundDeps) {
    // One at a time, so events are appended in the order stanzas arrived.
    this.batcher = new Batcher<Element, void>((batch) => this.process(batch), 200, 1);
    deps.link.on("stanza", (el) => {
      if (el.name === "message" || el.name === "presence") void this.batcher.push(el).catch((err: unknown) => deps.log.warn({ err: String(err) }, "inbound stanza failed"));
    });
  }

  /** Resolves once every stanza received so far is processed (for an orderly shutdown). */
  idle(): Promise<void> {
    return this.batcher.idle();
  }

  private async process(batch: Element[]): Promise<void[]> {
    const replies: Element[] = [];
    try {
      await this.deps.db.prisma.$transaction(async (tx) => {
        replies.length = 0;
        for (const stanza of batch) await this.route(tx, stanza, replies);
      });
    } catch {
      // One bad stanza must not lose the others: retry each in a transaction of its own.
      replies.length = 0;
      for (const stanza of batch) {
        const mine: Element[] = [];
        await this.deps.db.prisma.$transaction((tx) => this.route(tx, stanza, mine)).then(
          () => replies.push(...mine),
          (e: unknown) => {
            this.deps.log.warn({ err: String(e), stanza: stanza.toString().slice(0, 500) }, "inbound stanza could not be stored; bounced to its sender");
            const bounce = this.bounce(stanza);
            if (bounce) replies.push(bounce);
          },
        );
      }
    }
    for (const r of replies) this.deps.link.send(r);
    return batch.map(() => undefined);
  }

  /**
   * What could not be stored is not silently lost: the sender gets a temporary error (RFC 6120
   * §8.3.2, type "wait") and may retry. Errors and unstorable presence (plain availability) get none.
   */
  private bounce(stanza: Element): Element | null {
    const type = stanza.attrs.type;
    if (type === "error" || !stanza.attrs.from) return null;
    if (stanza.name === "presence" && !["subscribe", "subscribed", "unsubscribe", "unsubscribed"].includes(type ?? "")) return null;
    const [errType, condition] = stanzaError("database-unavailable");
    return errorReply(stanza, replyFrom(parseJid(stanza.attrs.to ?? ""), this.deps.domain), errType, condition, "temporarily unable to store this stanza; retry later");
  }

  private route(tx: Tx, stanza: Element, replies: Element[]): Promise<void> {
    return stanza.name === "presence" ? this.presence(tx, stanza, replies) : this.message(tx, stanza, replies);
  }

  /** RFC 6121 §8.5.1: presence to an account that does not exist is silently ignored. */
  private async presence(tx: Tx, stanza: Element, replies: Element[]): Promise<void> {
    const to = parseJid(stanza.attrs.to ?? "");
    const from = parseJid(stanza.attrs.from ?? "");
    if (!to?.local || !from || to.domain !== this.deps.domain) return;
    const account = await this.deps.accounts.find(to.local);
    if (!account) return;
    await inboundPresence(tx, stanza, { id: account.id, jid: `${account.localpart}@${this.deps.domain}` }, from, replies);
  }

  /** RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID) for message stanzas. */
  private async message(tx: Tx, stanza: Element, replies: Element[]): Promise<void> {
    const { domain, accounts, messages, sessions } = this.deps;
    // RFC 6121 §5.2.2: a message of unknown type is handled as "normal".
    const type = MESSAGE_TYPES.has(stanza.attrs.type ?? "normal") ? (stanza.attrs.type ?? "normal") : "normal";
    const to = parseJid(stanza.attrs.to ?? "");
    const from = parseJid(stanza.attrs.from ?? "");
    const bounce = (condition: string) => {
      // Never answer an error with an error (RFC 6120 §8.3.1).
      if (type !== "error" && from) replies.push(errorReply(stanza, replyFrom(to, domain), "cancel", condition));
    };
    if (!to || !from || to.domain !== domain) return bounce("jid-malformed");
    if (!to.local) return bounce("service-unavailable");
    const account = await accounts.find(to.local);
    if (!account) return bounce("service-unavailable"); // §8.5.1: no such account
    const peer = jidToString(bare(from));
    const events: NewEvent[] = [];

    if (type === "error") {
      const id = stanza.attrs.id;
      const error = stanzaErrorOf(stanza);
      // Only our own message ids (UUIDs) can be marked; anything else is not ours to change.
      if (id && UUID.test(id) && (await messages.markFailed(tx, account.id, id, peer, error))) {
        events.push({ accountId: account.id, type: "message-status", data: { id, status: "failed", error } });
      }
      if (events.length) await appendEvents(tx, events);
      return;
    }
    if (type === "groupchat") return bounce("service-unavailable"); // §8.5.2.1.1

    const received = stanza.getChild("received", NS.receipts);
    if (received?.attrs.id && UUID.test(received.attrs.id) && (await messages.markDelivered(tx, account.id, received.attrs.id, peer))) {
      events.push({ accountId: account.id, type: "receipt", data: { id: received.attrs.id, from: stanza.attrs.from, status: "delivered" } });
    }

    const body = readLangText(stanza, "body");
    const subject = readLangText(stanza, "subject");
    const state = stanza.getChildElements().find((c) => c.attrs.xmlns === NS.chatStates && (CHAT_STATES as readonly string[]).includes(c.name))?.name ?? null;
    if (body !== null || subject !== null || state !== null) {
      // §8.5.3.2.1: to a full JID with no such session, a chat/normal message is handled as if to the bare JID.
      const resource = to.resource && (await sessions.exists(account.id, to.resource)) ? to.resource : null;
      const wantsReceipt = !!stanza.getChild("request", NS.receipts) && !!stanza.attrs.id;
      const id = randomUUID();
      const data = {
        id,
        from: stanza.attrs.from,
        to: stanza.attrs.to,
        type,
        body,
        subject,
        thread: stanza.getChildText("thread"),
        lang: stanza.attrs["xml:lang"] ?? null,
        state,
        receiptRequested: wantsReceipt,
        stanzaId: stanza.attrs.id ?? null,
        createdAt: new Date().toISOString(),
      };
      if (body !== null || subject !== null) {
        await messages.insertInbound(tx, {
          id,
          accountId: account.id,
          peer,
          from: data.from!,
          to: data.to!,
          type,
          body,
          subject,
          thread: data.thread,
          lang: data.lang,
          state,
          receipt: wantsReceipt,
          stanzaId: data.stanzaId,
        });
      }
      events.push({
        accountId: account.id,
        type: "message",
        data,
        resource,
        receipt: wantsReceipt ? { to: stanza.attrs.from!, id: stanza.attrs.id! } : null,
      });
    }
    if (events.length) await appendEvents(tx, events);
  }
}
