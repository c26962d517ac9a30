/**
 * A real XMPP user for integration tests: @xmpp/client 0.14 logged in to a test server over
 * plaintext TCP with SASL PLAIN only, recording every stanza it receives.
 */
import type { Socket } from "node:net";
import type { XmppServer } from "./xmpp-server.js";

/** The part of @xmpp/xml's (ltx) Element that tests use. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  text(): string;
  toString(): string;
}

type XmlChild = XmlElement | string | undefined | null;
export type XmlBuilder = (name: string, attrs?: Record<string, string | undefined> | null, ...children: XmlChild[]) => XmlElement;

/** SASL mechanism negotiation callback of @xmpp/client (see @xmpp/sasl and createOnAuthenticate.js). */
type Authenticate = (credentials: { username: string; password: string }, mechanism: string) => Promise<void>;

/** The part of @xmpp/client's client that tests and benchmarks use. */
export interface XmppClient {
  jid: { toString(): string } | null;
  status: string;
  socket: Socket | null;
  reconnect: { stop(): void };
  on(event: "stanza", listener: (stanza: XmlElement) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "disconnect" | "offline", listener: () => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
}

interface XmppClientModule {
  xml: XmlBuilder;
  client(options: {
    service: string;
    domain: string;
    resource?: string;
    credentials: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
  }): XmppClient;
}

// @xmpp/client ships no type declarations: a non-literal specifier keeps TypeScript from
// demanding them, and XmppClientModule above describes what we use.
const CLIENT_MODULE: string = "@xmpp/client";
const xmppClient = (await import(CLIENT_MODULE)) as XmppClientModule;

/** Builds stanzas: xml("message", { to, type: "chat" }, xml("body", {}, "hi")). */
export const xml: XmlBuilder = xmppClient.xml;

// Setup budgets, generous: they only matter on a machine slowed by what else runs on it (a CI
// run with two test files at once on two shared cores), and they cover no behaviour under test.
const LOGIN_TIMEOUT_MS = 15_000;
const PRESENCE_ECHO_TIMEOUT_MS = 15_000;

export interface XmppUser {
  /** Full JID as bound by the server, e.g. "alice@localhost/test". */
  jid: string;
  /** Every stanza received since login, in order. */
  stanzas: XmlElement[];
  /** Stream and socket errors; they never throw, they land here and fail pending waitFor()s. */
  errors: Error[];
  send(element: XmlElement): Promise<void>;
  /** Sends a chat message with a body. */
  sendMessage(to: string, body: string): Promise<void>;
  /** Initial presence, so the server routes presence and bare-JID messages to this resource. */
  sendPresence(): Promise<void>;
  /**
   * Resolves with the first stanza (already received or future) for which predicate returns a
   * truthy value (so `(s) => s.getChild("x")` works); rejects on timeout
   * or when the connection is gone and nothing matched, saying what was received instead.
   */
  waitFor(predicate: (stanza: XmlElement) => unknown, timeoutMs?: number): Promise<XmlElement>;
  /** Closes the stream; idempotent, never throws. */
  stop(): Promise<void>;
}

export interface PlainLogin {
  /** e.g. "xmpp://127.0.0.1:5222" */
  service: string;
  domain: string;
  resource?: string;
  username: string;
  password: string;
}

/**
 * A client that logs in with SASL PLAIN only (on plaintext @xmpp/client would prefer SCRAM, which
 * costs 0.3-0.7 s per login in JS) and never reconnects: a test user that silently reconnected
 * would hide the server faults that tests inject, and a benchmark's would hide lost stanzas. Not
 * started yet.
 */
export function plainClient(o: PlainLogin): XmppClient {
  const client = xmppClient.client({
    service: o.service,
    domain: o.domain,
    resource: o.resource,
    credentials: (authenticate, mechanisms) => {
      if (!mechanisms.includes("PLAIN")) {
        return Promise.reject(new Error(`Server offers no SASL PLAIN, only ${mechanisms.join(", ")}`));
      }
      // @xmpp/base64 encodes with btoa(), i.e. one byte per UTF-16 unit (Latin-1), but SASL wants
      // UTF-8: hand it a "binary string" of the UTF-8 bytes so non-ASCII credentials work.
      return authenticate({ username: utf8Binary(o.username), password: utf8Binary(o.password) }, "PLAIN");
    },
  });
  client.reconnect.stop();
  return client;
}

export async function connectUser(
  server: Pick<XmppServer, "host" | "c2sPort" | "userDomain">,
  username: string,
  password: string,
  resource = "test",
): Promise<XmppUser> {
  // The domain always explicit: otherwise it would be derived from the service host (127.0.0.1).
  const client = plainClient({ service: `xmpp://${server.host}:${server.c2sPort}`, domain: server.userDomain, resource, username, password });
  const session = new UserSession(client);
  const label = `${username}@${server.userDomain} on ${server.host}:${server.c2sPort}`;
  try {
    await withTimeout(client.start(), LOGIN_TIMEOUT_MS, `login of ${label}`);
  } catch (error) {
    await session.stop();
    throw new Error(`XMPP login of ${label} failed: ${(error as Error).message}`, { cause: error });
  }
  session.jid = String(client.jid);
  return session;
}

interface Waiter {
  predicate: (stanza: XmlElement) => unknown;
  resolve: (stanza: XmlElement) => void;
  reject: (error: Error) => void;
}

class UserSession implements XmppUser {
  jid = "";
  readonly stanzas: XmlElement[] = [];
  readonly errors: Error[] = [];
  #client: XmppClient;
  #waiters = new Set<Waiter>();
  #closed = false;

