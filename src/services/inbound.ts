// Stanzas from the XMPP network to hosted accounts (RFC 6121 §8.5): routed to the message and
// presence use cases, processed in arrival order, in batches that share one transaction. Replies
// (probe answers, auto-answered subscriptions, error bounces) go to the outbound port after commit.
import type { Accounts } from "../db/accounts.js";
import type { Database, Tx } from "../db/client.js";
import { appendEvents, type NewEvent } from "../db/events.js";
import { accountJid } from "../domain/account.js";
import type { ErrorCode } from "../domain/errors.js";
import { SUBSCRIPTION_TYPES, type InboundStanza } from "../domain/inbound.js";
import { jidToString, type Jid } from "../domain/jid.js";
import type { Stanza } from "../domain/stanza.js";
import { Batcher } from "./batcher.js";
import { receiveMessage, type MessageStores } from "./inbound-message.js";
import { receivePresence } from "./inbound-presence.js";
import type { Delivery } from "./delivery.js";
import type { OutboundPort, ServiceLog } from "./ports.js";

/** Replies come from the address the stanza was sent to if it is a valid one of ours, else from our domain. */
function replyFrom(to: Jid | null, domain: string): string {
  return to && to.domain === domain ? jidToString(to) : domain;
}

export class Inbound {
  private readonly batcher: Batcher<InboundStanza, void>;

  constructor(
    private readonly db: Database,
    private readonly accounts: Accounts,
    private readonly stores: MessageStores,
    private readonly delivery: Delivery,
    /** Only for bounces when the database is down and nothing can be recorded. */
    private readonly out: OutboundPort,
    private readonly domain: string,
    private readonly log: ServiceLog,
  ) {
    // One batch at a time, so events are appended in the order stanzas arrived; small enough that
    // an account's row lock is not held for long while HTTP requests for it wait.
    this.batcher = new Batcher<InboundStanza, void>((batch) => this.process(batch), 50, 1);
  }

  /** Takes one parsed stanza; processing is asynchronous and in order. */
  receive(s: InboundStanza): void {
    void this.batcher.push(s).catch((err: unknown) => this.log.warn({ err: String(err) }, "inbound stanza failed"));
  }

  /** Resolves once every stanza received so far is processed (for an orderly shutdown). */
  idle(): Promise<void> {
    return this.batcher.idle();
  }

  private async process(batch: InboundStanza[]): Promise<void[]> {
    // Replies (probe answers, auto-answers, error bounces) are recorded with what caused them.
    // Messages' events are appended together (one NOTIFY per account and batch instead of one
    // per message), still in arrival order: before a presence stanza, which appends its own.
    const handle = (stanzas: InboundStanza[]) =>
      this.delivery.transaction(async (tx, send) => {
        const replies: Stanza[] = [];
        const events: NewEvent[] = [];
        for (const s of stanzas) await this.route(tx, s, replies, events);
        if (events.length) await appendEvents(tx, events);
        await send(null, replies);
      });
    try {
      await handle(batch);
    } catch {
      // One bad stanza must not lose the others: retry each in a transaction of its own.
      const bounces: Stanza[] = [];
      for (const s of batch) {
        await handle([s]).catch((e: unknown) => {
          this.log.warn({ err: String(e), from: s.fromRaw, kind: s.kind }, "inbound stanza could not be stored; bounced to its sender");
          const bounce = this.storeFailure(s);
          if (bounce) bounces.push(bounce);
        });
      }
      // The one exception to "recorded first": the database is what failed, and the error asks the sender to retry.
      if (bounces.length) this.out.write(bounces);
    }
    return batch.map(() => undefined);
  }

  private error(s: InboundStanza, code: ErrorCode, text?: string): Stanza | null {
    // Never answer an error with an error (RFC 6120 §8.3.1), nor a stanza without a sender.
    if (s.type === "error" || !s.from || !s.fromRaw) return null;
    return { kind: "error", from: replyFrom(s.to, this.domain), replyTo: { name: s.kind, from: s.fromRaw, id: s.id }, code, ...(text ? { text } : {}) };
  }

  /**
   * What could not be stored is not silently lost: the sender gets a temporary error (RFC 6120
   * §8.3.2, type "wait") and may retry. Plain presence gets none (it is not stored as such).
   */
  private storeFailure(s: InboundStanza): Stanza | null {
    if (s.kind === "presence" && !SUBSCRIPTION_TYPES.has(s.type)) return null;
    return this.error(s, "database-unavailable", "temporarily unable to store this stanza; retry later");
  }

  /** `events`: messages' events not yet appended; whatever appends on its own first appends them. */
  private async route(tx: Tx, s: InboundStanza, replies: Stanza[], events: NewEvent[]): Promise<void> {
    const { from, to, fromRaw, toRaw } = s;
    if (s.kind === "presence") {
      // §8.5.1: presence to an account that does not exist, or not to an account, is silently ignored.
      if (!to?.local || !from || !fromRaw || to.domain !== this.domain) return;
      const account = await this.accounts.find(to.local);
      if (!account) return;
      if (events.length) await appendEvents(tx, events.splice(0));
      await receivePresence(tx, { ...s, from }, { id: account.id, jid: accountJid(account.localpart, this.domain) }, replies);
      return;
    }
    const bounce = (code: ErrorCode) => {
      const e = this.error(s, code);
      if (e) replies.push(e);
    };
    if (!to || !from || !fromRaw || !toRaw || to.domain !== this.domain) return bounce("invalid-jid");
    if (!to.local) return bounce("account-not-found");
    const account = await this.accounts.find(to.local);
    if (!account) return bounce("account-not-found"); // §8.5.1: no such account
    if (s.type === "groupchat") return bounce("account-not-found"); // §8.5.2.1.1: we host no rooms
    await receiveMessage(tx, this.stores, { ...s, from, to, fromRaw, toRaw }, account, events);
  }
}
