import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainToASCII } from "node:url";
import {
  accountLocalpart,
  bare,
  isBare,
  isValidLocalpart,
  jidEquals,
  jidToString,
  parseJid,
  prepareDomainpart,
  prepareLocalpart,
  prepareResourcepart,
  toString,
  utf8Length,
  type Jid,
} from "../../src/domain/jid.js";

describe("RFC 7622 §3.5.1 valid examples", () => {
  const cases: [string, Jid][] = [
    ["juliet@example.com", { local: "juliet", domain: "example.com" }],
    ["juliet@example.com/foo", { local: "juliet", domain: "example.com", resource: "foo" }],
    ["juliet@example.com/foo bar", { local: "juliet", domain: "example.com", resource: "foo bar" }],
    ["juliet@example.com/foo@bar", { local: "juliet", domain: "example.com", resource: "foo@bar" }],
    ["foo\\20bar@example.com", { local: "foo\\20bar", domain: "example.com" }],
    ["fussball@example.com", { local: "fussball", domain: "example.com" }],
    ["fußball@example.com", { local: "fußball", domain: "example.com" }],
    ["π@example.com", { local: "π", domain: "example.com" }],
    ["Σ@example.com/foo", { local: "σ", domain: "example.com", resource: "foo" }],
    ["σ@example.com/foo", { local: "σ", domain: "example.com", resource: "foo" }],
    ["ς@example.com/foo", { local: "ς", domain: "example.com", resource: "foo" }],
    ["king@example.com/♚", { local: "king", domain: "example.com", resource: "♚" }],
    ["example.com", { domain: "example.com" }],
    ["example.com/foobar", { domain: "example.com", resource: "foobar" }],
    ["a.example.com/b@example.net", { domain: "a.example.com", resource: "b@example.net" }],
  ];
  for (const [input, expected] of cases) {
    it(`accepts ${input}`, () => assert.deepEqual(parseJid(input), expected));
  }

  it("keeps fußball and fussball distinct (case mapping is not case folding)", () => {
    assert.notDeepEqual(parseJid("fußball@example.com"), parseJid("fussball@example.com"));
  });
});

describe("RFC 7622 §3.5.2 invalid examples", () => {
  const cases: [string, string][] = [
    ['"juliet"@example.com', "quotation marks in the localpart"],
    ["foo bar@example.com", "space in the localpart"],
    ["juliet@example.com/", "zero-length resourcepart"],
    ["@example.com/", "zero-length localpart and resourcepart"],
    ["henry\u2163@example.com", "ROMAN NUMERAL FOUR has a compatibility decomposition"],
    ["♚@example.com", "a symbol in the localpart"],
    ["juliet@", "zero-length domainpart"],
    ["/foobar", "zero-length domainpart"],
  ];
  for (const [input, why] of cases) {
    it(`rejects ${input} (${why})`, () => assert.equal(parseJid(input), null));
  }
});

describe("splitting (RFC 7622 §3.1)", () => {
  it("takes the resource after the first '/', even when it holds '@' and '/'", () => {
    assert.deepEqual(parseJid("a@b/c@d/e"), { local: "a", domain: "b", resource: "c@d/e" });
  });
  it("only looks for '@' before the first '/'", () => {
    assert.deepEqual(parseJid("example.com/user@host"), { domain: "example.com", resource: "user@host" });
  });
  it("splits the localpart at the first '@', leaving any other in the domainpart (which is then invalid)", () => {
    assert.equal(parseJid("a@b@example.com"), null);
  });
  for (const input of ["", "@", "/", "@/", "@example.com", "user@", "example.com/", "/res", "user@/res", "@example.com/res"]) {
    it(`rejects an empty part in ${JSON.stringify(input)}`, () => assert.equal(parseJid(input), null));
  }
});

