// The ways the message benchmark sends messages, each in two modes: as fast as allowed (closed
// loop: `concurrency` requests in flight, the next one starts when one is answered) and at a fixed
// arrival rate (open loop: message i starts at t0 + i/rate whatever happened to the ones before,
// so a stalled server cannot slow the arrivals down and hide its queue; latency counts from the
// actual start, at most ~1 ms after the scheduled one, and the worst lateness is reported).
//
//   - a raw XEP-0114 component writing stanzas on its socket (the ceiling);
//   - HTTP APIs over keep-alive connections (undici Pool): Balcony's POST /v1/messages and
//     POST /v1/messages/batch, ejabberd's mod_http_api send_message, Prosody's mod_rest.
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import pkg from "@xmpp/component";
import { Pool } from "undici";
import { renderText } from "../../src/xmpp/render.js";
import { isAborting, onCleanup } from "./lifecycle.js";
import { openLoop } from "./pace.js";
import { now, sleep, withTimeout } from "./util.js";

const { component } = pkg;

export interface SendOutcome {
  /** Key (body text) → start time (ms) of every message the other side accepted. */
  accepted: Map<string, number>;
  /** Per answered request: start → answer (ms). Empty for the component. */
  answerMs: number[];
  /** "HTTP 202", "HTTP 404", "error ECONNRESET", "written", … → count of messages. */
  outcomes: Record<string, number>;
  sampleError: string | undefined;
  firstStart: number;
  /** The last answer (or the last socket write accepted). */
  lastAnswer: number;
  /** Fixed rate only: how late the sender started messages behind schedule, max (ms). */
  maxLagMs: number;
}

export interface Sender {
  /** Messages per request (1; up to 1,000 for the batch API). */
  readonly perRequest: number;
  throughput(bodies: string[], concurrency: number): Promise<SendOutcome>;
  fixedRate(bodies: string[], rate: number): Promise<SendOutcome>;
  close(): Promise<void>;
}

function newOutcome(): SendOutcome {
  const t = now();
  return { accepted: new Map(), answerMs: [], outcomes: {}, sampleError: undefined, firstStart: t, lastAnswer: t, maxLagMs: 0 };
}

const count = (o: SendOutcome, k: string, n = 1) => (o.outcomes[k] = (o.outcomes[k] ?? 0) + n);

const schedule = (n: number, rate: number, fire: (i: number, start: number) => void) => openLoop(n, rate, fire, isAborting);

// ---------------------------------------------------------------------------------------------
// The ceiling: a raw component

function waitDrain(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      socket.off("drain", onDrain);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("component socket closed while writing"));
    socket.on("drain", onDrain);
    socket.on("close", onClose);
  });
}

/**
 * The stanza Balcony sends for the bench's message (`POST /v1/messages {to, body}`), from the
 * gateway's own renderer: a chat message with an id, XEP-0333's markable (on by default for chat)
 * and a XEP-0359 origin-id. The ceiling writes exactly what the gateway would.
 */
export function ceilingStanza(from: string, to: string, body: string, id: string = randomUUID()): string {
  return renderText({ kind: "message", id, from, to, type: "chat", body, subject: null, thread: null, lang: null, receipt: false, state: null, ext: null });
}

/** Stanzas per socket write in the throughput runs. */
const CEILING_CHUNK = 256;

export class ComponentSender implements Sender {
  readonly perRequest = 1;
  /** Error stanzas received (bounces) since start. */
  bounced = 0;
  #stopped = false;

  private constructor(
    private readonly xmpp: ReturnType<typeof component>,
    private readonly socket: Socket,
    private readonly from: string,
    private readonly to: string,
  ) {}

  static async start(service: string, domain: string, password: string, to: string): Promise<ComponentSender> {
    const xmpp = component({ service, domain, password });
    xmpp.on("error", () => undefined);
    await withTimeout(xmpp.start(), 10_000, "raw component login");
    const socket = xmpp.socket as Socket | undefined;
    if (!socket) throw new Error("raw component has no socket");
    const sender = new ComponentSender(xmpp, socket, `bench@${domain}`, to);
    xmpp.on("stanza", (el: { attrs: Record<string, string | undefined> }) => {
      if (el.attrs.type === "error") sender.bounced++;
    });
    onCleanup("raw component", () => sender.close());
    return sender;
  }

  async throughput(bodies: string[]): Promise<SendOutcome> {
    const o = newOutcome();
    for (let i = 0; i < bodies.length && !isAborting(); i += CEILING_CHUNK) {
      const chunk = bodies.slice(i, i + CEILING_CHUNK);
      const start = now();
      const text = chunk.map((b) => ceilingStanza(this.from, this.to, b)).join("");
      for (const b of chunk) o.accepted.set(b, start);
      if (!this.socket.write(text)) await waitDrain(this.socket);
    }
    count(o, "written", o.accepted.size);
    o.lastAnswer = now();
    return o;
  }