  constructor(client: XmppClient) {
    this.#client = client;
    client.on("stanza", (stanza) => this.#onStanza(stanza));
    // Without an "error" listener an EventEmitter error would crash the test process.
    client.on("error", (error) => this.errors.push(error));
    client.on("disconnect", () => this.#onClosed());
  }

  send(element: XmlElement): Promise<void> {
    return this.#client.send(element);
  }

  sendMessage(to: string, body: string): Promise<void> {
    return this.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
  }

  /**
   * Initial presence, resolved once the server has processed it: both servers echo a user's
   * presence to the user's own resource (RFC 6121 §4.2.2). Until then a message to the bare JID
   * may still go to offline storage instead of this resource.
   */
  async sendPresence(): Promise<void> {
    const mark = this.stanzas.length;
    await this.send(xml("presence"));
    await this.waitFor((s) => this.stanzas.indexOf(s) >= mark && s.is("presence") && s.attrs.from === this.jid && !s.attrs.type, PRESENCE_ECHO_TIMEOUT_MS);
  }

  waitFor(predicate: (stanza: XmlElement) => unknown, timeoutMs = 5000): Promise<XmlElement> {
    return new Promise((resolve, reject) => {
      try {
        const found = this.stanzas.find(predicate);
        if (found) return resolve(found);
      } catch (error) {
        return reject(error as Error);
      }
      if (this.#closed) return reject(this.#describe("the connection is closed", predicate));
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(this.#describe(`timed out after ${timeoutMs} ms`, predicate));
      }, timeoutMs);
      const settle = <T>(fn: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        fn(value);
      };
      const waiter: Waiter = { predicate, resolve: settle(resolve), reject: settle(reject) };
      this.#waiters.add(waiter);
    });
  }

  async stop(): Promise<void> {
    if (this.#client.status === "offline") return;
    try {
      await this.#client.stop();
    } catch (error) {
      this.errors.push(error as Error);
    }
    this.#onClosed();
  }

  #onStanza(stanza: XmlElement): void {
    this.stanzas.push(stanza);
    for (const waiter of this.#waiters) {
      try {
        if (waiter.predicate(stanza)) waiter.resolve(stanza);
      } catch (error) {
        waiter.reject(error as Error);
      }
    }
  }

  /** No reconnect: nothing more can arrive, so pending waits fail now rather than at their timeout. */
  #onClosed(): void {
    this.#closed = true;
    for (const waiter of this.#waiters) waiter.reject(this.#describe("the connection is closed", waiter.predicate));
  }

  #describe(what: string, predicate: (stanza: XmlElement) => unknown): Error {
    const recent = this.stanzas.slice(-5).map((s) => `  ${truncate(s.toString(), 300)}`);
    const errors = this.errors.map((e) => `  ${e.message}`);
    return new Error(
      [
        `waitFor on ${this.jid || "(not logged in)"}: ${what}; no stanza matched ${truncate(predicate.toString(), 200)}`,
        `received ${this.stanzas.length} stanza(s)${recent.length ? ", the last:" : ""}`,
        ...recent,
        ...(errors.length ? ["errors:", ...errors] : []),
      ].join("\n"),
    );
  }
}

function utf8Binary(s: string): string {
  return Buffer.from(s, "utf8").toString("latin1");
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