describe("localpart (RFC 7622 §3.3, UsernameCaseMapped)", () => {
  for (const ch of ['"', "&", "'", "/", ":", "<", ">", "@"]) {
    it(`forbids ${ch} (§3.3.1)`, () => {
      assert.equal(prepareLocalpart(`a${ch}b`), null);
      assert.equal(isValidLocalpart(`a${ch}b`), false);
    });
  }
  const disallowed: [string, string][] = [
    [" ", "space"],
    ["\t", "tab"],
    ["\u0000", "NUL"],
    ["\u007f", "DEL"],
    ["\u0085", "a C1 control"],
    ["\u00a0", "no-break space (compatibility decomposition)"],
    ["\u3000", "ideographic space"],
    ["\u200b", "zero width space (default ignorable)"],
    ["\u200d", "zero width joiner (CONTEXTJ, not evaluated)"],
    ["\ufffe", "a noncharacter"],
    ["\ud800", "a lone surrogate"],
    ["\ue000", "private use"],
    ["€", "a currency symbol"],
    ["∑", "a math symbol"],
    ["☺", "an other symbol"],
    ["\ufb01", "the fi ligature (compatibility decomposition)"],
    ["\u2163", "a roman numeral"],
    ["\u00b7", "middle dot (CONTEXTO, not evaluated)"],
    ["\u1100", "a conjoining Hangul jamo"],
    ["\u0640", "Arabic tatweel (RFC 5892 exception)"],
    ["\u00bf", "non-ASCII punctuation"],
  ];
  for (const [ch, why] of disallowed) {
    it(`rejects ${why}`, () => {
      assert.equal(prepareLocalpart(`a${ch}b`), null);
      assert.equal(parseJid(`a${ch}b@example.com`), null);
    });
  }
  const allowed: [string, string, string][] = [
    ["Juliet", "juliet", "uppercase maps to lowercase"],
    ["ＪＵＬＩＥＴ", "juliet", "fullwidth maps to ASCII, then lowercase"],
    ["re\u0301sume\u0301", "résumé", "NFC composes"],
    ["RÉSUMÉ", "résumé", "non-ASCII lowercase"],
    ["ΟΔΥΣΣΕΥΣ", "οδυσσευς", "final sigma in context"],
    ["a!#$%*+-.=?^_`{|}~b", "a!#$%*+-.=?^_`{|}~b", "ASCII punctuation other than the forbidden eight"],
    ["日本語", "日本語", "other letters"],
    ["ä\u0308", "ä\u0308", "a combining mark that does not compose"],
    ["\u3007", "\u3007", "IDEOGRAPHIC NUMBER ZERO (RFC 5892 PVALID exception)"],
    ["٣", "٣", "Arabic-Indic digits"],
    ["a\u{20000}", "a\u{20000}", "a supplementary ideograph"],
  ];
  for (const [input, expected, why] of allowed) {
    it(`accepts ${why}: ${input} -> ${expected}`, () => {
      assert.equal(prepareLocalpart(input), expected);
      assert.equal(isValidLocalpart(input), true);
    });
  }

  it("accepts 1023 octets and rejects 1024 (ASCII)", () => {
    assert.equal(prepareLocalpart("a".repeat(1023)), "a".repeat(1023));
    assert.equal(prepareLocalpart("a".repeat(1024)), null);
    assert.deepEqual(parseJid(`${"a".repeat(1023)}@example.com`), { local: "a".repeat(1023), domain: "example.com" });
    assert.equal(parseJid(`${"a".repeat(1024)}@example.com`), null);
  });

  it("counts octets, not UTF-16 code units", () => {
    // 日 is one code unit and three octets.
    assert.equal(prepareLocalpart("日".repeat(341)), "日".repeat(341));
    assert.equal(prepareLocalpart("日".repeat(342)), null);
    // 𠀀 is two code units and four octets.
    assert.equal(prepareLocalpart(`${"\u{20000}".repeat(255)}abc`), `${"\u{20000}".repeat(255)}abc`);
    assert.equal(prepareLocalpart(`${"\u{20000}".repeat(255)}abcd`), null);
  });

  it("measures the length after preparation", () => {
    // "E" + COMBINING ACUTE is 3 octets raw and 2 octets once NFC makes it "é".
    assert.equal(prepareLocalpart("E\u0301".repeat(511)), "é".repeat(511));
    assert.equal(prepareLocalpart("E\u0301".repeat(512)), null);
  });
});

