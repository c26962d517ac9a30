// JIDs that repeat (the addresses of stanzas from the XMPP network, the recipients integrations
// post to) parsed once: preparing a JID (RFC 7622: PRECIS, IDNA) costs more than the rest of
// reading a stanza (12% of the gateway's CPU at inbound throughput, bench/inbound.ts). Parsed JIDs
// are immutable, so one object serves every caller.
import { LRUCache } from "lru-cache";
import { parseJid, type Jid } from "../domain/jid.js";

/** parseJid that remembers the last `max` inputs (null: invalid, remembered too). */
export function cachedJidParser(max = 10_000): (raw: string) => Jid | null {
  const parsed = new LRUCache<string, Jid | false>({ max });
  return (raw) => {
    let j = parsed.get(raw);
    if (j === undefined) parsed.set(raw, (j = parseJid(raw) ?? false));
    return j || null;
  };
}
