// JIDs per RFC 7622. Every part is prepared (mapped and normalized) before it is checked, so two JIDs
// that the RFC deems equal come out as equal strings and can be compared with ===.
//
// Approximations. The PRECIS profiles (RFC 7613, for localparts and resourceparts) and IDNA2008
// (RFC 5890-5893, for domainparts) are defined over derived Unicode property tables that JavaScript
// does not expose. We derive them from what RegExp Unicode property escapes and String.normalize
// do offer, which follows the engine's Unicode version rather than the one PRECIS pins:
//   - "Unassigned" is whatever this engine thinks is unassigned.
//   - Old Hangul Jamo is approximated by the Hangul Jamo blocks.
//   - CONTEXTJ (ZWJ/ZWNJ) and CONTEXTO code points (U+00B7, U+0375, U+05F3-4, U+30FB, and the
//     Arabic-Indic digit mixing rule) are not evaluated in context: the first group is rejected
//     everywhere and the digits are accepted without the mixing check.
//   - The Bidi Rule (RFC 5893), which the UsernameCaseMapped profile and IDNA2008 apply, is not
//     checked here; a right-to-left string that breaks it is accepted, except for the domain labels
//     that Node refuses (next point).
//   - Punycode (RFC 3492) for domain labels is Node's (node:url, UTS #46 nontransitional, as the
//     WHATWG URL Standard uses it), applied to one non-ASCII label at a time. A label Node refuses
//     (for some Bidi Rule violations, for instance) is rejected, and so is one Node would map to
//     something else: such a label is not stable under NFKC_Casefold, which IDNA2008 disallows
//     anyway (RFC 5892 §2.2, "Unstable"). What Node refuses follows its version, like the tables.
//   - Case mapping is String.prototype.toLowerCase (what RFC 8265, the successor of RFC 7613,
//     settled on), not Unicode Default Case Folding: "fußball" and "fussball" stay different JIDs,
//     as RFC 7622 §3.5 expects.
// Each approximation errs the same way for every caller, so equality stays consistent inside Balcony.
import { isIPv6 } from "node:net";
import { domainToASCII, domainToUnicode } from "node:url";

export interface Jid {
  readonly local?: string;
  readonly domain: string;
  readonly resource?: string;
}

/** RFC 7622 §3.1: each part is 1 to 1023 octets of UTF-8, counted after preparation. */
export const MAX_PART_OCTETS = 1023;

// NFC merges at most four code points into one (the longest canonical decomposition, e.g. U+1FAF), so
// a part that prepares to at most 1023 octets had at most about 4 × 1023 code units. Input well past
// that for all three parts is refused before any normalization, which keeps hostile input cheap.
const MAX_INPUT_UNITS = 32 * 1024;

// RFC 7622 §3.3.1: the characters that would make a localpart ambiguous in URIs and other JID forms.
const LOCALPART_FORBIDDEN = new Set(['"', "&", "'", "/", ":", "<", ">", "@"]);

// PRECIS "LetterDigits" (RFC 7564 §9.1, category A): PVALID in the IdentifierClass.
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
// FreeformClass adds OtherLetterDigits, Spaces, Symbols and Punctuation (RFC 7564 §4.3.1).
const FREEFORM = /^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]$/u;
// PRECIS "PrecisIgnorableProperties" (RFC 7564 §9.13) and JoinControl (§9.8, CONTEXTJ, see above).
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}\p{Join_Control}]$/u;
// "OldHangulJamo" (RFC 7564 §9.9), approximated by the conjoining jamo blocks.
const OLD_HANGUL_JAMO = /^[\u1100-\u11FF\uA960-\uA97F\uD7B0-\uD7FF]$/u;
const NON_ASCII_SPACE = /[\p{Zs}]/gu;
// RFC 5892 §2.6 exceptions that override the general category.
const EXCEPTIONS_PVALID = new Set([0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTIONS_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);

export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

function withinPartLimit(s: string): boolean {
  const n = utf8Length(s);
  return n >= 1 && n <= MAX_PART_OCTETS;
}

// UsernameCaseMapped (RFC 7613 §3.2) and domainparts (RFC 7622 §3.2.2) start with width mapping:
// fullwidth and halfwidth forms become their decompositions, i.e. NFKC limited to that one block.
function widthMap(s: string): string {
  return s.replace(/[\uFF00-\uFFEF]/g, (ch) => ch.normalize("NFKC"));
}

function hasCompat(ch: string): boolean {
  return ch.normalize("NFKC") !== ch;
}

// PRECIS IdentifierClass (RFC 7564 §4.2) in the derivation order of RFC 7564 §8.
function isIdentifierChar(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  if (EXCEPTIONS_PVALID.has(cp)) return true;
  if (EXCEPTIONS_DISALLOWED.has(cp)) return false;
  if (cp >= 0x21 && cp <= 0x7e) return true;
  if (cp < 0xa0) return false; // space, C0/C1 controls, DEL
  if (IGNORABLE.test(ch) || OLD_HANGUL_JAMO.test(ch) || hasCompat(ch)) return false;
  return LETTER_DIGITS.test(ch);
}

// PRECIS FreeformClass (RFC 7564 §4.3), as the OpaqueString profile uses it.
function isFreeformChar(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp >= 0x20 && cp <= 0x7e) return true;
  if (cp < 0xa0) return false;
  if (IGNORABLE.test(ch) || OLD_HANGUL_JAMO.test(ch)) return false;
  return FREEFORM.test(ch);
}