describe("resourcepart (RFC 7622 §3.4, OpaqueString)", () => {
  const allowed: [string, string, string][] = [
    ["Foo", "Foo", "case is preserved"],
    ["foo bar", "foo bar", "ASCII space"],
    ["a\u3000b", "a b", "non-ASCII space maps to U+0020"],
    ["a\u00a0b", "a b", "no-break space maps to U+0020"],
    ["re\u0301sume\u0301", "résumé", "NFC composes"],
    ["ＦＵＬＬ", "ＦＵＬＬ", "no width mapping"],
    ["\ufb01", "\ufb01", "compatibility characters are allowed"],
    ["a/b@c:d", "a/b@c:d", "'/', '@' and ':'"],
    ["♚€∑", "♚€∑", "symbols"],
    ["\u{1f600}", "\u{1f600}", "a supplementary symbol"],
    [" lead and trail ", " lead and trail ", "leading and trailing spaces"],
  ];
  for (const [input, expected, why] of allowed) {
    it(`accepts ${why}`, () => {
      assert.equal(prepareResourcepart(input), expected);
      assert.deepEqual(parseJid(`u@example.com/${input}`), { local: "u", domain: "example.com", resource: expected });
    });
  }
  const disallowed: [string, string][] = [
    ["\u0000", "NUL"],
    ["\t", "tab"],
    ["\n", "line feed"],
    ["\u007f", "DEL"],
    ["\u0085", "a C1 control"],
    ["\u2028", "line separator"],
    ["\u200b", "zero width space"],
    ["\u00ad", "soft hyphen (default ignorable)"],
    ["\ufeff", "BOM (default ignorable)"],
    ["\uffff", "a noncharacter"],
    ["\ud800", "a lone high surrogate"],
    ["\udc00", "a lone low surrogate"],
    ["\ue000", "private use"],
  ];
  for (const [ch, why] of disallowed) {
    it(`rejects ${why}`, () => {
      assert.equal(prepareResourcepart(`a${ch}b`), null);
      assert.equal(parseJid(`u@example.com/a${ch}b`), null);
    });
  }

  it("accepts 1023 octets and rejects 1024", () => {
    const ok = `${"\u{1f600}".repeat(255)}abc`;
    assert.equal(utf8Length(ok), 1023);
    assert.equal(prepareResourcepart(ok), ok);
    assert.equal(prepareResourcepart(`${ok}d`), null);
    assert.equal(parseJid(`example.com/${"r".repeat(1023)}`)?.resource, "r".repeat(1023));
    assert.equal(parseJid(`example.com/${"r".repeat(1024)}`), null);
  });

  it("measures the length after preparation", () => {
    assert.equal(prepareResourcepart("e\u0301".repeat(511)), "é".repeat(511));
    assert.equal(prepareResourcepart("e\u0301".repeat(512)), null);
  });
});

/** A DNS name of exactly `octets` ASCII octets, in labels of at most 63. */
function domainOfLength(octets: number): string {
  const labels: string[] = [];
  let remaining = octets;
  while (remaining > 0) {
    // Never leave a remainder of exactly one (it would be a lone dot).
    const take = remaining <= 63 ? remaining : remaining === 64 ? 62 : 63;
    labels.push("a".repeat(take));
    remaining -= take + 1;
  }
  const domain = labels.join(".");
  assert.equal(domain.length, octets);
  return domain;
}

