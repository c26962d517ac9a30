// Where RFC 7622 (PRECIS, which Balcony prepares JIDs with: src/domain/jid.ts) and RFC 6122
// (stringprep's nodeprep, which Prosody and ejabberd still prepare localparts with) disagree on a
// localpart both accept: nodeprep case-folds (RFC 3454 §3.2, table B.2) where PRECIS lowercases
// (RFC 8265 §3.3.2). "straße" stays "straße" here but is "strasse" on such a server, a final
// sigma "ς" is "σ" there, and a Greek letter with a subscript iota ("ᾀ") is two letters ("ἀι").
// A room such a server knows by another name answers a join from that name, never from ours.
// Resourceparts differ too: stringprep's resourceprep maps compatibility characters to their plain
// forms (NFKC) where PRECIS's OpaqueString keeps them (RFC 7622 §3.4).
import { AppError } from "./errors.js";
import { jidToString, type Jid } from "./jid.js";

/**
 * The localpart as nodeprep case-folds it. JavaScript has no case folding: each character is
 * upper- then lowercased (Unicode's full case mappings, so "ß" goes to "SS" and back to "ss"),
 * which folds every letter PRECIS lets through as table B.2 does but two: the dotless "ı", which
 * folding leaves be (this would make it "i"), and the final sigma, which lowercasing keeps at the
 * end of a word and folding makes "σ". A PRECIS localpart holds no compatibility character, so
 * NFC is NFKC here.
 */
export function nodeprepFolded(local: string): string {
  let out = "";
  for (const c of local) out += c === "ı" ? c : c === "ς" ? "σ" : c.toUpperCase().toLowerCase();
  return out.normalize("NFC");
}

/** RFC 3454 table B.1, "commonly mapped to nothing": soft hyphen, zero-width joiners and spaces, variation selectors, the BOM. */
const MAPPED_TO_NOTHING = new Set([0xad, 0x34f, 0x1806, 0x180b, 0x180c, 0x180d, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, ...Array.from({ length: 16 }, (_, i) => 0xfe00 + i)]);

/**
 * The resourcepart as resourceprep (RFC 6122 Appendix B) makes it: no case mapping, table B.1's
 * characters gone, then NFKC. "ｐｈｏｎｅ" (full width) is "phone" there, "phone²" is "phone2": a
 * session so named is another resource to such a server, and what is sent to it does not reach it.
 */
export function resourceprepFolded(resource: string): string {
  let kept = "";
  for (const c of resource) if (!MAPPED_TO_NOTHING.has(c.codePointAt(0)!)) kept += c;
  return kept.normalize("NFKC");
}

/**
 * 400 invalid-jid unless such a server spells `ours` as it is (`theirs`: one of the folds above),
 * naming `field`, and the server's spelling under `name` (localpart, room, resource); `loss`: what
 * would go wrong under ours.
 */
export function assertSpeltAlike(ours: string, theirs: string, field: string, name: string, loss: string): void {
  if (theirs === ours) return;
  throw new AppError("invalid-jid", `${field}: XMPP servers that prepare JIDs with stringprep (RFC 6122, as Prosody does) call "${ours}" "${theirs}": ${loss}; use "${theirs}"`, { field, [name]: theirs });
}

/**
 * 400 invalid-jid for an address on such a server whose localpart it spells otherwise, naming its
 * spelling of the whole address under `jid`: it knows the user by that name, and what comes back
 * from her (receipts, errors, replies, her presence) comes from it, never from ours.
 */
export function assertAddressSpeltAlike(jid: Jid, field: string, loss: string): void {
  if (jid.local !== undefined) assertSpeltAlike(jidToString(jid), jidToString({ ...jid, local: nodeprepFolded(jid.local) }), field, "jid", loss);
}
