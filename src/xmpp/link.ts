// The component link (XEP-0114) to the XMPP server. Owns the connection and its reconnection
// with capped exponential backoff; everything else talks to it through `write`, `barrier` and
// the "stanza" / "online" / "offline" events (src/xmpp/outbound.ts wraps it as the outbound port).
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import pkg, { type Component } from "@xmpp/component";
import xml, { type Element } from "@xmpp/xml";
import { parseJid } from "../domain/jid.js";
import { NS } from "./ns.js";

const { component } = pkg;

/** Where a template stanza's id goes (see XmppLink.barrier). */
const ID_SLOT = "\u0001id\u0001";
/** Any instance's barrier ping id (pingPrefix, then a counter): checked before it is echoed in an answer. */
const ANY_PING_ID = /^barrier-[0-9a-f]{12}-[0-9a-z]{1,13}$/;
/** A barrier not answered within this pings again (see XmppLink.barrier). */
const REPING_MS = 250;
/** A server silent this long is pinged (see XmppLink.checkAlive), and the link taken for dead if the ping is unanswered this long. */
export const LINK_IDLE_MS = 15_000;
export const LINK_DEAD_MS = 10_000;
/** How often XmppLink.checkAlive runs (a multiple of the 2 s beats, sharing their wake-ups): a silent connection is closed within LINK_IDLE_MS + LINK_DEAD_MS and this. */
export const LINK_CHECK_MS = 4_000;

export interface LinkOptions {
  service: string;
  domain: string;
  secret: string;
  reconnectMaxMs: number;
  maxStanzaBytes: number;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export interface LinkEvents {
  stanza: [Element];
  online: [];
  offline: [];
}

/**
 * @xmpp/middleware builds a context for every element the link receives, parsing its from and to
 * with @xmpp/jid: 12% of the gateway's CPU at inbound throughput (bench/inbound.ts), for messages
 * and presence that no middleware of ours looks at. Its only users are the iq caller and callee,
 * so only iqs go through it (and not our own barrier pings: see XmppLink.barrier); everything
 * reaches the "stanza" listeners as before.
 */
function onlyIqsThroughMiddleware(xmpp: Component, ownPing: (el: Element) => boolean): void {
  const all = xmpp.listeners("element") as ((el: Element) => void)[];
  if (all.length !== 1) throw new Error(`expected @xmpp/middleware's one "element" listener, found ${all.length}`);
  const middleware = all[0]!;
  xmpp.off("element", middleware);
  xmpp.on("element", (el: Element) => {
    if (el.name === "iq" && !ownPing(el)) middleware(el);
  });
}

export class XmppLink extends EventEmitter<LinkEvents> {
  readonly xmpp: Component;
  private attempts = 0;
  private stopping = false;
  online = false;
  /** Barrier pings in flight, by id (see barrier()). */
  private readonly pings = new Map<string, (ok: boolean) => void>();
  /** Our barrier pings' ids: unguessable, so no one else's iq is taken for one. */
  private readonly pingPrefix = `barrier-${randomBytes(6).toString("hex")}-`;
  private pingCount = 0;
  /** Set when other instances share the component domain (see share()). */
  private relay: ((id: string) => void) | null = null;
  /** The ping and its answer, split where the id goes (ids are [0-9a-z-], nothing to escape). */
  private readonly pingText: [string, string];
  private readonly pongText: [string, string];
  /** When the server last sent anything on this connection (performance.now()). */
  private heard = 0;
  private probing = false;