describe("domainpart (RFC 7622 §3.2)", () => {
  const accepted: [string, string, string][] = [
    ["Example.COM", "example.com", "lowercase"],
    ["example.com.", "example.com", "one trailing dot is stripped"],
    ["ＥＸＡＭＰＬＥ．ｃｏｍ", "example.com", "fullwidth letters and dot are width-mapped"],
    ["BÜCHER.example", "bücher.example", "U-labels are lowercased"],
    ["bu\u0308cher.example", "bücher.example", "and NFC-normalized"],
    ["xn--bcher-kva.example", "bücher.example", "A-labels become U-labels"],
    ["XN--BCHER-KVA.EXAMPLE", "bücher.example", "uppercase A-labels too"],
    ["ΟΔΥΣΣΕΥΣ.gr", "οδυσσευς.gr", "label by label (final sigma does not look across the dot)"],
    ["localhost", "localhost", "a single label"],
    ["a-b.c-d.example", "a-b.c-d.example", "inner hyphens"],
    ["123.example", "123.example", "numeric labels other than the last"],
    ["192.0.2.1", "192.0.2.1", "IPv4"],
    ["0.0.0.0", "0.0.0.0", "IPv4 zeros"],
    ["255.255.255.255", "255.255.255.255", "IPv4 maximum"],
    ["[::1]", "[::1]", "IPv6 loopback"],
    ["[::]", "[::]", "IPv6 unspecified"],
    ["[2001:DB8::1]", "[2001:db8::1]", "IPv6, lowercased"],
    ["[2001:db8:0:0:0:0:0:1]", "[2001:db8:0:0:0:0:0:1]", "IPv6 uncompressed (not canonicalized)"],
    ["[1:2:3:4:5:6:7::]", "[1:2:3:4:5:6:7::]", "IPv6 with '::' for one group"],
    ["[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", "IPv6 with an IPv4 tail"],
    ["[1:2:3:4:5:6:192.0.2.1]", "[1:2:3:4:5:6:192.0.2.1]", "IPv6 with an IPv4 tail and no '::'"],
  ];
  for (const [input, expected, why] of accepted) {
    it(`accepts ${why}: ${input}`, () => {
      assert.equal(prepareDomainpart(input), expected);
      assert.deepEqual(parseJid(`u@${input}/r`), { local: "u", domain: expected, resource: "r" });
    });
  }

  const rejected: [string, string][] = [
    [".", "only the separator"],
    ["example.com..", "two trailing dots"],
    [".example.com", "an empty first label"],
    ["example..com", "an empty inner label"],
    ["-example.com", "a leading hyphen"],
    ["example-.com", "a trailing hyphen"],
    ["ex_ample.com", "an underscore"],
    ["ab--cd.example", "a reserved LDH label that is not an A-label"],
    ["xn--abc-.example", "a fake A-label that decodes to ASCII"],
    ["xn--.example", "an empty A-label"],
    ["xn--a-99999999999.example", "Punycode that overflows"],
    ["xn--dca.example", "an A-label that decodes to uppercase"], // "dca" is the Punycode of "É"
    ["xn--e-xbb.example", "an A-label that decodes to a non-NFC string"], // "e-xbb" is that of "e\u0301"
    ["exa mple.com", "a space"],
    ["example.com\u0000", "NUL"],
    ["ex\u00a0ample.com", "a no-break space"],
    ["☺.example", "a symbol"],
    ["example.123", "an all-numeric last label"],
    ["256.0.0.1", "an IPv4 octet above 255"],
    ["01.2.3.4", "an IPv4 octet with a leading zero"],
    ["1.2.3.4.5", "five numeric labels"],
    ["[::1", "an unclosed bracket"],
    ["::1", "IPv6 without brackets"],
    ["[1:2:3:4:5:6:7:8:9]", "nine IPv6 groups"],
    ["[1:2:3:4:5:6:7]", "seven IPv6 groups without '::'"],
    ["[1::2:3:4:5:6:7:8]", "'::' with eight other groups"],
    ["[1::2::3]", "two '::'"],
    ["[12345::1]", "a five-digit group"],
    ["[fe80::1%25eth0]", "a zone identifier"],
    ["[::ffff:256.0.0.1]", "a bad IPv4 tail"],
    ["[v1.fe]", "IPvFuture"],
    ["a@b", "an '@'"],
  ];
  for (const [input, why] of rejected) {
    it(`rejects ${why}: ${JSON.stringify(input)}`, () => assert.equal(prepareDomainpart(input), null));
  }

  it("accepts 63-octet labels and rejects 64", () => {
    assert.equal(prepareDomainpart(`${"a".repeat(63)}.example`), `${"a".repeat(63)}.example`);
    assert.equal(prepareDomainpart(`${"a".repeat(64)}.example`), null);
  });

  it("measures U-labels by their A-label form (RFC 5890 §2.3.2.1)", () => {
    // 30 kanji are 90 octets of UTF-8 but a short A-label.
    const short = "日本語".repeat(10);
    assert.ok(domainToASCII(`${short}.jp`).split(".")[0]!.length <= 63);
    assert.equal(prepareDomainpart(`${short}.jp`), `${short}.jp`);
    // Distinct code points in a long label make the A-label exceed 63 octets.
    const long = Array.from({ length: 40 }, (_, i) => String.fromCodePoint(0x4e00 + i * 37)).join("");
    assert.ok(domainToASCII(`${long}.jp`) === "" || domainToASCII(`${long}.jp`).split(".")[0]!.length > 63);
    assert.equal(prepareDomainpart(`${long}.jp`), null);
  });

  it("accepts 1023 octets and rejects 1024", () => {
    const max = domainOfLength(1023);
    assert.equal(prepareDomainpart(max), max);
    assert.equal(prepareDomainpart(domainOfLength(1024)), null);
    assert.deepEqual(parseJid(`u@${max}`), { local: "u", domain: max });
  });

  it("strips the trailing dot before counting", () => {
    const max = domainOfLength(1023);
    assert.equal(prepareDomainpart(`${max}.`), max);
  });

  it("refuses very long input without preparing it", () => {
    assert.equal(parseJid(`u@${"a".repeat(100_000)}`), null);
    assert.equal(parseJid(`u@example.com/${"r".repeat(100_000)}`), null);
  });
});