/**
 * Prepares a localpart with the UsernameCaseMapped profile (RFC 7613 §3.2) and the extra exclusions of
 * RFC 7622 §3.3.1; null if the result is not a valid localpart.
 */
export function prepareLocalpart(input: string): string | null {
  if (input.length === 0 || input.length > MAX_INPUT_UNITS) return null;
  const s = widthMap(input).toLowerCase().normalize("NFC");
  for (const ch of s) {
    if (LOCALPART_FORBIDDEN.has(ch) || !isIdentifierChar(ch)) return null;
  }
  return withinPartLimit(s) ? s : null;
}

/**
 * Whether `input` prepares to a valid localpart (it need not already be in prepared form: "Juliet" is
 * valid and prepares to "juliet").
 */
export function isValidLocalpart(input: string): boolean {
  return prepareLocalpart(input) !== null;
}

/** Prepares a resourcepart with the OpaqueString profile (RFC 7613 §4.2, RFC 7622 §3.4). */
export function prepareResourcepart(input: string): string | null {
  if (input.length === 0 || input.length > MAX_INPUT_UNITS) return null;
  // RFC 7613 §4.2 (OpaqueString): non-ASCII spaces map to U+0020; no width or case mapping.
  const s = input.replace(NON_ASCII_SPACE, " ").normalize("NFC");
  for (const ch of s) if (!isFreeformChar(ch)) return null;
  return withinPartLimit(s) ? s : null;
}

// RFC 3986 §3.2.2 dec-octet: 0-255 without leading zeros.
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const DOTTED_NUMBERS = /^\d+(?:\.\d+){3}$/;

// RFC 3986 §3.2.2 IPv6address, as RFC 7622 §3.2 uses it: no zone identifier (RFC 6874), which
// Node's isIPv6 would accept after a "%", and no IPvFuture, which it never accepts.
function isIpv6(address: string): boolean {
  return !address.includes("%") && isIPv6(address);
}

const LDH_ASCII = /^[a-z0-9-]+$/;
const isAscii = (s: string): boolean => /^\p{ASCII}*$/u.test(s);

// A U-label code point: IDNA2008 PVALID is essentially the IdentifierClass letter-digits (RFC 5892
// builds both from the same categories), and the only ASCII allowed are LDH.
function isULabelChar(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x80) return LDH_ASCII.test(ch);
  return isIdentifierChar(ch);
}

// One DNS label in prepared (lowercase, NFC) form; returns its U-label form or null.
function prepareLabel(label: string): string | null {
  if (label.length === 0) return null;
  let ulabel = label;
  if (label.startsWith("xn--")) {
    // RFC 7622 §3.2.1: A-labels are converted to U-labels. Node returns "" for invalid Punycode; a
    // decode that yields pure ASCII, or text that preparation would still change, is a fake A-label
    // (RFC 5891 §5.4). Node refuses most uppercase, but not all: "xn--58d" decodes to U+13A0.
    ulabel = domainToUnicode(label);
    if (ulabel === "" || isAscii(ulabel)) return null;
    if (ulabel.normalize("NFC") !== ulabel || ulabel.toLowerCase() !== ulabel) return null;
  } else if (label.length >= 4 && label[2] === "-" && label[3] === "-") {
    return null; // reserved LDH labels other than A-labels (RFC 5890 §2.3.1)
  }
  if (ulabel.startsWith("-") || ulabel.endsWith("-")) return null; // RFC 5891 §4.2.3.1
  for (const ch of ulabel) if (!isULabelChar(ch)) return null;
  // RFC 5890 §2.3.2.1: the 63-octet DNS limit applies to the label's A-label (wire) form. Only
  // non-ASCII labels go to Node, whose host parser would read an all-digit one as an IPv4 address.
  const alabel = isAscii(ulabel) ? ulabel : domainToASCII(ulabel);
  if (alabel === "" || alabel.length > 63) return null;
  if (alabel !== ulabel) {
    // Both directions must round-trip (RFC 5891 §5.4): an A-label given must be the one its U-label
    // encodes to, and a U-label must be what its A-label decodes to, not something Node maps first
    // (see the top of this file).
    if (label !== ulabel && alabel !== label) return null;
    if (domainToUnicode(alabel) !== ulabel) return null;
  }
  return ulabel;
}

