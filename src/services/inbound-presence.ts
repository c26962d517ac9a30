// Inbound presence for a hosted account: subscription stanzas through the RFC 6121 state
// machine (Appendix A.3), probes answered from stored session presence (with none available, the
// account's last unavailable presence) for subscribers and with "unsubscribed" for anyone else
// (§4.3.2), contacts' presence recorded only from contacts we are subscribed to (§4.4.3) and sent
// to the bare JID, and directed presence (from anyone else, or to
// one session's full JID) surfaced to available sessions but never stored (§4.6). Blocked senders
// and room presence never get here (src/services/inbound.ts; what a block a cached list missed let
// through is rolled back before commit).
import { lockForProbe, type LastUnavailable } from "../db/account-presence.js";
import type { Tx } from "../db/client.js";
import { appendEvents } from "../db/events.js";
import { availableSessions, getItem } from "../db/roster.js";
import { clearContactPresence, setContactPresence } from "../db/contact-presence.js";
import type { AccountRef } from "../domain/account.js";
import { event } from "../domain/events.js";
import { SUBSCRIPTION_TYPES, type InboundPresence } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import { presence, subscription, type Stanza } from "../domain/stanza.js";
import type { SubscriptionStanza } from "../domain/subscription.js";
import { contactsGone } from "./presence.js";
import { applySubscription } from "./roster.js";

/**
 * §4.3.2: with no available resource, unavailable from the bare JID, with the last unavailable
 * presence the account had (its status) and when it went unavailable (XEP-0203: a delay from the
 * server that kept it, our domain). Bare when it never was available.
 */
function lastUnavailable(jid: string, to: string, last: LastUnavailable | null): Stanza {
  return presence(jid, to, "unavailable", { status: last?.status ?? null }, last ? { from: jid.slice(jid.indexOf("@") + 1), stamp: last.at.toISOString() } : undefined);
}

/**
 * `absent`: called before a decision that found neither a roster item of the sender nor a session
 * under the account's id, which is what a cached id whose account is gone finds: it throws when so
 * (src/services/inbound-stale.ts), and the caller decides again. A row found proves the id.
 */
export async function receivePresence(tx: Tx, p: InboundPresence & { from: Jid }, account: AccountRef, replies: Stanza[], absent: () => Promise<void> = async () => undefined): Promise<void> {
  const contact = jidToString(bare(p.from));
  const fromRaw = p.fromRaw!;

  if (SUBSCRIPTION_TYPES.has(p.type)) {
    const r = await applySubscription(tx, account, contact, { kind: "inbound", type: p.type as SubscriptionStanza }, { status: p.statusText });
    replies.push(...r.stanzas);
    // The sender hears why, and may ask again once the account has answered some (type wait).
    if (r.refused) replies.push({ kind: "error", from: p.toRaw ?? account.jid, replyTo: { name: "presence", from: fromRaw, id: p.id }, code: "too-many-contacts", text: r.refused });
    return;
  }

  if (p.type === "probe") {
    // The answer is queued only at the batch's commit: the subscription and the sessions are read
    // under a lock that a session's end, a presence change or a subscription change (each under
    // lockAccount) waits for, so what it sends is queued after this answer, never before it
    // (src/db/account-presence.ts): a revocation's unsubscribed is not followed by the presence
    // its item (read before the lock) still allowed. One statement more per probe.
    const last = await lockForProbe(tx, account.id);
    if (last === undefined) return absent(); // a cached id that is gone; or deleted meanwhile: its goodbye told the contact
    // §4.3.2: only a contact with a subscription to us (From, From + Pending Out, Both) learns our
    // presence; anyone else SHOULD get "unsubscribed" on the account's behalf. It is an answer,
    // not a state change: the roster, a pre-approval or a pending request stay as they are. (The
    // lock's row proved the account id: no absent() for an item not found.)
    const item = await getItem(tx, account.id, contact);
    if (!(item?.subscription === "from" || item?.subscription === "both")) {
      replies.push(subscription(account.jid, contact, "unsubscribed"));
      return;
    }
    const sessions = await availableSessions(tx, account.id);
    if (sessions.length === 0) replies.push(lastUnavailable(account.jid, fromRaw, last));
    for (const s of sessions) replies.push(presence(`${account.jid}/${s.resource}`, fromRaw, null, s));
    return;
  }

  if (p.type !== "available" && p.type !== "unavailable") return; // error and unknown types: nothing to record
  const item = await getItem(tx, account.id, contact);
  const subscribedTo = item?.subscription === "to" || item?.subscription === "both";
  const { type, show, status, priority } = p;
  // Presence to a full JID (§8.5.3): to that session alone if it is available (§8.5.3.1), else
  // silently ignored (§8.5.3.2.2), whoever sent it.
  const target = p.to?.resource;
  if (target) {
    const sessions = await availableSessions(tx, account.id);
    if (!sessions.some((s) => s.resource === target)) {
      if (sessions.length === 0 && !item) await absent();
      return;
    }
  }
  const directed = target ? { to: p.toRaw! } : {};
  const surface = () =>
    appendEvents(tx, [
      { accountId: account.id, resource: target ?? null, ...event("presence", { jid: contact, from: fromRaw, resource: p.from.resource ?? null, type, show, status, priority, ...directed }) },
    ]);
  if (!subscribedTo) {
    // §4.4.3 / §11: we hold presence only of contacts we subscribed to, so nothing is stored. But
    // presence directed at the account by anyone else is delivered to its available sessions
    // (§4.6.4, §8.5.2.1.2) and never kept for later (§8.5.2.2.2). Room occupants' presence
    // arrives at the room resource and is routed before this; a muc#user payload anywhere else
    // is no occupancy of ours.
    if (!p.muc && (target || (await availableSessions(tx, account.id)).length > 0)) await surface();
    else if (!item) await absent(); // nothing found for the account (no item, no session)
    return;
  }
  if (target) {
    // Presence to one session's full JID is directed presence (§4.6), for that session alone:
    // what GET /v1/presence lists is the contact's broadcast presence, which comes to the bare JID
    // (§4.2.2, §4.4.2, and so do probe answers, §4.3.2), so directed presence neither replaces nor
    // clears any of it.
    await surface();
    return;
  }
  if (p.type === "unavailable" && !p.from.resource) {
    // §4.3.2: unavailable from the bare JID (how a server answers a probe for a contact with no
    // available resource) means none is available: every stored resource ends, each with its event.
    const gone = await clearContactPresence(tx, account.id, contact);
    if (gone.length > 0) {
      await appendEvents(tx, contactsGone(account.id, gone, { status }));
      return;
    }
    // Nothing stored: the account hears the bare unavailable itself, as below.
  } else {
    const evicted = await setContactPresence(tx, account.id, contact, p.from.resource ?? "", p.type === "available" ? { show, status, priority } : null);
    // The resources that made room for this one (MAX_CONTACT_RESOURCES) end with their events too.
    if (evicted.length > 0) await appendEvents(tx, contactsGone(account.id, evicted));
  }
  await surface();
}
