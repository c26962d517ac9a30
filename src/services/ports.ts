// What the use cases need from the outside world, owned here so that services depend on nothing
// but the domain and storage. src/xmpp/outbound.ts implements it over the component link; the
// service tests use a fake that records what it was handed.
import type { AnyTx } from "../db/client.js";
import type { Stanza } from "../domain/stanza.js";

/** How long OutboundPort.confirm() waits for the XMPP server before it answers false. */
export const CONFIRM_TIMEOUT_MS = 10_000;

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
   * (XEP-0114 has no acknowledgements; see XmppLink.barrier), false if the link dropped first or
   * no confirmation came within CONFIRM_TIMEOUT_MS.
   */
  confirm(): Promise<boolean>;
  /** Bytes written and not yet taken by the XMPP server (a server slower than us, or stalled). */
  readonly backlogBytes?: number;
  /** Resolves once backlogBytes is under `bytes`, the link is down, or `ms` passed. */
  writable?(bytes: number, ms: number): Promise<void>;
}

/**
 * How much may wait in the link's socket for the XMPP server: past it no message goes out directly
 * and the drain writes its next batch only once the server took what it was given. The messages
 * are durable in PostgreSQL: they wait there, not in memory (the load audit: 28 MiB for a stalled
 * server, without a bound). About 6,000 typical messages: a few batches of 1,000 written faster
 * than a busy server reads them stay on the direct path.
 */
export const LINK_BACKLOG_BYTES = 2 * 1024 * 1024;

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

/** One webhook attempt: POST `body` to `url`, signed with each secret (Standard Webhooks). */
export interface WebhookRequest {
  url: string;
  /** The webhook-id header. */
  msgId: string;
  body: string;
  /** The current secret first, then one in its rotation overlap. */
  secrets: string[];
}

/** What came of an attempt: a response (ok: any 2xx), or an error without one. */
export interface WebhookResult {
  ok: boolean;
  status: number | null;
  excerpt: string | null;
  error: string | null;
  ms: number;
  /** A failure's Retry-After, in ms from now (src/domain/webhooks.ts retryAfterMs); null without one. */
  retryAfterMs?: number | null;
}

/** Outbound HTTP for webhooks; src/webhook implements it. */
export interface WebhookPort {
  /** A new signing secret (`whsec_` + base64 of 32 random bytes). */
  newSecret(): string;
  /** Throws AppError webhook-target-forbidden (or validation-failed) unless every address of the URL's host is allowed. */
  checkTarget(url: string, field: string): Promise<void>;
  /** One attempt; never throws (failures are results). */
  post(req: WebhookRequest, signal: AbortSignal): Promise<WebhookResult>;
}

/** Whether this instance may write to the link now, and how its claims are fenced. */
export interface SendGate {
  readonly holder: boolean;
  /** No other instance writes to the link (single-link mode): the direct path is safe. */
  readonly exclusive: boolean;
  fence(): { key: [number, number]; pid: number } | null;
  /** Unfenced drains (XMPP_LINK_MODE=all): how long a step may sit idle before PostgreSQL ends it (it hung). */
  readonly drainIdleLimitMs: number;
}

/** What the insert of this instance's outbound messages found ahead of them (see Delivery.record()). */
export interface InsertCheck {
  /** Queued outbound messages ahead of the insert (counted up to the number asked), or null if not counted. */
  queuedBefore: number | null;
  /** Anything else ahead of them: a stanza in the outbox. */
  otherBefore: boolean;
}

/**
 * An account's blocklist as other use cases consult it (src/services/blocking.ts Blocking). Without
 * `tx` the list is this instance's cached copy (a block it holds confirmed by the committed list
 * where a stale one would lose something: confirmBlocks, assertNotBlocked); with it, the list as
 * that transaction reads it: a transaction holding the account lock (lockAccount) sees every block
 * committed before it, which a cached copy need not (PUT /v1/blocklist changes the list under the
 * same lock).
 */
export interface BlockCheck {
  /** Throws 400 blocked, naming `field`, when the account blocked `to`. */
  assertNotBlocked(accountId: number, to: string, field: string, tx?: AnyTx): Promise<void>;
  blocksJid(accountId: number, jid: string, tx?: AnyTx): Promise<boolean>;
  /**
   * Whether the account blocks `jid`, a cached "blocked" confirmed by the committed list (read in
   * `tx` if given) and a cached "not blocked" taken as it is: for what a stale block would lose.
   */
  confirmBlocks(accountId: number, jid: string, tx?: AnyTx): Promise<boolean>;
  /**
   * Reads the list into the cache unless it is there: before a transaction that checks many JIDs,
   * whose misses would each be read in it (a read on the pool could wait on the locks it holds).
   */
  warm(accountId: number): Promise<void>;
}

/** A blocklist with nothing on it. */
export const NO_BLOCKS: BlockCheck = { assertNotBlocked: async () => undefined, blocksJid: async () => false, confirmBlocks: async () => false, warm: async () => undefined };
