// The outbound port (src/services/ports.ts) over the component link: renders stanzas described
// as data and writes them, in order, in one socket write.
import type { Stanza } from "../domain/stanza.js";
import { CONFIRM_TIMEOUT_MS, type OutboundPort } from "../services/ports.js";
import type { XmppLink } from "./link.js";
import { renderText } from "./render.js";

export class XmppOutbound implements OutboundPort {
  constructor(private readonly link: XmppLink) {}

  get online(): boolean {
    return this.link.online;
  }

  get maxStanzaBytes(): number {
    return this.link.maxStanzaBytes;
  }

  byteLength(stanza: Stanza): number {
    return Buffer.byteLength(renderText(stanza));
  }

  write(stanzas: readonly Stanza[]): Stanza[] | null {
    if (!this.link.online) return null;
    const refused: Stanza[] = [];
    const out: string[] = [];
    for (const s of stanzas) {
      const text = renderText(s);
      if (this.link.fits(text)) out.push(text);
      else refused.push(s);
    }
    return this.link.write(out) ? refused : null;
  }

  confirm(): Promise<boolean> {
    return this.link.barrier(CONFIRM_TIMEOUT_MS);
  }
}
