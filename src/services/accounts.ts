// Account deletion (API.md, Accounts): before the data goes, everyone who had the account's
// presence sees it go unavailable, and every contact gets the unsubscribe/unsubscribed that
// removing its roster item would send (RFC 6121 §2.5.2).
import type { Element } from "@xmpp/xml";
import type { Accounts } from "../db/accounts.js";
import type { Database } from "../db/client.js";
import { availableSessions, lockAccount, presenceSubscribers } from "../db/roster.js";
import { AppError } from "../domain/errors.js";
import { transition } from "../domain/subscription.js";
import type { XmppLink } from "../xmpp/link.js";
import { presenceStanza, subscriptionStanza } from "../xmpp/stanzas.js";

export async function deleteAccount(db: Database, link: XmppLink, accounts: Accounts, domain: string, localpart: string): Promise<boolean> {
  const account = await accounts.find(localpart);
  if (!account) return false;
  if (!link.online) throw new AppError("xmpp-unavailable", "the XMPP link is down: the account's contacts cannot be told; retry shortly");
  const jid = `${localpart}@${domain}`;
  const stanzas = await db.prisma.$transaction(async (tx) => {
    await lockAccount(tx, account.id);
    const out: Element[] = [];
    const sessions = await availableSessions(tx, account.id);
    for (const c of await presenceSubscribers(tx, account.id)) for (const s of sessions) out.push(presenceStanza(`${jid}/${s.resource}`, c, "unavailable"));
    const items = await tx.rosterItem.findMany({ where: { accountId: account.id } });
    for (const item of items) {
      // A stranger's pending request is not a roster item, but it still deserves its answer.
      const state = { subscription: item.subscription as "none", askOut: item.askOut, pendingIn: item.pendingIn, approved: item.approved, inRoster: true };
      for (const e of transition(state, { kind: "remove" }).effects) if (e.kind === "send") out.push(subscriptionStanza(jid, item.jid, e.type));
    }
    await tx.account.delete({ where: { id: account.id } });
    return out;
  });
  accounts.forget(localpart);
  link.write(stanzas.map((s) => s.toString()));
  return true;
}
