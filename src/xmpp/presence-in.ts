// Inbound presence for hosted accounts: subscription stanzas through the RFC 6121 state
// machine (Appendix A.3), probes answered from stored session presence only for subscribers
// (§4.3.2), and contacts' presence recorded and surfaced only from contacts we are subscribed to
// (§4.4.3).
import type { Element } from "@xmpp/xml";
import type { Prisma } from "../db/generated/client.js";
import { appendEvents } from "../db/events.js";
import { availableSessions, getItem, setContactPresence } from "../db/roster.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import type { SubscriptionStanza } from "../domain/subscription.js";
import { applySubscription, type AccountRef } from "../services/roster.js";
import { readLangText } from "./text-content.js";
import { presenceStanza } from "./stanzas.js";

type Tx = Prisma.TransactionClient;

const SUBSCRIPTION_TYPES = new Set(["subscribe", "subscribed", "unsubscribe", "unsubscribed"]);
const SHOWS = new Set(["away", "chat", "dnd", "xa"]);

export async function inboundPresence(tx: Tx, stanza: Element, account: AccountRef, from: Jid, replies: Element[]): Promise<void> {
  const type = stanza.attrs.type ?? "available";
  const contact = jidToString(bare(from));

  if (SUBSCRIPTION_TYPES.has(type)) {
    const status = stanza.getChildText("status");
    const r = await applySubscription(tx, account, contact, { kind: "inbound", type: type as SubscriptionStanza }, { status });
    replies.push(...r.stanzas);
    return;
  }

  const item = await getItem(tx, account.id, contact);
  const subscribedTo = item?.subscription === "to" || item?.subscription === "both";
  const hasFrom = item?.subscription === "from" || item?.subscription === "both";

  if (type === "probe") {
    // §4.3.2: only a contact with a subscription to us learns our presence; others get no answer.
    if (!hasFrom) return;
    const sessions = await availableSessions(tx, account.id);
    if (sessions.length === 0) replies.push(presenceStanza(account.jid, stanza.attrs.from!, "unavailable"));
    for (const s of sessions) replies.push(presenceStanza(`${account.jid}/${s.resource}`, stanza.attrs.from!, null, s));
    return;
  }

  if (type !== "available" && type !== "unavailable") return; // error and unknown types: nothing to record
  if (!subscribedTo) return; // §4.4.3 / §11: we hold presence only of contacts we subscribed to
  const resource = from.resource ?? "";
  const showText = stanza.getChildText("show");
  const show = showText && SHOWS.has(showText) ? showText : null;
  const status = readLangText(stanza, "status");
  const prio = Number.parseInt(stanza.getChildText("priority") ?? "0", 10);
  const priority = Number.isFinite(prio) ? Math.max(-128, Math.min(127, prio)) : 0;
  await setContactPresence(tx, account.id, contact, resource, type === "available" ? { show, status, priority } : null);
  await appendEvents(tx, [
    {
      accountId: account.id,
      type: "presence",
      data: { jid: contact, from: stanza.attrs.from, resource: from.resource ?? null, type, show, status, priority, ...(stanza.attrs.to?.includes("/") ? { to: stanza.attrs.to } : {}) },
    },
  ]);
}