describe("JID helpers", () => {
  const full = parseJid("Juliet@Example.com/Balcony");
  assert.ok(full);

  it("bare drops the resource", () => {
    assert.deepEqual(bare(full), { local: "juliet", domain: "example.com" });
    assert.deepEqual(bare({ domain: "example.com", resource: "r" }), { domain: "example.com" });
    assert.equal("resource" in bare(full), false);
  });

  it("isBare", () => {
    assert.equal(isBare(full), false);
    assert.equal(isBare(bare(full)), true);
    assert.equal(isBare({ domain: "example.com" }), true);
  });

  it("toString renders the prepared parts", () => {
    assert.equal(toString(full), "juliet@example.com/Balcony");
    assert.equal(jidToString({ domain: "example.com" }), "example.com");
    assert.equal(jidToString({ domain: "example.com", resource: "a/b" }), "example.com/a/b");
    assert.equal(jidToString({ local: "a", domain: "example.com" }), "a@example.com");
  });

  it("jidEquals compares prepared parts", () => {
    const other = parseJid("JULIET@EXAMPLE.COM./Balcony");
    assert.ok(other);
    assert.equal(jidEquals(full, other), true);
    assert.equal(jidEquals(full, bare(full)), false);
    const otherResource = parseJid("juliet@example.com/balcony");
    assert.ok(otherResource);
    assert.equal(jidEquals(full, otherResource), false);
  });

  it("parsing what toString prints gives the same JID (preparation is idempotent)", () => {
    const inputs = [
      "Juliet@Example.com/Balcony",
      "ＪＵＬＩＥＴ@ＥＸＡＭＰＬＥ．ｃｏｍ/ｒｅｓ",
      "Σ@XN--BCHER-KVA.example./a\u3000b",
      "re\u0301sume\u0301@bu\u0308cher.example/e\u0301",
      "example.com/a@b/c",
      "[2001:DB8::1]/x",
      "ΟΔΥΣΣΕΥΣ@192.0.2.1",
    ];
    for (const input of inputs) {
      const once = parseJid(input);
      assert.ok(once, input);
      const twice = parseJid(jidToString(once));
      assert.deepEqual(twice, once, input);
      assert.equal(jidToString(twice!), jidToString(once), input);
    }
  });
});

describe("accountLocalpart", () => {
  const domain = "example.org";
  const cases: [string, string | null, string][] = [
    ["alice", "alice", "a bare localpart"],
    ["Alice", "alice", "a localpart that needs preparation"],
    ["alice@example.org", "alice", "a bare JID on the domain"],
    ["ALICE@Example.ORG.", "alice", "a bare JID on the domain, unprepared"],
    ["example.org", "example.org", "input without '@' is a localpart"],
    ["alice@other.org", null, "a JID on another domain"],
    ["alice@example.org/phone", null, "a full JID"],
    ["alice/phone", null, "a localpart with a resource"],
    ["@example.org", null, "a domain JID"],
    ["", null, "nothing"],
    ["a b", null, "an invalid localpart"],
    ["a@b@example.org", null, "two '@'"],
  ];
  for (const [input, expected, why] of cases) {
    it(`${why}: ${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => assert.equal(accountLocalpart(input, domain), expected));
  }

  it("prepares the configured domain before comparing", () => {
    assert.equal(accountLocalpart("alice@example.org", "EXAMPLE.org."), "alice");
    assert.equal(accountLocalpart("alice@bücher.example", "xn--bcher-kva.example"), "alice");
  });
});
