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

  /** Bytes written to the link's socket that the XMPP server has not read yet. */
  get backlogBytes(): number {
    return this.link.xmpp.socket?.writableLength ?? 0;
  }

  /** Resolves once fewer than `bytes` wait in the socket (its "drain"), the link is down, or `ms` passed. */
  writable(bytes: number, ms: number): Promise<void> {
    const socket = this.link.xmpp.socket;
    if (!this.link.online || !socket || socket.destroyed || socket.writableLength < bytes) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        socket.off("drain", done).off("close", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      socket.on("drain", done).on("close", done);
    });
  }
}
