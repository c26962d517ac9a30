// A fake OutboundPort (src/services/ports.ts) for the service tests: no XMPP server, no rendering.
// Use cases never write to it themselves: they record stanzas, and Delivery drains them here in
// sequence order. It records every stanza it accepts, as data and in order, so a test can assert
// exactly what reached the link. Its knobs stand in for the link's states: `online` (link up or
// down: Delivery does not drain while it is false), `maxStanzaBytes` (the server's limit) and
// `confirms` (what the next confirm() answers: false makes Delivery roll the batch back).
import type { Stanza } from "../../src/domain/stanza.js";
import type { OutboundPort } from "../../src/services/ports.js";

export class FakeOutbound implements OutboundPort {
  /** Whether the link is up. While false, write() returns null and records nothing. */
  online = true;
  /** The server's stanza limit; write() refuses (and does not record) larger stanzas, as the real port does. */
  maxStanzaBytes = 256 * 1024;
  /** What confirm() resolves to: true = the server routed everything, false = the link dropped first. */
  confirms = true;
  /** Every stanza written, in order (deep copies, as they were at the time of the write). */
  readonly sent: Stanza[] = [];
  /** Stanzas write() refused because they were over maxStanzaBytes. */
  readonly refused: Stanza[] = [];
  /** Accepted write() calls (one per batch Delivery drained, even an empty one). */
  writes = 0;
  /** confirm() calls. */
  confirmCalls = 0;

  /**
   * An approximation of the wire size: the length of the stanza's JSON, in UTF-16 code units. The
   * real port renders XML and counts UTF-8 bytes; tests that need the limit use ASCII text, for
   * which the JSON is a close enough stand-in (it has the same text plus some fixed overhead).
   */
  byteLength(stanza: Stanza): number {
    return JSON.stringify(stanza).length;
  }

  write(stanzas: readonly Stanza[]): Stanza[] | null {
    if (!this.online) return null;
    this.writes++;
    const refused: Stanza[] = [];
    for (const s of stanzas) {
      if (this.byteLength(s) > this.maxStanzaBytes) {
        refused.push(s);
        this.refused.push(structuredClone(s));
      } else {
        this.sent.push(structuredClone(s));
      }
    }
    return refused;
  }

  confirm(): Promise<boolean> {
    this.confirmCalls++;
    return Promise.resolve(this.confirms);
  }

  /** Returns what was recorded so far and forgets it. */
  take(): Stanza[] {
    return this.sent.splice(0);
  }

  /** Back to a connected, empty, confirming port with the default limit. */
  reset(): void {
    this.online = true;
    this.maxStanzaBytes = 256 * 1024;
    this.confirms = true;
    this.sent.length = 0;
    this.refused.length = 0;
    this.writes = 0;
    this.confirmCalls = 0;
  }
}
