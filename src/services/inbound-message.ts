// Inbound messages for a hosted account (RFC 6121 §5, §8.5): stored and appended to the event log
// of every session (bare JID) or one session (full JID); XEP-0184 receipts mark our messages
// delivered; error bounces (RFC 6120 §8.3) mark them failed.
import { randomUUID } from "node:crypto";
import type { Tx } from "../db/client.js";
import type { NewEvent } from "../db/events.js";
import type { Messages } from "../db/messages.js";
import type { Sessions } from "../db/sessions.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface MessageStores {
  messages: Messages;
  sessions: Sessions;
}

type Addressed = InboundMessage & { from: Jid; to: Jid; fromRaw: string; toRaw: string };

/**
 * Stores what a message changes and adds its events to `events`, which the caller appends to the
 * log in this transaction, in order, before anything else appends (src/services/inbound.ts).
 */
export async function receiveMessage(tx: Tx, stores: MessageStores, m: Addressed, account: Account, events: NewEvent[]): Promise<void> {
  const peer = jidToString(bare(m.from));
  const ours = (id: string | null): id is string => !!id && UUID.test(id); // only our own message ids can be marked

  if (m.type === "error") {
    if (ours(m.id) && m.error && (await stores.messages.markFailed(tx, account.id, m.id, peer, m.error))) {
      events.push({ accountId: account.id, ...event("message-status", { id: m.id, status: "failed", error: m.error }) });
    }
  } else {
    if (ours(m.receivedId) && (await stores.messages.markDelivered(tx, account.id, m.receivedId, peer))) {
      events.push({ accountId: account.id, ...event("receipt", { id: m.receivedId, from: m.fromRaw, status: "delivered" }) });
    }
    if (m.body !== null || m.subject !== null || m.state !== null) events.push(await storeMessage(tx, stores, m, account, peer));
  }
}

async function storeMessage(tx: Tx, stores: MessageStores, m: Addressed, account: Account, peer: string): Promise<NewEvent> {
  // §8.5.3.2.1: to a full JID with no such session, a chat/normal message is handled as if to the bare JID.
  const resource = m.to.resource && (await stores.sessions.exists(account.id, m.to.resource)) ? m.to.resource : null;
  const wantsReceipt = m.receiptRequested && !!m.id;
  const type = m.type as "chat" | "normal" | "headline" | "groupchat";
  const id = randomUUID();
  if (m.body !== null || m.subject !== null) {
    await stores.messages.insertInbound(tx, {
      id,
      accountId: account.id,
      peer,
      from: m.fromRaw,
      to: m.toRaw,
      type,
      body: m.body,
      subject: m.subject,
      thread: m.thread,
      lang: m.lang,
      state: m.state,
      receipt: wantsReceipt,
      stanzaId: m.id,
    });
  }
  const data = { id, from: m.fromRaw, to: m.toRaw, type, body: m.body, subject: m.subject, thread: m.thread, lang: m.lang, state: m.state, receiptRequested: wantsReceipt, stanzaId: m.id, createdAt: new Date().toISOString() };
  return { accountId: account.id, ...event("message", data), resource, receipt: wantsReceipt ? { to: m.fromRaw, id: m.id! } : null };
}
