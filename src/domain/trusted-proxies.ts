// TRUST_PROXY: which peers are proxies whose X-Forwarded-For names the client. Behind HAProxy or
// nginx every request comes from the proxy's address, so without this the per-IP rate limit
// (src/http/limits.ts) counts all clients as one. Trusting a peer that is not a proxy would let any
// client choose its own address, so nothing is trusted unless configured. The value is Fastify's
// trustProxy (proxy-addr): true (every hop), or addresses, CIDR ranges and proxy-addr's names for
// ranges (loopback, linklocal, uniquelocal).
import { parseAllowList } from "./webhook-target.js";

export type TrustProxy = boolean | string[];

const RANGE_NAMES = /^(loopback|linklocal|uniquelocal)$/;

/** Parses TRUST_PROXY; throws an Error naming what is wrong. */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  const text = (raw ?? "").trim();
  if (text === "" || /^(false|no|off)$/i.test(text)) return false;
  if (/^(true|yes|on)$/i.test(text)) return true;
  return text.split(",").map((entry) => {
    const e = entry.trim();
    if (RANGE_NAMES.test(e)) return e;
    // One address or range, checked as WEBHOOK_ALLOW_PRIVATE's are (that throws on anything else);
    // its words for all or none, and an empty entry, are neither here.
    if (/^(true|all|\*|false)?$/i.test(e)) throw new Error(`"${e}" is not an IP address or CIDR range`);
    parseAllowList(e);
    return e;
  });
}
