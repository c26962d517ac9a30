// The component's iq duties: service discovery (XEP-0030) for the domain and for each hosted
// account, ping (XEP-0199). Every other iq get/set gets service-unavailable from @xmpp/iq's
// callee (RFC 6120 §8.4), as do queries to accounts that do not exist (RFC 6121 §8.5.1). A
// remote entity asking for an account's blocklist (XEP-0191) is one of those: the list is the
// account's own, read over HTTP only.
import xml, { type Element } from "@xmpp/xml";
import { isBlocked, NO_BLOCKS, type BlockLookup } from "../domain/blocking.js";
import { parseJid } from "../domain/jid.js";
import type { Accounts } from "../services/accounts.js";
import { errorElement } from "./errors.js";
import type { XmppLink } from "./link.js";
import { NS } from "./ns.js";

const DOMAIN_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping];
const ACCOUNT_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping, NS.receipts, NS.chatStates];

type Target = "domain" | "account" | null;

export function registerIqHandlers(link: XmppLink, domain: string, accounts: Pick<Accounts, "find">, blocks: BlockLookup = NO_BLOCKS): void {
  /**
   * What an iq is addressed to: the domain, an existing account's bare JID, or neither. An account
   * that blocked the sender is no one to it (XEP-0191 §3.3: get and set are service-unavailable).
   */
  async function target(stanza: Element): Promise<Target> {
    const to = parseJid(stanza.attrs.to ?? "");
    if (!to || to.domain !== domain || to.resource) return null;
    if (!to.local) return "domain";
    const account = await accounts.find(to.local);
    if (!account) return null;
    const from = parseJid(stanza.attrs.from ?? "");
    return from && isBlocked(await blocks.of(account.id), from) ? null : "account";
  }

  const { iqCallee } = link.xmpp;
  // A node we do not publish (XEP-0030 §3.1): item-not-found.
  const unknownNode = () => errorElement("not-found");
  const noSuchEntity = () => errorElement("account-not-found");

  iqCallee.get(NS.discoInfo, "query", async ({ stanza, element }) => {
    const t = await target(stanza);
    if (!t) return noSuchEntity();
    if (element.attrs.node) return unknownNode();
    const identity = t === "domain" ? { category: "server", type: "im", name: "Balcony" } : { category: "account", type: "registered" };
    const features = t === "domain" ? DOMAIN_FEATURES : ACCOUNT_FEATURES;
    return xml("query", { xmlns: NS.discoInfo }, xml("identity", identity), ...features.map((v) => xml("feature", { var: v })));
  });

  // Balcony publishes no items: accounts are not enumerable over XMPP.
  iqCallee.get(NS.discoItems, "query", async ({ stanza, element }) => {
    if (!(await target(stanza))) return noSuchEntity();
    if (element.attrs.node) return unknownNode();
    return xml("query", { xmlns: NS.discoItems });
  });

  iqCallee.get(NS.ping, "ping", async ({ stanza }) => ((await target(stanza)) ? true : noSuchEntity()));
}