  constructor(private readonly opts: LinkOptions) {
    super();
    this.xmpp = component({ service: opts.service, domain: opts.domain, password: opts.secret });
    const around = (el: Element) => el.toString().split(ID_SLOT) as [string, string];
    this.pingText = around(xml("iq", { type: "get", from: opts.domain, to: opts.domain, id: ID_SLOT }, xml("ping", { xmlns: NS.ping })));
    this.pongText = around(xml("iq", { type: "result", from: opts.domain, to: opts.domain, id: ID_SLOT }));
    onlyIqsThroughMiddleware(this.xmpp, (el) => this.ownPing(el));
    // @xmpp/iq answers from whatever an iq was addressed to. An XMPP server closes a component's
    // stream when it sends from an address outside its domain or a malformed one (RFC 6120
    // §4.9.3.11, improper-addressing), so a hostile "to" could cut the link: answer from our domain.
    const send = this.xmpp.send.bind(this.xmpp);
    this.xmpp.send = async (el: Element) => {
      const from = el.attrs.from;
      if (from !== undefined && parseJid(from)?.domain !== opts.domain) el.attrs.from = opts.domain;
      // An error reply MAY echo the original payload (RFC 6120 §8.3.1); a huge one must not cost the link.
      if (el.attrs.type === "error") el.children = el.children.filter((c) => typeof c !== "string" && c.name === "error");
      if (!this.fits(el.toString())) return;
      return send(el);
    };
    // Multi-byte characters split across TCP chunks must not be decoded chunk by chunk.
    this.xmpp.on("connect", () => this.xmpp.socket?.setEncoding("utf8"));
    // Runs before @xmpp/reconnect's own "disconnect" listener, so the delay it uses is ours:
    // 250 ms doubling up to the cap, with jitter so several instances do not reconnect in step.
    this.xmpp.prependListener("disconnect", () => {
      const base = Math.min(opts.reconnectMaxMs, 250 * 2 ** Math.min(this.attempts, 20));
      this.xmpp.reconnect.delay = Math.round(base * (0.75 + Math.random() * 0.25));
      this.attempts++;
    });
    this.xmpp.on("online", () => {
      // Stanzas and the barrier ping are small writes in quick succession: without this, Nagle's
      // algorithm holds the ping until the server's delayed ACK (~40 ms) of the stanzas before it.
      this.xmpp.socket?.setNoDelay(true);
      this.attempts = 0;
      this.heard = performance.now();
      this.online = true;
      opts.log.info({ domain: opts.domain, service: opts.service }, "component link online");
      this.emit("online");
    });
    this.xmpp.on("offline", () => this.wentDown());
    this.xmpp.on("disconnect", () => this.wentDown());
    this.xmpp.on("error", (err: Error) => {
      if (!this.stopping) opts.log.warn({ err: err.message }, "component link error");
      // <conflict/> (RFC 6120 §4.9.3.3) on a connection that was up: the server replaced it with a
      // new one of the component (Prosody's component_conflict_resolve = "kick_old"), another
      // instance's that took the link over. Reconnecting would kick that one in turn: stay down
      // until start(). A conflict during the handshake ("kick_new": the old connection is still
      // there) is retried as usual, so a holder that follows a dead one connects once it is gone.
      if ((err as { condition?: string }).condition === "conflict" && this.online && !this.stopping) void this.stop();
    });
    this.xmpp.on("stanza", (el: Element) => this.emit("stanza", el));
    this.xmpp.on("element", () => (this.heard = performance.now()));
  }

  /**
   * Whether the server is still there (run every few seconds). A connection can go silent without
   * closing (a network partition, a NAT or firewall that forgot it, a hung server): the kernel
   * keeps it open for many minutes, the link reads online, its holder keeps the lease and what is
   * queued never goes out. So a server silent for `idleMs` is pinged (a barrier); unanswered
   * within `deadMs`, the connection is closed, and the link reconnects as after any drop (and,
   * still down past XMPP_LINK_DOWN_GRACE, its holder hands the lease over: src/services/link-control.ts).
   */
  checkAlive(idleMs = LINK_IDLE_MS, deadMs = LINK_DEAD_MS): void {
    // Silent because we stopped reading (inbound back-pressure, src/xmpp/inbound.ts): not the server's silence.
    if (!this.online || this.probing || this.xmpp.socket?.isPaused() || performance.now() - this.heard < idleMs) return;
    this.probing = true;
    const socket = this.xmpp.socket;
    void this.barrier(deadMs).then((ok) => {
      this.probing = false;
      if (ok || !this.online || this.xmpp.socket !== socket) return;
      this.opts.log.warn({ domain: this.opts.domain, silentMs: Math.round(performance.now() - this.heard) }, "component link unresponsive: closing it to connect again");
      socket?.destroy();
    });
  }

  private wentDown(): void {
    // Barriers in flight can no longer be answered: what they cover may not have been routed.
    for (const settle of [...this.pings.values()]) settle(false);
    if (!this.online) return;
    this.online = false;
    // Closed by stop() (a shutdown, the lease handed over): no warning.
    if (this.stopping) this.opts.log.info({ domain: this.opts.domain }, "component link closed");
    else this.opts.log.warn({ domain: this.opts.domain }, "component link down");
    this.emit("offline");
  }

  /** Connects (again, after stop()); if the server is not there yet, keeps trying in the background. */
  async start(): Promise<void> {
    if (this.stopping) {
      this.stopping = false;
      this.xmpp.reconnect.start();
    }
    try {
      await this.xmpp.start();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, "component link not up yet; retrying");
      if (this.xmpp.status === "offline" || this.xmpp.status === "disconnect") this.xmpp.reconnect.scheduleReconnect?.();
    }
  }

  get maxStanzaBytes(): number {
    return this.opts.maxStanzaBytes;
  }

  /** Whether a serialized stanza is within the size the server accepts; logs the ones that are not. */
  fits(stanza: string): boolean {
    // Cheap bound first: a UTF-16 code unit is at most 3 bytes of UTF-8.
    if (stanza.length * 3 <= this.opts.maxStanzaBytes || Buffer.byteLength(stanza) <= this.opts.maxStanzaBytes) return true;
    this.opts.log.warn({ bytes: Buffer.byteLength(stanza), limit: this.opts.maxStanzaBytes, head: stanza.slice(0, 200) }, "stanza over MAX_STANZA_BYTES not sent");
    return false;
  }

