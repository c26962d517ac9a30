// Text that ends up in XML character data or attribute values. XMPP streams are XML 1.0 (RFC 6120
// §11.1), whose Char production (XML 1.0 §2.2) is
//   #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
// Anything else cannot be escaped, only refused: a stanza carrying it would be a stream error
// (RFC 6120 §4.9.3.13 not-well-formed) and cost every other stanza on the link. JS strings are UTF-16,
// so the code points above U+FFFF arrive as surrogate pairs and a lone surrogate is an error.

/**
 * JSON-Schema `pattern` for text the HTTP API takes: XML 1.0 Chars, less the control characters
 * among them, DEL (U+007F) and the C1 controls (U+0080-U+009F). Those are Chars, but XML 1.0 §2.2
 * discourages them and API.md refuses control characters with 400. Every field with this pattern
 * is text for people (messages, names, statuses, descriptions), a room password or a resourcepart
 * (RFC 7622), and the PRECIS classes of the last two (RFC 8264 §9.11) disallow them as well. Tab,
 * LF and CR stay allowed. It works with and without the RegExp `u` flag: Ajv compiles patterns with `u`
 * (its `unicodeRegExp` default), TypeBox's Value.Check without it. With `u` the negated class sees
 * whole code points, so it admits every supplementary one and refuses lone surrogates; without `u`
 * it sees code units, and the second alternative admits well-formed surrogate pairs only.
 */
export const XML_TEXT_PATTERN = "^(?:[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\uD800-\\uDFFF\\uFFFE\\uFFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$";

/** Whether a Unicode code point is an XML 1.0 Char. */
export function isXmlChar(cp: number): boolean {
  if (cp < 0x20) return cp === 0x9 || cp === 0xa || cp === 0xd;
  if (cp <= 0xd7ff) return true;
  if (cp < 0xe000) return false;
  if (cp <= 0xfffd) return true;
  return cp >= 0x10000 && cp <= 0x10ffff;
}

/** UTF-16 index of the first code unit that does not start an XML 1.0 Char, or -1 if there is none. */
export function firstInvalidXmlChar(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const cu = s.charCodeAt(i);
    if (cu >= 0xd800 && cu <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next < 0xdc00 || next > 0xdfff) return i;
      i++; // a well-formed pair is U+10000..U+10FFFF, all Chars
    } else if (!isXmlChar(cu)) {
      return i;
    }
  }
  return -1;
}

export function isXmlText(s: string): boolean {
  return firstInvalidXmlChar(s) === -1;
}

/**
 * A well-formed language tag (RFC 5646 §2.1, as RFC 6120 §4.7.4 wants xml:lang): a langtag (language
 * with up to three extlangs, script, region, variants, extensions, private use), a private-use tag,
 * or an irregular grandfathered one. Well-formed only: the subtags are not looked up in the registry.
 * At most 128 characters (the lookahead): RFC 5646 sets no bound, but §4.4.1 asks implementations to
 * take at least 35, and a tag of any length would be matched and sent as xml:lang on every stanza.
 */
export const LANG_PATTERN =
  "^(?=.{1,128}$)(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*" +
  "(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?|[Xx](?:-[A-Za-z0-9]{1,8})+|en-GB-oed|i-(?:ami|bnn|default|enochian|hak|klingon|lux|mingo|navajo|pwn|tao|tay|tsu)|sgn-(?:BE-FR|BE-NL|CH-DE))$";
