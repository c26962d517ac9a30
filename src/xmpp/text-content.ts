// Reads language-tagged text children (<body/>, <subject/>, <status/>) of a stanza, per
// RFC 6121 §5.2.3 / §4.7.2.2: a plain string when there is one in the stanza's language,
// otherwise a map from xml:lang to text.
import type { Element } from "@xmpp/xml";
import type { LangText } from "../domain/message.js";

export function readLangText(stanza: Element, name: "body" | "subject" | "status"): LangText | null {
  const els = stanza.getChildren(name);
  if (els.length === 0) return null;
  const stanzaLang = stanza.attrs["xml:lang"];
  if (els.length === 1 && (els[0]!.attrs["xml:lang"] ?? stanzaLang) === stanzaLang) return els[0]!.text();
  const out: Record<string, string> = {};
  for (const el of els) out[el.attrs["xml:lang"] ?? stanzaLang ?? "und"] = el.text();
  return out;
}