  /**
   * Writes serialized stanzas in one socket write. Returns false (writes nothing) when offline.
   * Oversized stanzas are left out (callers check sizes first; this is the last line of defence).
   */
  write(stanzas: string[]): boolean {
    const socket = this.xmpp.socket;
    if (!this.online || !socket || socket.destroyed || stanzas.length === 0) return this.online && stanzas.length === 0;
    // XML parsers turn a literal CR into LF (XML 1.0 §2.11) and @xmpp/xml does not escape it: write
    // it as a character reference so "\r" in a body arrives as "\r".
    const out = stanzas.filter((s) => this.fits(s)).join("");
    socket.write(out.includes("\r") ? out.replace(/\r/g, "&#xD;") : out);
    return true;
  }

  /**
   * XEP-0114 has no acknowledgements, so a stanza written just before the server goes down may
   * never be routed. This is the acknowledgement: a ping (XEP-0199) from our domain to our own
   * domain travels through the server's router behind everything written before it, comes back to
   * us, and our answer comes back too. True once it has; false if the link dropped or the server
   * did not answer in time. Under steady load the direct path sends one every few milliseconds,
   * so both legs are plain strings handled here (ownPing), not through @xmpp/iq and its middleware.
   *
   * Unanswered for REPING_MS, the barrier pings again, and any of its pings answered settles it:
   * the server processes a connection's stanzas in order (RFC 6120 §10.1), so each ping is behind
   * everything the first was. ejabberd balances our domain's traffic over every connection of the
   * component, a hung instance's too (its kernel keeps the TCP connection open), and either leg of
   * a ping may end there; without another ping the barrier timed out and its batch went out twice.
   */
  barrier(timeoutMs = 10_000): Promise<boolean> {
    if (!this.online) return Promise.resolve(false);
    const deadline = performance.now() + timeoutMs;
    return new Promise<boolean>((resolve) => {
      const ids: string[] = [];
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        for (const id of ids) this.pings.delete(id);
        resolve(ok);
      };
      const ping = () => {
        const id = `${this.pingPrefix}${(++this.pingCount).toString(36)}`;
        ids.push(id);
        this.pings.set(id, settle);
        if (!this.write([this.pingText.join(id)])) settle(false);
      };
      // One timer at a time: the next ping, or the deadline.
      const tick = () => {
        const left = deadline - performance.now();
        if (left <= 0) return settle(false);
        ping();
        if (!settled) timer = setTimeout(tick, Math.min(REPING_MS, left));
      };
      ping();
      if (!settled) timer = setTimeout(tick, Math.min(REPING_MS, timeoutMs));
    });
  }

  /**
   * Other instances hold connections of the same component domain (XMPP_LINK_MODE=all): the
   * server balances stanzas to the domain over all of them, so a barrier ping, and its answer,
   * may land on any instance's link. From now on this link answers every instance's pings, and
   * hands `relay` the id of an answer to another instance's ping (the owner's answered()).
   */
  share(relay: (id: string) => void): void {
    this.relay = relay;
  }

  /** Another instance received the answer to one of our pings (see share()). */
  answered(id: string): void {
    if (id.startsWith(this.pingPrefix)) this.pings.get(id)?.(true);
  }

  /**
   * Our own barrier ping or its answer (true: handled here). Only we can send from our domain:
   * the server stamps the sender's address on everything its clients and peers send.
   */
  private ownPing(el: Element): boolean {
    const { id, type, from } = el.attrs as Record<string, string | undefined>;
    if (from !== this.opts.domain || !id) return false;
    if (!id.startsWith(this.pingPrefix)) return this.relay !== null && this.sharedPing(id, type);
    if (type === "get") this.write([this.pongText.join(id)]);
    else this.pings.get(id)?.(type === "result");
    return true;
  }

  /**
   * Another instance's barrier ping or its answer, routed to this link (see share()). The ping
   * proves its owner's stanzas were routed whoever answers it (the server processes a connection's
   * stanzas in order, RFC 6120 §10.1), so it is answered here; the answer goes to its owner. An
   * error answer is not relayed: the owner's barrier times out and fails, as it would have.
   */
  private sharedPing(id: string, type: string | undefined): boolean {
    if (!ANY_PING_ID.test(id)) return false;
    if (type === "get") this.write([this.pongText.join(id)]);
    else if (type === "result") this.relay?.(id);
    return true;
  }

  /** Disconnects and stays disconnected until start(); waiters on the link see it go down at once. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.xmpp.reconnect.stop();
    this.wentDown();
    // The bound is cleared once stopped: a pending timer would keep a process that has nothing else to do alive 2 s.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([this.xmpp.stop().catch(() => undefined), new Promise((r) => (bound = setTimeout(r, 2000)))]);
    clearTimeout(bound);
  }
}