/**
 * Prepares a domainpart per RFC 7622 §3.2: an IPv4 address, a bracketed IPv6 address, or a DNS name
 * whose labels are returned lowercase, NFC, as U-labels, without the trailing dot.
 */
export function prepareDomainpart(input: string): string | null {
  if (input.length === 0 || input.length > MAX_INPUT_UNITS) return null;
  // RFC 7622 §3.2.2: width mapping, lowercase, NFC. Lowercasing goes label by label because the
  // context-dependent final sigma would otherwise look across the dot, which is case-ignorable.
  let s = widthMap(input)
    .split(".")
    .map((label) => label.toLowerCase().normalize("NFC"))
    .join(".");
  // RFC 7622 §3.2: one final label separator is stripped before any use of the JID.
  if (s.endsWith(".")) s = s.slice(0, -1);
  if (!withinPartLimit(s)) return null;
  if (s.startsWith("[")) {
    return s.endsWith("]") && isIpv6(s.slice(1, -1)) ? s : null;
  }
  if (DOTTED_NUMBERS.test(s)) return IPV4.test(s) ? s : null;
  const labels: string[] = [];
  for (const label of s.split(".")) {
    const prepared = prepareLabel(label);
    if (prepared === null) return null;
    labels.push(prepared);
  }
  // An all-numeric top-level label would be read as an IP address (RFC 3696 §2).
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) return null;
  const domain = labels.join(".");
  return withinPartLimit(domain) ? domain : null;
}

/**
 * Parses and prepares a JID string. Splitting follows RFC 7622 §3.1: the resourcepart is everything
 * after the first "/", the localpart everything before the first "@" that precedes that "/". So
 * "a@b/c@d/e" is local "a", domain "b", resource "c@d/e". Any empty or invalid part gives null.
 */
export function parseJid(input: string): Jid | null {
  if (input.length === 0 || input.length > MAX_INPUT_UNITS) return null;
  const slash = input.indexOf("/");
  const beforeSlash = slash === -1 ? input : input.slice(0, slash);
  const at = beforeSlash.indexOf("@");
  const domain = prepareDomainpart(at === -1 ? beforeSlash : beforeSlash.slice(at + 1));
  if (domain === null) return null;
  let local: string | undefined;
  if (at !== -1) {
    const prepared = prepareLocalpart(beforeSlash.slice(0, at));
    if (prepared === null) return null;
    local = prepared;
  }
  let resource: string | undefined;
  if (slash !== -1) {
    const prepared = prepareResourcepart(input.slice(slash + 1));
    if (prepared === null) return null;
    resource = prepared;
  }
  return {
    ...(local !== undefined ? { local } : {}),
    domain,
    ...(resource !== undefined ? { resource } : {}),
  };
}

/** The bare JID (RFC 7622 §1.1): the same JID without its resourcepart. */
export function bare(jid: Jid): Jid {
  return jid.local !== undefined ? { local: jid.local, domain: jid.domain } : { domain: jid.domain };
}

export function isBare(jid: Jid): boolean {
  return jid.resource === undefined;
}

export function jidToString(jid: Jid): string {
  return `${jid.local !== undefined ? `${jid.local}@` : ""}${jid.domain}${jid.resource !== undefined ? `/${jid.resource}` : ""}`;
}

export { jidToString as toString };

/** Equality of prepared JIDs (RFC 7622 §3.1: compare part by part after preparation). */
export function jidEquals(a: Jid, b: Jid): boolean {
  return a.local === b.local && a.domain === b.domain && a.resource === b.resource;
}

/**
 * The prepared localpart of an account of this gateway, given either as a bare localpart ("alice") or
 * as a bare JID on `domain` ("alice@example.org"); null for anything else. Input without "@" is always
 * read as a localpart, since "." is a legal localpart character.
 */
export function accountLocalpart(input: string, domain: string): string | null {
  if (input.includes("/")) return null;
  if (!input.includes("@")) return prepareLocalpart(input);
  const jid = parseJid(input);
  if (jid === null || jid.local === undefined) return null;
  return jid.domain === prepareDomainpart(domain) ? jid.local : null;
}