  async fixedRate(bodies: string[], rate: number): Promise<SendOutcome> {
    const o = newOutcome();
    o.maxLagMs = await schedule(bodies.length, rate, (i, start) => {
      const body = bodies[i]!;
      o.accepted.set(body, start);
      this.socket.write(ceilingStanza(this.from, this.to, body));
    });
    count(o, "written", o.accepted.size);
    o.lastAnswer = now();
    return o;
  }

  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.xmpp.reconnect.stop();
    await Promise.race([this.xmpp.stop().catch(() => undefined), sleep(3000)]);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP APIs

export interface HttpApi {
  readonly perRequest: number;
  /** The request carrying these messages. */
  request(bodies: string[]): { path: string; headers: Record<string, string>; body: string };
  /** Which of the messages the answer accepted (indexes into `bodies`), and an outcome label each. */
  accepted(status: number, text: string, bodies: string[]): { index: number; label: string }[];
}

export class HttpSender implements Sender {
  readonly perRequest: number;
  #pool: Pool;
  #closed = false;

  constructor(
    origin: string,
    private readonly api: HttpApi,
    connections: number,
  ) {
    this.perRequest = api.perRequest;
    this.#pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    onCleanup("HTTP pool", () => this.close());
  }

  async #one(bodies: string[], start: number, o: SendOutcome): Promise<void> {
    const req = this.api.request(bodies);
    try {
      const res = await this.#pool.request({ method: "POST", path: req.path, headers: req.headers, body: req.body });
      const text = await res.body.text();
      const answered = now();
      o.answerMs.push(answered - start);
      if (answered > o.lastAnswer) o.lastAnswer = answered;
      const ok = this.api.accepted(res.statusCode, text, bodies);
      for (const { index, label } of ok) {
        o.accepted.set(bodies[index]!, start);
        count(o, label);
      }
      if (ok.length < bodies.length) {
        count(o, `HTTP ${res.statusCode} (refused)`, bodies.length - ok.length);
        o.sampleError ??= `HTTP ${res.statusCode}: ${text.slice(0, 300)}`;
      }
    } catch (error) {
      const e = error as Error & { code?: string };
      count(o, `error ${e.code ?? e.name}`, bodies.length);
      o.sampleError ??= e.message;
    }
  }

  #requests(bodies: string[]): string[][] {
    const out: string[][] = [];
    for (let i = 0; i < bodies.length; i += this.perRequest) out.push(bodies.slice(i, i + this.perRequest));
    return out;
  }

  async throughput(bodies: string[], concurrency: number): Promise<SendOutcome> {
    const o = newOutcome();
    const requests = this.#requests(bodies);
    let next = 0;
    const worker = async () => {
      while (next < requests.length && !isAborting()) {
        const r = requests[next++]!;
        await this.#one(r, now(), o);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
    return o;
  }

  async fixedRate(bodies: string[], rate: number): Promise<SendOutcome> {
    const o = newOutcome();
    const requests = this.#requests(bodies);
    const inFlight: Promise<void>[] = [];
    o.maxLagMs = await schedule(requests.length, rate / this.perRequest, (i, start) => {
      inFlight.push(this.#one(requests[i]!, start, o));
    });
    await Promise.all(inFlight);
    return o;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }
}

const JSON_HEADERS = { "content-type": "application/json" };

/** Balcony's POST /v1/messages: one message per request, 202 when durable. */
export function balconyApi(token: string, to: string): HttpApi {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${token}` };
  return {
    perRequest: 1,
    request: ([body]) => ({ path: "/v1/messages", headers, body: JSON.stringify({ to, body }) }),
    accepted: (status, text) => {
      if (status !== 202) return [];
      const json = JSON.parse(text) as { status?: string };
      return [{ index: 0, label: `202 ${json.status ?? ""}`.trim() }];
    },
  };
}

/** Balcony's POST /v1/messages/batch: up to 1,000 messages per request, 200 with one result each. */
export function balconyBatchApi(token: string, to: string, perRequest: number): HttpApi {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${token}` };
  return {
    perRequest,
    request: (bodies) => ({ path: "/v1/messages/batch", headers, body: JSON.stringify({ messages: bodies.map((body) => ({ to, body })) }) }),
    accepted: (status, text, bodies) => {
      if (status !== 200) return [];
      const json = JSON.parse(text) as { results?: { id?: string; status?: string | number }[] };
      const results = json.results ?? [];
      const ok: { index: number; label: string }[] = [];
      for (let i = 0; i < bodies.length; i++) {
        const r = results[i];
        // A problem object has a numeric status and no id; an accepted message has an id.
        if (r && typeof r.id === "string" && typeof r.status === "string") ok.push({ index: i, label: `batch ${r.status}` });
      }
      return ok;
    },
  };
}

/** ejabberd's mod_http_api send_message (mod_admin_extra): 200 "0" when routed. */
export function ejabberdSendMessageApi(from: string, to: string): HttpApi {
  return {
    perRequest: 1,
    request: ([body]) => ({ path: "/api/send_message", headers: JSON_HEADERS, body: JSON.stringify({ type: "chat", from, to, subject: "", body }) }),
    accepted: (status) => (status === 200 ? [{ index: 0, label: "200" }] : []),
  };
}

/** Prosody's mod_rest (prosody-modules) on a component: Basic auth with the component's secret, 202. */
export function modRestApi(path: string, domain: string, secret: string, to: string): HttpApi {
  const headers = { ...JSON_HEADERS, authorization: `Basic ${Buffer.from(`${domain}:${secret}`).toString("base64")}` };
  return {
    perRequest: 1,
    request: ([body]) => ({ path, headers, body: JSON.stringify({ kind: "message", type: "chat", to, body }) }),
    accepted: (status) => (status === 202 || status === 200 ? [{ index: 0, label: String(status) }] : []),
  };
}
