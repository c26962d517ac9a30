// Which addresses a webhook may be delivered to (server-side request forgery protection). A
// webhook URL is chosen by an API user, and the gateway POSTs to it from inside the operator's
// network: only global unicast addresses are allowed, never loopback, private (RFC 1918),
// carrier-grade NAT, link-local (which holds the cloud metadata address 169.254.169.254),
// unique-local (fc00::/7, also AWS's fd00:ec2::254), multicast, reserved or the v6 ranges that
// embed an IPv4 address (NAT64, 6to4, Teredo), unless the operator allows them
// (WEBHOOK_ALLOW_PRIVATE). The same check runs when a webhook is created or changed and on every
// connection (DNS can change between the two). Known cloud metadata host names are refused by name
// as well, since they may resolve only from inside the cloud.
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");

/** The operator's exceptions: `all`, or addresses and CIDR ranges. */
export type AllowList = "all" | Array<[Address, number]>;

/** Parses WEBHOOK_ALLOW_PRIVATE: "true" for every address, or comma-separated addresses and CIDRs; throws on a bad entry. */
export function parseAllowList(raw: string | undefined): AllowList {
  const text = (raw ?? "").trim();
  if (/^(true|all|\*)$/i.test(text)) return "all";
  if (text === "" || /^false$/i.test(text)) return [];
  return text.split(",").map((entry) => {
    const e = entry.trim();
    // Dotted-quad IPv4 only: ipaddr.js also reads "10/8" as 0.0.0.10/8 and "1.2.3" as 1.2.0.3.
    if (ipLiteral(e.split("/")[0]!) === null) throw new Error(`"${e}" is not an IP address or CIDR range`);
    if (ipaddr.isValidCIDR(e)) {
      const [addr, bits] = ipaddr.parseCIDR(e);
      return [normal(addr), addr.kind() === "ipv6" && normal(addr).kind() === "ipv4" ? Math.max(0, bits - 96) : bits];
    }
    if (ipaddr.isValid(e) && !e.includes("/")) {
      const addr = normal(ipaddr.parse(e));
      return [addr, addr.kind() === "ipv4" ? 32 : 128];
    }
    throw new Error(`"${e}" is not an IP address or CIDR range`);
  });
}

/** IPv4-mapped IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address it carries. */
function normal(addr: Address): Address {
  return addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
}

/** A host as a URL gives it ("[::1]" for IPv6), as an IP address if it is one, else null (a name). */
export function ipLiteral(hostname: string): string | null {
  const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(bare) && (bare.includes(":") || ipaddr.IPv4.isValidFourPartDecimal(bare)) ? bare : null;
}

/** Why `ip` may not be a webhook target (its range), or null when it may. */
export function forbiddenRange(ip: string, allow: AllowList): string | null {
  if (!ipaddr.isValid(ip)) return "not an IP address";
  const addr = normal(ipaddr.parse(ip));
  if (allow === "all") return null;
  if (allow.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits))) return null;
  const range = addr.range();
  if (range !== "unicast") return range;
  // IANA allocates global unicast IPv6 from 2000::/3 only; ipaddr.js calls the rest "unicast" too,
  // among it the IETF-reserved ::/8 with the deprecated IPv4-compatible ::a.b.c.d (::7f00:1).
  return addr.kind() === "ipv6" && !addr.match(GLOBAL_UNICAST_V6) ? "reserved" : null;
}

/**
 * Cloud metadata services' host names. They resolve (to 169.254.169.254 and the like) only inside
 * the cloud, so a lookup elsewhere, or one that fails, says nothing about them: refused by name.
 */
const METADATA_HOSTS = new Set([
  "metadata", // Google Compute Engine's short name (its resolver answers it)
  "metadata.google.internal",
  "metadata.goog",
  "instance-data", // AWS EC2
  "instance-data.ec2.internal",
  "metadata.tencentyun.com", // Tencent Cloud
]);
/** AWS EC2's regional form of instance-data. */
const AWS_REGIONAL_METADATA = /^instance-data\.[a-z0-9-]+\.compute\.internal$/;

/**
 * The addresses a host name stands for whatever a lookup says: a name for loopback (RFC 6761
 * §6.3: `localhost` and every name under it; Debian's `ip6-localhost`, `ip6-loopback`). A lookup
 * may not know one of them (`foo.localhost`, `localhost.`), and an unresolved name is otherwise
 * taken for now (src/webhook/client.ts checkTarget): one of these is checked as loopback.
 */
export function reservedAddresses(hostname: string): string[] {
  const name = hostname.toLowerCase().replace(/\.+$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name === "ip6-localhost" || name === "ip6-loopback" ? ["127.0.0.1", "::1"] : [];
}

/**
 * Why a host name may not be a webhook target ("metadata": a cloud metadata service), or null.
 * Only WEBHOOK_ALLOW_PRIVATE=true opens them, as it opens the metadata addresses.
 */
export function forbiddenName(hostname: string, allow: AllowList): string | null {
  if (allow === "all") return null;
  // A fully qualified name may end with dots ("metadata.google.internal."): the same host.
  const name = hostname.toLowerCase().replace(/\.+$/, "");
  return METADATA_HOSTS.has(name) || AWS_REGIONAL_METADATA.test(name) ? "metadata" : null;
}
