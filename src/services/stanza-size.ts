// The XMPP server closes the stream of a component that writes a stanza over its limit (Prosody's
// c2s/component stanza size limit, ejabberd's max_stanza_size), taking every stanza queued behind
// it down too: a use case refuses such a stanza before recording anything.
import { AppError } from "../domain/errors.js";
import type { Stanza } from "../domain/stanza.js";
import type { OutboundPort } from "./ports.js";

export type StanzaSizer = Pick<OutboundPort, "maxStanzaBytes" | "byteLength">;

/** Throws payload-too-large (413, naming `field`) when `stanza` would exceed MAX_STANZA_BYTES. */
export function assertFits(out: StanzaSizer, stanza: Stanza, field: string): void {
  const bytes = out.byteLength(stanza);
  if (bytes > out.maxStanzaBytes) throw new AppError("payload-too-large", `the message would be a ${bytes}-byte stanza; the limit is ${out.maxStanzaBytes} bytes`, { field });
}
