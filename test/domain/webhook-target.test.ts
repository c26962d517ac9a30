// Which addresses a webhook may be delivered to (src/domain/webhook-target.ts), without a server:
// the range forbiddenRange names for loopback, private, link-local (cloud metadata), unique-local,
// carrier-grade NAT, special and v4-embedding v6 addresses, and null for global unicast ones; how
// WEBHOOK_ALLOW_PRIVATE (parseAllowList) opens exactly the listed addresses and ranges; and which
// URL hosts are IP literals (ipLiteral); which host names are cloud metadata services refused by
// name (forbiddenName). Every address here is only parsed, never contacted.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { forbiddenName, forbiddenRange, ipLiteral, parseAllowList, reservedAddresses, type AllowList } from "../../src/domain/webhook-target.js";

/** forbiddenRange with nothing allowed. */
const strict = (ip: string) => forbiddenRange(ip, []);

describe("forbiddenRange without an allow list", () => {
  const cases: [string, string | null][] = [
    ["127.0.0.1", "loopback"],
    ["127.0.0.2", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.254", "private"],
    ["192.168.0.1", "private"],
    ["169.254.169.254", "linkLocal"], // the cloud metadata address (AWS, GCP, Azure)
    ["fe80::1", "linkLocal"],
    ["fe80::1%eth0", "linkLocal"], // a zone index does not hide the range
    ["fd00:ec2::254", "uniqueLocal"], // AWS's IPv6 metadata address
    ["fc00::1", "uniqueLocal"],
    ["100.64.0.1", "carrierGradeNat"],
    ["100.100.100.200", "carrierGradeNat"], // Alibaba Cloud's metadata address
    ["0.0.0.0", "unspecified"], // connecting to it reaches the local host
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    // IPv4-mapped IPv6 is judged as the IPv4 address it carries.
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "linkLocal"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:8.8.8.8", null],
    // Global unicast: allowed.
    ["8.8.8.8", null],
    ["1.1.1.1", null],
    ["172.32.0.1", null], // just past 172.16.0.0/12
    ["100.128.0.1", null], // just past 100.64.0.0/10
    ["2606:4700:4700::1111", null],
    ["2001:4860:4860::8888", null],
  ];
  for (const [ip, range] of cases) {
    it(`${ip} -> ${range ?? "allowed"}`, () => assert.equal(strict(ip), range));
  }

  // Ranges that embed an IPv4 address could lead to a private one through a translator: refused,
  // whatever name the library gives them.
  for (const ip of [
    "64:ff9b::a00:1", // NAT64 (RFC 6052) of 10.0.0.1
    "64:ff9b::7f00:1", // NAT64 of 127.0.0.1
    "64:ff9b::808:808", // NAT64 of 8.8.8.8: still a translator
    "64:ff9b:1::1", // local-use NAT64 (RFC 8215)
    "2002::", // 6to4
    "2002:7f00:1::1", // 6to4 of 127.0.0.1
    "2001::1", // Teredo
    "::ffff:0:7f00:1", // IPv4-translated (RFC 6145)
    "::7f00:1", // IPv4-compatible (RFC 4291 §2.5.5.1, deprecated) of 127.0.0.1
    "::a9fe:a9fe", // IPv4-compatible of 169.254.169.254
  ]) {
    it(`${ip} (embeds an IPv4 address) is refused`, () => assert.notEqual(strict(ip), null));
  }

  // Global unicast IPv6 is allocated from 2000::/3 only (IANA); ::2 lies in the IETF-reserved ::/8.
  for (const ip of ["192.0.2.1", "198.18.0.1", "240.0.0.1", "2001:db8::1", "::2"]) {
    it(`${ip} (reserved, documentation or benchmarking) is refused`, () => assert.notEqual(strict(ip), null));
  }

  it("refuses what is not an IP address", () => {
    for (const s of ["example.com", "", "::g", "999.1.1.1"]) assert.notEqual(strict(s), null, s);
  });
});

describe("forbiddenRange with WEBHOOK_ALLOW_PRIVATE", () => {
  it('"127.0.0.1" opens that address only', () => {
    const allow = parseAllowList("127.0.0.1");
    assert.equal(forbiddenRange("127.0.0.1", allow), null);
    assert.equal(forbiddenRange("::ffff:127.0.0.1", allow), null, "the same address, IPv4-mapped");
    assert.equal(forbiddenRange("127.0.0.2", allow), "loopback");
    assert.equal(forbiddenRange("::1", allow), "loopback");
    assert.equal(forbiddenRange("10.0.0.1", allow), "private");
    assert.equal(forbiddenRange("169.254.169.254", allow), "linkLocal");
    assert.equal(forbiddenRange("8.8.8.8", allow), null, "public addresses stay allowed");
  });

  it('"10.0.0.0/8,::1" opens that range and that address', () => {
    const allow = parseAllowList("10.0.0.0/8,::1");
    assert.equal(forbiddenRange("10.9.9.9", allow), null);
    assert.equal(forbiddenRange("10.0.0.0", allow), null);
    assert.equal(forbiddenRange("10.255.255.255", allow), null);
    assert.equal(forbiddenRange("::1", allow), null);
    assert.equal(forbiddenRange("11.0.0.1", allow), null, "public anyway");
    assert.equal(forbiddenRange("192.168.0.1", allow), "private");
    assert.equal(forbiddenRange("172.16.0.1", allow), "private");
    assert.equal(forbiddenRange("127.0.0.1", allow), "loopback");
    assert.equal(forbiddenRange("fe80::1", allow), "linkLocal");
  });

  it("an address entry opens that one address, not its neighbours", () => {
    const allow = parseAllowList("fd00::1,10.1.2.3");
    assert.equal(forbiddenRange("fd00::1", allow), null);
    assert.equal(forbiddenRange("fd00::2", allow), "uniqueLocal");
    assert.equal(forbiddenRange("10.1.2.3", allow), null);
    assert.equal(forbiddenRange("10.1.2.4", allow), "private");
  });

  it('an IPv4-mapped CIDR ("::ffff:10.0.0.0/104") is the IPv4 range it carries (10.0.0.0/8)', () => {
    const mapped = parseAllowList("::ffff:10.0.0.0/104");
    const plain = parseAllowList("10.0.0.0/8");
    for (const ip of ["10.9.9.9", "::ffff:10.9.9.9", "192.168.0.1", "11.0.0.1", "127.0.0.1", "9.255.255.255"]) {
      assert.equal(forbiddenRange(ip, mapped), forbiddenRange(ip, plain), ip);
    }
    assert.equal(forbiddenRange("10.9.9.9", mapped), null);
    assert.equal(forbiddenRange("192.168.0.1", mapped), "private");
  });

  it("an IPv4 range does not open IPv6 addresses and the reverse", () => {
    assert.equal(forbiddenRange("fd00::1", parseAllowList("10.0.0.0/8")), "uniqueLocal");
    assert.equal(forbiddenRange("10.0.0.1", parseAllowList("fd00::/8")), "private");
    assert.equal(forbiddenRange("fd00::1", parseAllowList("fd00::/8")), null);
  });

  for (const value of ["all", "true"]) {
    it(`"${value}" allows every address`, () => {
      const allow = parseAllowList(value);
      for (const ip of ["127.0.0.1", "127.0.0.2", "::1", "10.0.0.1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "64:ff9b::a00:1", "8.8.8.8"]) {
        assert.equal(forbiddenRange(ip, allow), null, ip);
      }
    });
  }
});

describe("parseAllowList", () => {
  const cases: [string | undefined, AllowList | "list"][] = [
    [undefined, []],
    ["", []],
    ["  ", []],
    ["false", []],
    ["FALSE", []],
    ["true", "all"],
    ["TRUE", "all"],
    ["all", "all"],
    ["*", "all"],
    [" true ", "all"],
  ];
  for (const [raw, expected] of cases) {
    it(`${JSON.stringify(raw)} -> ${JSON.stringify(expected)}`, () => assert.deepEqual(parseAllowList(raw), expected));
  }

  it("reads addresses (/32, /128) and CIDRs, trimming spaces", () => {
    const list = parseAllowList(" 127.0.0.1 , 10.0.0.0/8,::1, fd00::/8 ");
    assert.ok(Array.isArray(list));
    assert.deepEqual(
      list.map(([addr, bits]) => `${addr.kind()} ${addr.toString()}/${bits}`),
      ["ipv4 127.0.0.1/32", "ipv4 10.0.0.0/8", "ipv6 ::1/128", "ipv6 fd00::/8"],
    );
  });

  // Short IPv4 forms are refused: "10/8" would otherwise be read as 0.0.0.10/8 and "1.2.3" as
  // 1.2.0.3, opening something other than what the operator meant, silently.
  for (const bad of ["10.0.0.0/33", "::1/129", "foo", "1.2.3", "10/8", "127.1", "0x7f000001", "10.0.0.0/8,", "10.0.0.1/", "10.0.0.0/8/8", "example.com"]) {
    it(`throws on ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseAllowList(bad), /is not an IP address or CIDR range/);
    });
  }
});

describe("ipLiteral", () => {
  const cases: [string, string | null][] = [
    ["[::1]", "::1"],
    ["[fd00:ec2::254]", "fd00:ec2::254"],
    ["[::ffff:7f00:1]", "::ffff:7f00:1"],
    ["127.0.0.1", "127.0.0.1"],
    ["8.8.8.8", "8.8.8.8"],
    ["example.com", null],
    ["localhost", null],
    ["1.2.3", null], // WHATWG URL turns it into 1.2.0.3 anyway; as a name it is not a literal
    ["[not-an-address]", null],
  ];
  for (const [host, expected] of cases) {
    it(`${host} -> ${expected}`, () => assert.equal(ipLiteral(host), expected));
  }

  it("reads the host of a parsed URL (IPv6 in brackets, IPv4 normalised by WHATWG URL)", () => {
    assert.equal(ipLiteral(new URL("http://[::1]:8080/x").hostname), "::1");
    assert.equal(ipLiteral(new URL("http://127.1/").hostname), "127.0.0.1");
    assert.equal(ipLiteral(new URL("http://0x7f.0.0.1/").hostname), "127.0.0.1");
    assert.equal(ipLiteral(new URL("https://hooks.example.com/").hostname), null);
  });
});

describe("reservedAddresses (names for loopback, RFC 6761 §6.3)", () => {
  it("names localhost and every name under it as loopback, whatever the case or trailing dots; nothing else", () => {
    for (const host of ["localhost", "LocalHost.", "hooks.localhost", "a.b.localhost..", "ip6-localhost", "ip6-loopback"]) assert.deepEqual(reservedAddresses(host), ["127.0.0.1", "::1"], host);
    for (const host of ["example.com", "localhost.example.com", "notlocalhost", "mylocalhost", "localhost-1"]) assert.deepEqual(reservedAddresses(host), [], host);
  });
});

describe("forbiddenName (cloud metadata host names)", () => {
  // They resolve only inside the cloud: refused by name, so a lookup that fails here proves nothing.
  const refused = [
    "metadata.google.internal",
    "METADATA.Google.Internal",
    "metadata.google.internal.", // fully qualified
    "metadata.google.internal..",
    "metadata",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "instance-data.us-east-1.compute.internal",
    "metadata.tencentyun.com",
  ];
  for (const host of refused) {
    it(`${host} -> metadata`, () => assert.equal(forbiddenName(host, []), "metadata"));
  }

  it("reads the host of a parsed URL (case, percent-encoding and full-width letters normalised)", () => {
    for (const url of ["http://Metadata.Google.Internal/computeMetadata/v1/", "http://metadat%61.google.internal/", "http://ｍｅｔａｄａｔａ.google.internal/", "https://instance-data:8443/latest"]) {
      assert.equal(forbiddenName(new URL(url).hostname, []), "metadata", url);
    }
  });

  const allowed = ["example.com", "hooks.example.invalid", "metadata.example.com", "my-metadata.google.internal.example", "instance-data.example.com", "google.internal", "localhost"];
  for (const host of allowed) {
    it(`${host} -> allowed by name (its addresses are checked apart)`, () => assert.equal(forbiddenName(host, []), null));
  }

  it('an allow list of addresses does not open them; "true" (every address) does', () => {
    assert.equal(forbiddenName("metadata.google.internal", parseAllowList("127.0.0.1,10.0.0.0/8")), "metadata");
    assert.equal(forbiddenName("metadata.google.internal", parseAllowList("true")), null);
    assert.equal(forbiddenName("instance-data", parseAllowList("all")), null);
  });
});
