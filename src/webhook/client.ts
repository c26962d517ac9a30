// The webhook adapter's HTTP side: one undici Agent (keep-alive pools per origin) for every
// endpoint. Each connection resolves its host through a guarded lookup, so the address connected
// to is the address checked (a DNS answer that changed since the webhook was created, to a private
// address, is refused at delivery time). Redirects are not followed: a 3xx is a failed attempt.
import type { LookupAddress, LookupOptions } from "node:dns";
import { EventEmitter } from "node:events";
import { lookup as dnsLookupAll } from "node:dns/promises";
import { Agent } from "undici";
import { AppError } from "../domain/errors.js";
import { forbiddenName, forbiddenRange, ipLiteral, reservedAddresses, type AllowList } from "../domain/webhook-target.js";
import { RESPONSE_EXCERPT_BYTES, retryAfterMs, urlProblem } from "../domain/webhooks.js";
import type { WebhookPort, WebhookRequest, WebhookResult } from "../services/ports.js";
import { newSecret, signatures } from "./sign.js";

/** How much of a response body is read (then the connection is dropped rather than drained). */
const DRAIN_BYTES = 64 * 1024;
/** How long the lookup of a new target may take before the target is accepted unresolved. */
const TARGET_LOOKUP_MS = 2000;

/** Every address of a host (dns.lookup with all: true); tests stand in for DNS answers that change. */
export type Resolve = (hostname: string, options: LookupOptions) => Promise<LookupAddress[]>;
const systemResolve: Resolve = (hostname, options) => dnsLookupAll(hostname, { ...options, all: true });

class TargetForbidden extends Error {
  readonly code = "EWEBHOOKTARGET";
}

function refusal(host: string, address: string, range: string): string {
  return `${host} resolves to ${address} (${range}): webhooks may not reach loopback, private, link-local or metadata addresses (WEBHOOK_ALLOW_PRIVATE)`;
}

function nameRefusal(host: string): string {
  return `${host} is a cloud metadata service: webhooks may not reach loopback, private, link-local or metadata addresses (WEBHOOK_ALLOW_PRIVATE)`;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup for net.connect that refuses hosts with any forbidden address. */
function guardedLookup(allow: AllowList, resolve: Resolve) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const answer = (addresses: LookupAddress[]): void => {
      for (const a of addresses) {
        const range = forbiddenRange(a.address, allow);
        if (range) return callback(new TargetForbidden(refusal(hostname, a.address, range)), []);
      }
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), []);
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    };
    // A metadata name is refused whatever it resolves to (or whether it does), as at creation.
    if (forbiddenName(hostname, allow)) return callback(new TargetForbidden(nameRefusal(hostname)), []);
    resolve(hostname, options).then(answer, (err: NodeJS.ErrnoException) => callback(err, []));
  };
}

/**
 * Up to RESPONSE_EXCERPT_BYTES of a body, as text Postgres can store. A body cut short (the
 * attempt's deadline, the peer going away) gives what came: the status line decided the attempt.
 */
async function excerpt(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const kept: Buffer[] = [];
  let read = 0;
  try {
    for await (const chunk of body) {
      if (read < RESPONSE_EXCERPT_BYTES) kept.push(chunk.subarray(0, RESPONSE_EXCERPT_BYTES - read));
      read += chunk.length;
      if (read > DRAIN_BYTES) {
        body.destroy();
        break;
      }
    }
  } catch {
    body.destroy();
  }
  return Buffer.concat(kept).toString("utf8").replaceAll("\u0000", "");
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT" || e.code === "UND_ERR_CONNECT_TIMEOUT") {
    return `timeout: no response status within ${timeoutMs} ms`;
  }
  if (e.name === "AbortError") return "aborted: the gateway is shutting down";
  const inner = e.cause ?? e;
  if (inner.code === "EWEBHOOKTARGET") return `target-forbidden: ${inner.message}`;
  return `${inner.code ?? e.code ?? "error"}: ${inner.message ?? e.message ?? String(err)}`.slice(0, 500);
}

/** A request in flight: when it times out, and how to cancel it (undici takes an EventEmitter as its signal). */
interface InFlight {
  deadline: number;
  cancel: EventEmitter;
  timedOut: boolean;
}

/** How often the deadlines of the requests in flight are checked. */
const DEADLINE_TICK_MS = 100;

export class WebhookClient implements WebhookPort {
  private readonly agent: Agent;
  /**
   * One timer checks every request's deadline, and one listener per shutdown signal cancels them
   * all: an AbortSignal.timeout plus AbortSignal.any per request cost ~6% of the gateway's CPU at
   * full delivery rate (profiled with bench/webhooks.ts).
   */
  private readonly inFlight = new Set<InFlight>();
  private ticker: NodeJS.Timeout | null = null;
  private readonly signals = new WeakSet<AbortSignal>();

  private readonly resolve: Resolve;

