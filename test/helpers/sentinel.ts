// Sentinels: how a test proves that something did NOT arrive without sleeping. Send the thing
// that must stay unanswered, then a sentinel that travels the same ordered path and does get an
// answer; once the sentinel's answer is in, whatever the first stanza could have caused is in
// too, so "nothing before the sentinel" means "nothing".
import { randomBytes } from "node:crypto";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";

/**
 * A message from `user` to an account that does not exist on the gateway's domain. The XMPP server
 * routes it to the gateway behind everything `user` sent before; the gateway handles inbound
 * stanzas in arrival order and bounces this one (RFC 6121 §8.5.1) only after the replies to the
 * earlier ones (and after anything it wrote to the link before) have been written; the server
 * routes the bounce back behind them. Resolves with the index of the bounce in `user.stanzas`.
 */
export async function gatewaySentinel(user: XmppUser, domain: string, timeoutMs = 5000): Promise<number> {
  const id = `sentinel-${randomBytes(6).toString("hex")}`;
  await user.send(xml("message", { to: `no-such-account-${id}@${domain}`, type: "chat", id }, xml("body", {}, "sentinel")));
  const bounce = await user.waitFor((s) => s.is("message") && s.attrs.id === id && s.attrs.type === "error", timeoutMs);
  return user.stanzas.indexOf(bounce);
}

/** Whether a stanza comes from `jid` (a bare JID) or one of its full JIDs. */
export const isFrom = (s: XmlElement, jid: string): boolean => s.attrs.from === jid || !!s.attrs.from?.startsWith(`${jid}/`);

/** The stanzas `user` received from `jid` (bare or full) with an index in [start, end). */
export const receivedFrom = (user: XmppUser, jid: string, start: number, end: number): XmlElement[] => user.stanzas.slice(start, end).filter((s) => isFrom(s, jid));
