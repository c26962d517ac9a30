// What the use cases need from the outside world, owned here so that services depend on nothing
// but the domain and storage. src/xmpp/outbound.ts implements it over the component link; the
// service tests use a fake that records what it was handed.
import type { Stanza } from "../domain/stanza.js";

export interface OutboundPort {
  /** Whether the component link is up now. */
  readonly online: boolean;
  /** Largest stanza the XMPP server accepts from us, in bytes (MAX_STANZA_BYTES). */
  readonly maxStanzaBytes: number;
  /** The size of a stanza on the wire, in bytes. */
  byteLength(stanza: Stanza): number;
  /**
   * Writes stanzas, in order, in one write. Returns null (and writes nothing) when the link is
   * down; otherwise the stanzas it refused to write (not renderable, or over the size limit).
   */
  write(stanzas: readonly Stanza[]): Stanza[] | null;
  /**
   * Resolves true once everything written before the call has been routed by the XMPP server
   * (XEP-0114 has no acknowledgements; see XmppLink.barrier), false if the link dropped first.
   */
  confirm(): Promise<boolean>;
}

/** Counters the use cases report (the HTTP adapter exposes them as Prometheus metrics). */
export interface ServiceMetrics {
  messagesAccepted(n: number): void;
  messagesWritten(n: number): void;
}

export interface ServiceLog {
  debug(o: object, m: string): void;
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}
