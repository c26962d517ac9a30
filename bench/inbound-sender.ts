// The sending XMPP user of bench/inbound.ts: a real c2s client (@xmpp/client, SASL PLAIN on the
// test server's plaintext port) that writes pre-serialized <message/> stanzas on its socket,
// either as fast as the server takes them (socket back-pressure) or on a fixed schedule.
import type { Socket } from "node:net";
import { plainClient, type XmppClient } from "../scripts/harness/xmpp-user.js";
import { now, sleep } from "./lib/util.js";

export interface SenderOptions {
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
}

export interface SendResult {
  /** When each stanza was handed to the socket (ms since the epoch). */
  sendTimes: Float64Array;
  /** First write. */
  t0: number;
  /** The socket took the last write. */
  written: number;
  /** Paced sends: the worst lateness of a write behind its schedule, ms. */
  maxLagMs: number;
}

function waitDrain(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("sender socket closed while writing"));
    socket.on("drain", onDrain);
    socket.on("close", onClose);
  });
}

export class Sender {
  /** Stanzas the server sent back, by kind: "message type=error", "message", "presence", … */
  readonly received: Record<string, number> = {};
  readonly errors: string[] = [];

  private constructor(private readonly xmpp: XmppClient) {}

  static async start(opts: SenderOptions): Promise<Sender> {
    const xmpp = plainClient(opts);
    const sender = new Sender(xmpp);
    xmpp.on("stanza", (s) => {
      const kind = `${s.name}${s.attrs.type ? ` type=${s.attrs.type}` : ""}`;
      sender.received[kind] = (sender.received[kind] ?? 0) + 1;
    });
    xmpp.on("error", (e) => sender.errors.push(e.message));
    await xmpp.start();
    xmpp.socket?.setNoDelay(true);
    return sender;
  }

  get jid(): string {
    return String(this.xmpp.jid);
  }

  private get socket(): Socket {
    const socket = this.xmpp.socket;
    if (!socket || socket.destroyed) throw new Error("the sender is not connected");
    return socket;
  }

  /** Writes the stanzas `chunk` at a time, as fast as the socket takes them. */
  async blast(stanzas: string[], chunk: number, aborted: () => boolean): Promise<SendResult> {
    const socket = this.socket;
    const sendTimes = new Float64Array(stanzas.length);
    const t0 = now();
    for (let i = 0; i < stanzas.length && !aborted(); i += chunk) {
      const t = now();
      const end = Math.min(stanzas.length, i + chunk);
      sendTimes.fill(t, i, end);
      if (!socket.write(stanzas.slice(i, end).join(""))) await waitDrain(socket);
    }
    return { sendTimes, t0, written: now(), maxLagMs: 0 };
  }

  /**
   * Open loop: stanza i is due at start + i / rate, whatever happened to the ones before; each is
   * written at its time (those found late are written together at once).
   */
  async paced(stanzas: string[], rate: number, aborted: () => boolean): Promise<SendResult> {
    const socket = this.socket;
    const interval = 1000 / rate;
    const sendTimes = new Float64Array(stanzas.length);
    const start = now() + 5;
    let maxLagMs = 0;
    let i = 0;
    while (i < stanzas.length && !aborted()) {
      const t = now();
      const due = Math.min(stanzas.length, Math.floor((t - start) / interval) + 1);
      if (due > i) {
        sendTimes.fill(t, i, due);
        maxLagMs = Math.max(maxLagMs, t - (start + i * interval));
        socket.write(due - i === 1 ? stanzas[i]! : stanzas.slice(i, due).join(""));
        i = due;
        continue;
      }
      await sleep(Math.max(0, start + i * interval - now()));
    }
    return { sendTimes, t0: start, written: now(), maxLagMs };
  }

  async stop(): Promise<void> {
    await Promise.race([this.xmpp.stop().catch(() => undefined), sleep(3000)]);
  }
}
