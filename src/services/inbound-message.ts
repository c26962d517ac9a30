// Inbound messages for a hosted account (RFC 6121 §5, §8.5): stored and appended to the event log
// of every session (bare JID) or one session (full JID); XEP-0184 receipts mark our messages
// delivered; error bounces (RFC 6120 §8.3) mark them failed.
import { randomUUID } from "node:crypto";
import { prismaTx, type AnyTx } from "../db/client.js";
import type { Appended, NewEvent } from "../db/events.js";
import { storeInbound, type InboundRow } from "../db/inbound-writes.js";
import type { Messages } from "../db/messages.js";
import type { Sessions } from "../db/sessions.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import { isMessageId } from "../domain/message.js";
import { storedOriginId } from "../domain/message-features.js";
import { applyChange, newMessageExt } from "./inbound-features.js";

export interface MessageStores {
  messages: Messages;
  sessions: Sessions;
}

type Addressed = InboundMessage & { from: Jid; to: Jid; fromRaw: string; toRaw: string };

/**
 * What one batch's messages have to write (src/services/inbound.ts): their rows and their events,
 * written together in one statement whenever the batch flushes (before anything else appends to
 * the log, and at the end), so the log keeps arrival order.
 */
export class PendingWrites {
  private readonly rows: InboundRow[] = [];
  private readonly events: NewEvent[] = [];
  /** Whether a session is reachable, per account and resource. */
  private readonly sessions = new Map<string, Promise<boolean>>();
  /** What the flushes wrote, as stored: handed to this instance's streams once it commits. */
  readonly written: Appended[] = [];

  constructor(private readonly stores: MessageStores) {}

  add(event: NewEvent, row?: InboundRow): void {
    if (row) this.rows.push(row);
    this.events.push(event);
  }

  /** Whether a message to this resource goes to its session (Sessions.reachable), asked once per batch. */
  reachable(accountId: number, resource: string): Promise<boolean> {
    const key = `${accountId}\u0000${resource}`;
    let hit = this.sessions.get(key);
    if (!hit) this.sessions.set(key, (hit = this.stores.sessions.reachable(accountId, resource)));
    return hit;
  }

  /** Stores the rows and appends the events that reference them, in one statement (one NOTIFY per account; `origin`: see planAppend). */
  async flush(tx: AnyTx, origin: string | null = null): Promise<void> {
    if (this.rows.length || this.events.length) this.written.push(...(await storeInbound(tx, this.rows.splice(0), this.events.splice(0), origin)));
  }
}

/**
 * Stores what a message changes and adds its row and events to `pending`, which the caller writes
 * in this transaction, in order, before anything else appends (src/services/inbound.ts).
 */
export async function receiveMessage(tx: AnyTx, stores: MessageStores, m: Addressed, account: Account, pending: PendingWrites): Promise<void> {
  const peer = jidToString(bare(m.from));
  const ours = (id: string | null): id is string => !!id && isMessageId(id); // only our own message ids can be marked

  if (m.type === "error") {
    if (ours(m.id) && m.error && (await stores.messages.markFailed(prismaTx(tx), account.id, m.id, peer, m.error))) {
      pending.add({ accountId: account.id, ...event("message-status", { id: m.id, status: "failed", error: m.error }) });
    }
  } else {
    if (ours(m.receivedId) && (await stores.messages.markDelivered(prismaTx(tx), account.id, m.receivedId, peer))) {
      pending.add({ accountId: account.id, ...event("receipt", { id: m.receivedId, from: m.fromRaw, status: "delivered" }) });
    }
    if (m.features && (await applyChange(tx, m, m.features, account, peer, pending))) return;
    if (m.body !== null || m.subject !== null || m.state !== null || m.features?.attachments) await storeMessage(tx, m, account, peer, pending);
  }
}

async function storeMessage(tx: AnyTx, m: Addressed, account: Account, peer: string, pending: PendingWrites): Promise<void> {
  // §8.5.3.2.1: to a full JID with no such session (or one that is neither available nor
  // connected), a chat/normal message is handled as if to the bare JID.
  const resource = m.to.resource && (await pending.reachable(account.id, m.to.resource)) ? m.to.resource : null;
  const wantsReceipt = m.receiptRequested && !!m.id;
  const type = m.type as "chat" | "normal" | "headline" | "groupchat";
  const id = randomUUID();
  // A reply may name a message of this batch: its row is written first.
  if (m.features?.reply) await pending.flush(tx);
  const { ext, body } = await newMessageExt(tx, m.features, m.body, account, peer);
  // A chat state alone is an event but not a stored message.
  // Its origin-id too (XEP-0359): peers retract (XEP-0424) and react (XEP-0444) by it.
  const row: InboundRow | undefined =
    body !== null || m.subject !== null || ext?.attachments
      ? { id, accountId: account.id, peer, from: m.fromRaw, to: m.toRaw, type, body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receipt: wantsReceipt, stanzaId: m.id, originId: storedOriginId(m.id, m.originId), ext }
      : undefined;
  const features = { ...(ext?.replyTo ? { replyTo: ext.replyTo } : {}), ...(ext?.attachments ? { attachments: ext.attachments } : {}) };
  const data = { id, from: m.fromRaw, to: m.toRaw, type, body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receiptRequested: wantsReceipt, stanzaId: m.id, createdAt: new Date().toISOString(), ...features };
  pending.add({ accountId: account.id, ...event("message", data), resource, receipt: wantsReceipt ? { to: m.fromRaw, id: m.id! } : null }, row);
}