  /**
   * `connections`: per origin, as many as requests may be in flight (WEBHOOK_CONCURRENCY): endpoints
   * of an integration platform share its host, and a request queued behind the others for a
   * connection spent its timeout before it was sent (8 of 12 endpoints answering in 1.2 s got through a 2 s timeout).
   */
  constructor(private readonly opts: { allow: AllowList; timeoutMs: number; userAgent: string; connections?: number; resolve?: Resolve }) {
    this.resolve = opts.resolve ?? systemResolve;
    this.agent = new Agent({
      connect: { lookup: guardedLookup(opts.allow, this.resolve), timeout: opts.timeoutMs },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 30_000,
      connections: opts.connections ?? 32,
    });
  }

  newSecret(): string {
    return newSecret();
  }

  /**
   * API.md "Webhooks (1.1)": a target on a forbidden address is refused (400). A host that does not
   * resolve here (no answer, an error, no answer in time) is accepted: this machine's DNS may not
   * be the one deliveries will see, and every connection resolves and checks it again (an
   * unresolvable target is then a failed attempt, retried).
   */
  async checkTarget(raw: string, field: string): Promise<void> {
    const problem = urlProblem(raw);
    if (problem) throw new AppError("validation-failed", `${field} ${problem}`, { field });
    const host = new URL(raw).hostname;
    const literal = ipLiteral(host);
    if (!literal && forbiddenName(host, this.opts.allow)) throw new AppError("webhook-target-forbidden", `${field}: ${nameRefusal(host)}`, { field });
    // Every address allowed: nothing a lookup could find would be refused.
    if (this.opts.allow === "all") return;
    const found = literal ? [literal] : await this.addresses(host);
    const addresses = found.length > 0 ? found : reservedAddresses(host);
    for (const address of addresses) {
      const range = forbiddenRange(address, this.opts.allow);
      if (range) throw new AppError("webhook-target-forbidden", `${field}: ${refusal(host, address, range)}`, { field });
    }
  }

  /** The host's addresses, or none when it does not resolve within TARGET_LOOKUP_MS. */
  private async addresses(host: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), TARGET_LOOKUP_MS)));
    const found = this.resolve(host, {}).then(
      (all) => all.map((a) => a.address),
      () => [],
    );
    try {
      return await Promise.race([found, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async post(req: WebhookRequest, signal: AbortSignal): Promise<WebhookResult> {
    const start = performance.now();
    const done = (r: Omit<WebhookResult, "ms">): WebhookResult => ({ ...r, ms: performance.now() - start });
    const url = new URL(req.url);
    // An IP address in the URL is connected to without a lookup: check it here.
    const literal = ipLiteral(url.hostname);
    const range = literal && forbiddenRange(literal, this.opts.allow);
    if (range) return done({ ok: false, status: null, excerpt: null, error: `target-forbidden: ${refusal(url.hostname, literal, range)}` });
    const timestamp = Math.floor(Date.now() / 1000);
    if (signal.aborted) return done({ ok: false, status: null, excerpt: null, error: describe({ name: "AbortError" }, 0) });
    this.watch(signal);
    const flight: InFlight = { deadline: performance.now() + this.opts.timeoutMs, cancel: new EventEmitter(), timedOut: false };
    this.inFlight.add(flight);
    this.ticker ??= setInterval(() => this.tick(), DEADLINE_TICK_MS).unref();
    try {
      const res = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": this.opts.userAgent,
          "webhook-id": req.msgId,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signatures(req.secrets, req.msgId, timestamp, req.body),
        },
        body: req.body,
        signal: flight.cancel,
      });
      // API.md: any 2xx within the timeout is success; a body still coming at the deadline does not undo it.
      const text = await excerpt(res.body);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const after = res.headers["retry-after"];
      return done({ ok, status: res.statusCode, excerpt: text, error: null, retryAfterMs: ok ? null : retryAfterMs(Array.isArray(after) ? after[0] : after, Date.now()) });
    } catch (err) {
      const error = flight.timedOut ? describe({ name: "TimeoutError" }, this.opts.timeoutMs) : signal.aborted ? describe({ name: "AbortError" }, 0) : describe(err, this.opts.timeoutMs);
      return done({ ok: false, status: null, excerpt: null, error });
    } finally {
      this.inFlight.delete(flight);
    }
  }

  /** Cancels the requests past their deadline; stops when none is left. */
  private tick(): void {
    const now = performance.now();
    for (const f of this.inFlight) {
      if (f.deadline <= now && !f.timedOut) {
        f.timedOut = true;
        f.cancel.emit("abort");
      }
    }
    if (this.inFlight.size === 0 && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  /** A shutdown signal cancels every request in flight (one listener per signal, not per request). */
  private watch(signal: AbortSignal): void {
    if (this.signals.has(signal)) return;
    this.signals.add(signal);
    signal.addEventListener("abort", () => this.inFlight.forEach((f) => f.cancel.emit("abort")), { once: true });
  }

  close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    return this.agent.close();
  }
}
