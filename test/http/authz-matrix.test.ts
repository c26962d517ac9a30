// Authorization matrix, generated from the running app's own route table: every /v1 route ×
// every credential case, so a new route cannot be forgotten. The routes come from the OpenAPI
// document the app serves and from Fastify's router (printRoutes), so an undocumented /v1 route
// is caught too. Each /v1 route must be classified below (admin-only or account route) with a
// request that passes validation, so the outcome is decided by auth alone.
//
// Every response is checked: status, RFC 9457 problem with the expected code, and no leak (the
// presented credential, the signing secrets, stack traces, the victim's data). The attacker
// (another account) acts on the victim's ids and must only ever see and change its own account;
// the victim's state is compared before and after every pass that must not change it.
//
// Every response is also what the OpenAPI document says its operation answers (a documented
// status, a body that validates against the documented schema: test/helpers/openapi-conformance.ts),
// and the owner's pass makes a successful call of every documented /v1 operation, so each
// operation's documented 2xx body is checked against a real one.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import jwt from "jsonwebtoken";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser } from "../../scripts/harness/xmpp-user.js";
import { JWT_SECRET, startTestGateway, uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { OpenApiConformance } from "../helpers/openapi-conformance.js";
import { freePort } from "../../scripts/harness/ports.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
type Kind = "admin" | "account";

interface World {
  victim: string;
  victimJid: string;
  victimToken: string;
  victimMsgId: string;
  victimResource: string;
  attacker: string;
  attackerJid: string;
  attackerMarker: string;
  attackerMsgId: string;
  /** The victim's webhook (its events filter is `roster`, so nothing but the owner's pass ever makes it deliver). */
  victimWebhookId: string;
  /** A third account's webhook: what the admin changes, where changing the victim's would change the victim's state. */
  bystanderWebhookId: string;
  /** A webhook URL on 127.0.0.1 (allowlisted) at a closed port: deliveries to it fail, on loopback only. */
  hookUrl(name: string): string;
  fresh(): string;
  /** Creates an account nobody else uses (for the admin's DELETE). */
  disposable(): Promise<string>;
  /** Creates a webhook of `localpart` that nobody else uses (for a DELETE). */
  disposableWebhook(localpart: string): Promise<string>;
  /** A room (XEP-0045) the victim joined, and one the attacker joined. */
  victimRoom: string;
  attackerRoom: string;
  /** A room nobody has used, on the server's MUC service. */
  freshRoom(): string;
  /** Joins the victim to a fresh room (for the owner's DELETE and subject change). */
  disposableRoom(): Promise<string>;
  /** A JID the victim blocked (XEP-0191), and a fresh one it blocks for the owner's DELETE. */
  victimBlocked: string;
  disposableBlock(): Promise<string>;
  /** A message the victim received (from Juliet), and a fresh one it sends (for the owner's retraction). */
  victimInMsgId: string;
  disposableMessage(): Promise<string>;
}

interface Res {
  status: number;
  headers: Headers;
  text: string;
  body: Json;
  /** The response was an event stream (read briefly, then aborted). */
  stream: boolean;
}

interface Expect {
  status: number;
  code?: string;
}

interface RouteSpec {
  kind: Kind;
  query?: (w: World) => Record<string, string>;
  body?: (w: World) => unknown;
  /** Also send the request as an event stream (Accept: text/event-stream). */
  sse?: boolean;
  /** Status for the legitimate caller: the admin on admin routes, the owner on account routes. */
  ok: number;
  /** Path parameters for the legitimate caller, where the shared ones would do harm. */
  okParams?: (w: World) => Promise<Record<string, string>>;
  okCheck?: (r: Res, w: World) => string | null;
  /** Path parameters for every caller, where the shared ones (paramValue) do not fit. */
  params?: (w: World) => Record<string, string>;
  /** Account routes: what another account gets when it uses the victim's ids. */
  attacker?: Expect & { check?: (r: Res, w: World) => string | null };
  /**
   * Account routes an admin token may use as well (an admin manages every webhook): what it
   * gets. `params` replace the victim's ids where acting on them would change the victim's
   * state, which is compared after the admin's pass. Without this, an admin gets account-not-found.
   */
  admin?: Expect & { params?: (w: World) => Promise<Record<string, string>>; check?: (r: Res, w: World) => string | null };
}

const CONTACT = "juliet@localhost";

/** A third account, whose webhooks the admin changes. */
const BYSTANDER = "mercutio";

const hookIds = (r: Res) => ((r.body?.items ?? []) as { id: string }[]).map((i) => i.id);

// The classification. Every /v1 route of the app must be here, and nothing else may be.
// Admin-only: POST/GET /v1/accounts, DELETE /v1/accounts/{localpart}, POST /v1/tokens.
const ROUTES: Record<string, RouteSpec> = {
  "POST /v1/accounts": { kind: "admin", body: (w) => ({ localpart: w.fresh() }), ok: 201 },
  "GET /v1/accounts": { kind: "admin", ok: 200 },
  "DELETE /v1/accounts/{localpart}": { kind: "admin", ok: 204, okParams: async (w) => ({ localpart: await w.disposable() }) },
  "POST /v1/tokens": { kind: "admin", body: (w) => ({ account: w.victim, ttlSeconds: 60 }), ok: 201 },

  "GET /v1/events": {
    kind: "account",
    query: () => ({ since: "0" }),
    sse: true,
    ok: 200,
    attacker: {
      status: 200,
      check: (r, w) => (r.text.includes(w.attackerMarker) ? null : "the attacker's own events are missing, so the no-leak check proves nothing"),
    },
  },
  // A stream ticket is always the caller's own: its jid says whose streams it opens.
  "POST /v1/events/tickets": {
    kind: "account",
    body: () => ({ ttlSeconds: 60 }),
    ok: 201,
    okCheck: (r, w) => (r.body?.jid === w.victimJid ? null : `a ticket for ${String(r.body?.jid)}, not the owner`),
    attacker: { status: 201, check: (r, w) => (r.body?.jid === w.attackerJid ? null : `the attacker got a ticket for ${String(r.body?.jid)}`) },
  },
  "POST /v1/messages": { kind: "account", body: () => ({ to: CONTACT, body: "matrix probe" }), ok: 202, attacker: { status: 202 } },
  "POST /v1/messages/batch": { kind: "account", body: () => ({ messages: [{ to: CONTACT, body: "matrix probe" }] }), ok: 200, attacker: { status: 200 } },
  "GET /v1/messages": {
    kind: "account",
    query: () => ({ with: CONTACT }),
    ok: 200,
    attacker: {
      status: 200,
      check: (r, w) => {
        const items = (r.body?.items ?? []) as { id: string; from: string; to: string }[];
        if (!items.some((i) => i.id === w.attackerMsgId)) return "the attacker's own conversation is missing";
        const foreign = items.filter((i) => !i.from.startsWith(w.attackerJid) && !i.to.startsWith(w.attackerJid));
        return foreign.length ? `history holds messages of another account: ${foreign.map((i) => i.id).join(", ")}` : null;
      },
    },
  },
  // Conversations are the caller's own: the victim's peer shows in the victim's list only.
  "GET /v1/conversations": {
    kind: "account",
    ok: 200,
    okCheck: (r) => (((r.body?.items ?? []) as { with: string }[]).some((c) => c.with === CONTACT) ? null : "the owner's list misses its conversation"),
    attacker: {
      status: 200,
      check: (r, w) => {
        const items = (r.body?.items ?? []) as { with: string; lastMessage: { id: string } }[];
        if (!items.some((c) => c.with === CONTACT)) return "the attacker's own conversation is missing";
        return items.some((c) => c.lastMessage.id === w.victimMsgId || c.lastMessage.id === w.victimInMsgId) ? "shows the victim's messages" : null;
      },
    },
  },
  // Changes to a message are the owner's: another account's message is "not found".
  "POST /v1/messages/{id}/reactions": { kind: "account", body: () => ({ emojis: ["👍"] }), ok: 200, attacker: { status: 404, code: "message-not-found" } },
  "DELETE /v1/messages/{id}": {
    kind: "account",
    okParams: async (w) => ({ id: await w.disposableMessage() }),
    ok: 204,
    attacker: { status: 404, code: "message-not-found" },
  },
  "POST /v1/messages/{id}/displayed": { kind: "account", params: (w) => ({ id: w.victimInMsgId }), ok: 204, attacker: { status: 404, code: "message-not-found" } },
  "GET /v1/messages/{id}": {
    kind: "account",
    ok: 200,
    okCheck: (r, w) => (r.body?.id === w.victimMsgId ? null : "the owner does not get its own message back"),
    attacker: { status: 404, code: "message-not-found" },
  },
  "GET /v1/sessions": {
    kind: "account",
    ok: 200,
    attacker: { status: 200, check: (r, w) => (r.body?.items?.some((s: { resource: string }) => s.resource === w.victimResource) ? "lists the victim's session" : null) },
  },
  "DELETE /v1/sessions/{resource}": { kind: "account", ok: 204, attacker: { status: 404, code: "session-not-found" } },
  "GET /v1/roster": {
    kind: "account",
    ok: 200,
    attacker: {
      status: 200,
      check: (r, w) => {
        const items = (r.body?.items ?? []) as { jid: string; name: string | null }[];
        if (!items.some((i) => i.name === w.attackerMarker)) return "the attacker's own roster is missing";
        return items.some((i) => i.jid === CONTACT) ? "shows a roster item the attacker never added" : null;
      },
    },
  },
  // Rows run path by path, so for each account DELETE runs before PUT on /v1/roster/{jid}.
  "DELETE /v1/roster/{jid}": { kind: "account", ok: 204, attacker: { status: 404, code: "not-found" } },
  "PUT /v1/roster/{jid}": { kind: "account", body: () => ({ name: "matrix", groups: ["matrix"] }), ok: 201, attacker: { status: 201 } },
  "POST /v1/roster/{jid}/approve": { kind: "account", ok: 200, attacker: { status: 200 } },
  "POST /v1/roster/{jid}/deny": { kind: "account", ok: 200, attacker: { status: 200 } },
  "POST /v1/roster/{jid}/subscribe": { kind: "account", ok: 202, attacker: { status: 202 } },
  "POST /v1/roster/{jid}/unsubscribe": { kind: "account", ok: 200, attacker: { status: 200 } },
  "GET /v1/subscription-requests": {
    kind: "account",
    ok: 200,
    attacker: { status: 200, check: (r) => (r.body?.items?.some((i: { jid: string }) => i.jid === CONTACT) ? "shows the victim's pending request" : null) },
  },
  "PUT /v1/presence": { kind: "account", body: () => ({ show: "chat", status: "matrix", priority: 1 }), ok: 200, attacker: { status: 200 } },
  "GET /v1/presence": { kind: "account", ok: 200, attacker: { status: 200 } },

  // Webhooks: an account manages its own; another account's are "not found" (ids cannot be
  // probed); an admin manages every one. The admin token names no account, so it cannot create
  // one without `account` (account-not-found, like every account route).
  // Rooms are the caller's own: another account naming the victim's room is not in it.
  "PUT /v1/rooms/{room}": { kind: "account", params: (w) => ({ room: w.freshRoom() }), body: (w) => ({ nick: w.fresh() }), ok: 201, attacker: { status: 201 } },
  "GET /v1/rooms": {
    kind: "account",
    ok: 200,
    okCheck: (r, w) => (((r.body?.items ?? []) as { room: string }[]).some((i) => i.room === w.victimRoom) ? null : "the owner's list misses its room"),
    attacker: {
      status: 200,
      check: (r, w) => {
        const rooms = ((r.body?.items ?? []) as { room: string }[]).map((i) => i.room);
        if (!rooms.includes(w.attackerRoom)) return "the attacker's own room is missing";
        return rooms.includes(w.victimRoom) ? "lists the victim's room" : null;
      },
    },
  },
  "GET /v1/rooms/{room}": { kind: "account", params: (w) => ({ room: w.victimRoom }), ok: 200, attacker: { status: 404, code: "room-not-joined" } },
  "DELETE /v1/rooms/{room}": {
    kind: "account",
    params: (w) => ({ room: w.victimRoom }),
    okParams: async (w) => ({ room: await w.disposableRoom() }),
    ok: 204,
    attacker: { status: 404, code: "room-not-joined" },
  },
  "PUT /v1/rooms/{room}/subject": {
    kind: "account",
    params: (w) => ({ room: w.victimRoom }),
    okParams: async (w) => ({ room: await w.disposableRoom() }),
    body: () => ({ subject: "matrix probe" }),
    ok: 202,
    attacker: { status: 404, code: "room-not-joined" },
  },
  "POST /v1/rooms/{room}/invitations": {
    kind: "account",
    params: (w) => ({ room: w.victimRoom }),
    body: () => ({ jid: CONTACT }),
    ok: 202,
    attacker: { status: 404, code: "room-not-joined" },
  },

  // The blocklist is the caller's own: another account's items are neither shown nor removable.
  "GET /v1/blocklist": {
    kind: "account",
    ok: 200,
    okCheck: (r, w) => ((r.body?.items ?? []) as string[]).includes(w.victimBlocked) ? null : "the owner's list misses its item",
    attacker: { status: 200, check: (r, w) => (((r.body?.items ?? []) as string[]).includes(w.victimBlocked) ? "shows the victim's blocked JID" : null) },
  },
  "PUT /v1/blocklist/{jid}": { kind: "account", params: (w) => ({ jid: `${w.fresh()}@example.net` }), ok: 204, attacker: { status: 204 } },
  "DELETE /v1/blocklist/{jid}": {
    kind: "account",
    params: (w) => ({ jid: w.victimBlocked }),
    okParams: async (w) => ({ jid: await w.disposableBlock() }),
    ok: 204,
    // Idempotent: the attacker's own list has no such item, so nothing changes (victimState shows the victim's list intact).
    attacker: { status: 204 },
  },

  "POST /v1/webhooks": {
    kind: "account",
    body: (w) => ({ url: w.hookUrl("matrix"), events: ["roster"] }),
    ok: 201,
    okCheck: (r, w) => (r.body?.account === w.victimJid ? null : `the owner's new webhook is for ${String(r.body?.account)}`),
    attacker: { status: 201, check: (r, w) => (r.body?.account === w.attackerJid ? null : `the attacker's new webhook is for ${String(r.body?.account)}`) },
  },
  "GET /v1/webhooks": {
    kind: "account",
    ok: 200,
    okCheck: (r, w) => (hookIds(r).includes(w.victimWebhookId) ? null : "the owner's list misses its webhook"),
    attacker: {
      status: 200,
      check: (r, w) => {
        const items = (r.body?.items ?? []) as { description: string | null; account: string }[];
        if (!items.some((i) => i.description === w.attackerMarker)) return "the attacker's own webhook is missing";
        const foreign = items.filter((i) => i.account !== w.attackerJid);
        return foreign.length ? `lists webhooks of ${foreign.map((i) => i.account).join(", ")}` : null;
      },
    },
    admin: { status: 200, check: (r, w) => (hookIds(r).includes(w.victimWebhookId) && hookIds(r).includes(w.bystanderWebhookId) ? null : "the admin's list misses an account's webhook") },
  },
  "GET /v1/webhooks/{id}": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    ok: 200,
    okCheck: (r, w) => (r.body?.id === w.victimWebhookId ? null : "the owner does not get its webhook back"),
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 200, check: (r, w) => (r.body?.id === w.victimWebhookId ? null : "the admin does not get the webhook") },
  },
  "PATCH /v1/webhooks/{id}": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    body: (w) => ({ url: w.hookUrl("patched"), description: "matrix", status: "disabled" }),
    ok: 200,
    okCheck: (r) => (r.body?.description === "matrix" ? null : "the change was not applied"),
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 200, params: async (w) => ({ id: w.bystanderWebhookId }) },
  },
  "DELETE /v1/webhooks/{id}": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    ok: 204,
    // Not the victim's webhook itself: the owner's later rows need it.
    okParams: async (w) => ({ id: await w.disposableWebhook(w.victim) }),
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 204, params: async (w) => ({ id: await w.disposableWebhook(BYSTANDER) }) },
  },
  "POST /v1/webhooks/{id}/rotate-secret": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    ok: 200,
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 200, params: async (w) => ({ id: w.bystanderWebhookId }) },
  },
  "GET /v1/webhooks/{id}/deliveries": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    ok: 200,
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 200 },
  },
  "POST /v1/webhooks/{id}/replay": {
    kind: "account",
    params: (w) => ({ id: w.victimWebhookId }),
    body: () => ({ since: 0 }),
    ok: 202,
    attacker: { status: 404, code: "webhook-not-found" },
    admin: { status: 202, params: async (w) => ({ id: w.bystanderWebhookId }) },
  },
};


/** Path parameters shared by every request that must be refused (or that acts on the caller's own account). */
function paramValue(name: string, w: World): string | undefined {
  return { jid: CONTACT, id: w.victimMsgId, localpart: w.victim, resource: w.victimResource }[name];
}

/** A route's own path parameter where it has one (RouteSpec.params), else the shared one. */
const routeParam = (spec: RouteSpec | undefined, name: string, w: World): string | undefined => spec?.params?.(w)[name] ?? paramValue(name, w);

const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

function openApiRoutes(doc: Json): string[] {
  const out: string[] = [];
  for (const [path, ops] of Object.entries((doc?.paths ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const m of Object.keys(ops)) if (HTTP_METHODS.includes(m)) out.push(`${m.toUpperCase()} ${path}`);
  }
  return out;
}

/** ":name" (with an optional regex) becomes "{name}", as in the OpenAPI document. */
const normalizePath = (p: string) => p.replace(/:([A-Za-z0-9_]+)(?:\([^)]*\))?/g, "{$1}");

/** Parses Fastify's printRoutes() radix tree (default, common-prefix form) into "METHOD /path" keys. */
function treeRoutes(printed: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of printed.split("\n")) {
    if (!line.trim()) continue;
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z]+(?:, [A-Z]+)*)\))?$/.exec(line);
    if (!m) throw new Error(`cannot parse printRoutes() line ${JSON.stringify(line)}`);
    const depth = m[1]!.length / 4;
    const path = (depth === 0 ? "" : (stack[depth - 1] ?? "")) + m[2]!;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of m[3]?.split(", ") ?? []) out.push(`${method} ${normalizePath(path)}`);
  }
  return out;
}

const splitKey = (key: string) => {
  const i = key.indexOf(" ");
  return { method: key.slice(0, i), path: key.slice(i + 1) };
};

interface Row {
  label: string;
  method: string;
  path: string;
  spec: RouteSpec;
  variant: "plain" | "head" | "sse";
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const REQUEST_TIMEOUT_MS = 4000;
const STREAM_READ_MS = 1500;

describe("authorization matrix (generated from the app's routes)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let w: World;
  let appRoutes: string[] = [];
  let documented: string[] = [];
  let openapi: Json;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPublic = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
  const pemBody = rsaPublic.split("\n")[1]!;
  let victimSecrets: string[] = [];
  /** What no response may ever show, to anyone: the victim's webhook secret (shown once, at its creation in setup). */
  let neverShown: string[] = [];
  /** A token that was valid (and so verified and cached) early on, and expires before the matrix runs. */
  let shortLived = { token: "", exp: 0 };

  async function call(method: string, path: string, opts: { authorization?: string | null; body?: unknown; accept?: string; until?: (text: string) => boolean } = {}): Promise<Res> {
    const headers: Record<string, string> = {};
    if (opts.authorization) headers.authorization = opts.authorization;
    if (opts.accept) headers.accept = opts.accept;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(gw.url + path, { method, headers, body: payload, signal: ac.signal });
      const stream = (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
      let text: string;
      if (stream) {
        text = await readFor(res, opts.until ?? ((t) => t.includes("\n\n")), STREAM_READ_MS);
        ac.abort();
      } else {
        try {
          text = await res.text();
        } catch {
          throw new Error(`${method} ${path}: the ${res.status} response did not end within ${REQUEST_TIMEOUT_MS} ms (content-type ${res.headers.get("content-type")})`);
        }
      }
      let body: Json = undefined;
      try {
        body = text && !stream ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      return { status: res.status, headers: res.headers, text, body, stream };
    } finally {
      clearTimeout(timer);
    }
  }

  async function readFor(res: Response, until: (text: string) => boolean, ms: number): Promise<string> {
    if (!res.body) return "";
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const deadline = Date.now() + ms;
    try {
      while (!until(text)) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        let timer: NodeJS.Timeout | undefined;
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => (timer = setTimeout(() => r(null), left)))]);
        clearTimeout(timer);
        if (!chunk || chunk.done) break;
        text += decoder.decode(chunk.value, { stream: true });
      }
    } catch {
      /* aborted */
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    return text;
  }

  const bearer = (t: string) => `Bearer ${t}`;
  const asVictim = (method: string, path: string, body?: unknown) => call(method, path, { authorization: bearer(w.victimToken), body });

  /** What the victim's account holds; must not change while others act. */
  async function victimState(): Promise<unknown> {
    const [roster, sessions, msg, history, events, requests, presence, webhooks, deliveries, blocklist] = await Promise.all([
      asVictim("GET", "/v1/roster"),
      asVictim("GET", "/v1/sessions"),
      asVictim("GET", `/v1/messages/${w.victimMsgId}`),
      asVictim("GET", `/v1/messages?with=${encodeURIComponent(CONTACT)}`),
      asVictim("GET", "/v1/events?since=0&limit=1000"),
      asVictim("GET", "/v1/subscription-requests"),
      asVictim("GET", "/v1/presence"),
      asVictim("GET", "/v1/webhooks"),
      asVictim("GET", `/v1/webhooks/${w.victimWebhookId}/deliveries`),
      asVictim("GET", "/v1/blocklist"),
    ]);
    for (const r of [roster, sessions, msg, history, events, requests, presence, webhooks, deliveries, blocklist]) assert.equal(r.status, 200, r.text);
    const { updatedAt: _u, ...message } = msg.body as Record<string, unknown>;
    return {
      roster: roster.body,
      sessions: (sessions.body.items as Json[]).map((s) => ({ resource: s.resource, available: s.available, show: s.show, status: s.status, priority: s.priority })),
      message,
      history: (history.body.items as Json[]).map((m) => m.id),
      events: (events.body.items as Json[]).map((e) => ({ id: e.id, event: e.event, data: e.data })),
      requests: requests.body,
      presence: presence.body,
      // Each view carries updatedAt, which a change or a rotation moves.
      webhooks: webhooks.body,
      deliveries: deliveries.body,
      blocklist: blocklist.body,
    };
  }

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw-juliet");
    // Webhook targets are on 127.0.0.1 (allowlisted), at a free port reserved for this file and
    // never listened on: what the owner's pass makes deliverable fails to connect, on loopback only.
    const closedPort = await freePort();
    const hookUrl = (name: string) => `http://127.0.0.1:${closedPort}/${name}`;
    gw = await startTestGateway(server, { JWT_PUBLIC_KEY: rsaPublic, AUTO_PROVISION: "false", SESSION_GRACE_SECONDS: "600", WEBHOOK_ALLOW_PRIVATE: "127.0.0.1" });
    const tag = randomBytes(4).toString("hex");
    const victim = "romeo";
    const attacker = "tybalt";
    await gw.createAccount(victim);
    await gw.createAccount(attacker);
    await gw.createAccount(BYSTANDER);
    const victimToken = gw.token(victim);
    const attackerToken = gw.token(attacker);
    const victimResource = `victim-phone-${tag}`;
    const victimRosterName = `victim-roster-secret-${tag}`;
    const victimStatus = `victim-status-secret-${tag}`;
    const victimBody = `victim-body-secret-${tag}`;
    const victimHookUrl = hookUrl(`victim-hook-${tag}`);
    const victimHookNote = `victim-hook-secret-${tag}`;
    const attackerMarker = `attacker-own-${tag}`;
    const as = (token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => gw.request(method, path, { token, body, headers });

    // The victim's data: a named roster item, an available session, a sent message, and an
    // inbound subscription request from a real XMPP user (a `subscription` event in its log).
    let r = await as(victimToken, "PUT", `/v1/roster/${CONTACT}`, { name: victimRosterName });
    assert.equal(r.status, 201, r.text);
    r = await as(victimToken, "PUT", "/v1/presence", { status: victimStatus }, { "balcony-resource": victimResource });
    assert.equal(r.status, 200, r.text);
    r = await as(victimToken, "POST", "/v1/messages", { to: CONTACT, body: victimBody });
    assert.equal(r.status, 202, r.text);
    const victimMsgId = r.body.id as string;
    let victimInMsgId = "";
    const juliet = await connectUser(server, "juliet", "pw-juliet", "balcony");
    try {
      await juliet.send(xml("presence", { to: `${victim}@${gw.domain}`, type: "subscribe" }));
      await waitFor(async () => ((await as(victimToken, "GET", "/v1/subscription-requests")).body?.items ?? []).some((i: { jid: string }) => i.jid === CONTACT), 10_000, "victim's pending request");
      await juliet.send(xml("message", { to: `${victim}@${gw.domain}`, type: "chat", id: `in-${tag}` }, xml("body", {}, "for the victim"), xml("markable", { xmlns: "urn:xmpp:chat-markers:0" })));
      await waitFor(
        async () => {
          const items = (await as(victimToken, "GET", `/v1/messages?with=${CONTACT}`)).body?.items ?? [];
          victimInMsgId = items.find((m: { direction: string; body: string }) => m.direction === "in" && m.body === "for the victim")?.id ?? "";
          return victimInMsgId !== "";
        },
        10_000,
        "victim's inbound message",
      );
    } finally {
      await juliet.stop();
    }

    // The attacker's own data, so its views are provably its own and not just empty.
    r = await as(attackerToken, "PUT", "/v1/roster/nurse@localhost", { name: attackerMarker });
    assert.equal(r.status, 201, r.text);
    r = await as(attackerToken, "POST", "/v1/messages", { to: CONTACT, body: attackerMarker });
    assert.equal(r.status, 202, r.text);
    const attackerMsgId = r.body.id as string;
    for (const [token, id] of [
      [victimToken, victimMsgId],
      [attackerToken, attackerMsgId],
    ] as const) {
      await waitFor(async () => (await as(token, "GET", `/v1/messages/${id}`)).body?.status !== "queued", 10_000, "message sent");
    }

    // Webhooks, after the rest of the setup: the victim's (roster events only, so it has nothing
    // to deliver unless the victim's roster changes), the attacker's own, and a bystander's.
    r = await as(victimToken, "POST", "/v1/webhooks", { url: victimHookUrl, events: ["roster"], description: victimHookNote });
    assert.equal(r.status, 201, r.text);
    const victimWebhookId = r.body.id as string;
    const victimHookSecret = r.body.secret as string;
    r = await as(attackerToken, "POST", "/v1/webhooks", { url: hookUrl("attacker"), events: ["roster"], description: attackerMarker });
    assert.equal(r.status, 201, r.text);
    const createHook = async (localpart: string): Promise<string> => {
      const created = await gw.request("POST", "/v1/webhooks", { body: { url: hookUrl(`${localpart}-${uniq("h")}`), events: ["presence"], account: localpart } });
      assert.equal(created.status, 201, created.text);
      return created.body.id as string;
    };
    const bystanderWebhookId = await createHook(BYSTANDER);

    // Rooms: the victim's (with a nick only it knows) and the attacker's own.
    const freshRoom = () => `${uniq("room")}@${server.mucDomain}`;
    const victimRoom = freshRoom();
    const victimNick = `victim-nick-${tag}`;
    r = await as(victimToken, "PUT", `/v1/rooms/${victimRoom}`, { nick: victimNick });
    assert.equal(r.status, 201, r.text);
    const attackerRoom = freshRoom();
    r = await as(attackerToken, "PUT", `/v1/rooms/${attackerRoom}`, { nick: attackerMarker });
    assert.equal(r.status, 201, r.text);

    // Blocking: the victim's list holds a JID only it blocked.
    const victimBlocked = `${uniq("blocked")}@example.net`;
    r = await as(victimToken, "PUT", `/v1/blocklist/${victimBlocked}`);
    assert.equal(r.status, 204, r.text);

    w = {
      victim,
      victimInMsgId,
      async disposableMessage() {
        const sent = await as(victimToken, "POST", "/v1/messages", { to: CONTACT, body: "to be retracted" });
        assert.equal(sent.status, 202, sent.text);
        return sent.body.id as string;
      },
      victimBlocked,
      async disposableBlock() {
        const jid = `${uniq("unblock")}@example.net`;
        const blocked = await as(victimToken, "PUT", `/v1/blocklist/${jid}`);
        assert.equal(blocked.status, 204, blocked.text);
        return jid;
      },
      victimRoom,
      attackerRoom,
      freshRoom,
      async disposableRoom() {
        const room = freshRoom();
        const joined = await as(victimToken, "PUT", `/v1/rooms/${room}`, { nick: "owner" });
        assert.equal(joined.status, 201, joined.text);
        return room;
      },
      victimJid: `${victim}@${gw.domain}`,
      victimToken,
      victimMsgId,
      victimResource,
      attacker,
      attackerJid: `${attacker}@${gw.domain}`,
      attackerMarker,
      attackerMsgId,
      victimWebhookId,
      bystanderWebhookId,
      hookUrl,
      fresh: () => uniq("acct"),
      async disposable() {
        const lp = uniq("gone");
        await gw.createAccount(lp);
        return lp;
      },
      disposableWebhook: createHook,
    };
    victimSecrets = [w.victimJid, victimMsgId, victimResource, victimRosterName, victimStatus, victimBody, victimHookUrl, victimHookNote, victimRoom, victimNick];
    neverShown = [victimHookSecret, victimHookSecret.replace(/^whsec_/, "")];

    const shortExp = now() + 2;
    shortLived = { token: jwt.sign({ sub: victim, scope: "admin", exp: shortExp }, JWT_SECRET, { algorithm: "HS256" }), exp: shortExp };
    const primed = await call("GET", "/v1/sessions", { authorization: `Bearer ${shortLived.token}` });
    assert.equal(primed.status, 200, `the short-lived token works while valid: ${primed.text}`);

    openapi = (await call("GET", "/openapi.json")).body;
    documented = openApiRoutes(openapi);
    appRoutes = treeRoutes(gw.running.app.printRoutes());
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  const v1 = (key: string) => splitKey(key).path.startsWith("/v1/") || splitKey(key).path === "/v1";

  it("reads the route table: printRoutes() and /openapi.json agree, every /v1 route is documented", () => {
    assert.ok(appRoutes.includes("GET /healthz") && appRoutes.includes("POST /v1/messages"), `printRoutes() parsed into ${appRoutes.join(", ")}`);
    assert.ok(documented.length > 10, "the OpenAPI document lists the routes");
    const ghosts = documented.filter((k) => !appRoutes.includes(k));
    assert.deepEqual(ghosts, [], "documented routes the app does not serve");
    const undocumented = appRoutes.filter((k) => v1(k) && !k.startsWith("HEAD ") && !documented.includes(k));
    assert.deepEqual(undocumented, [], "/v1 routes missing from /openapi.json");
  });

  it("classifies every /v1 route, with a request that passes validation", () => {
    const v1Routes = [...new Set([...appRoutes, ...documented])].filter(v1);
    const unclassified = v1Routes.filter((k) => !k.startsWith("HEAD ") && !ROUTES[k]);
    assert.deepEqual(unclassified, [], "/v1 routes with no expectation in ROUTES (admin-only or account route?)");
    const headless = v1Routes.filter((k) => k.startsWith("HEAD ") && !ROUTES[k.replace(/^HEAD /, "GET ")]);
    assert.deepEqual(headless, [], "HEAD routes without a classified GET");
    const stale = Object.keys(ROUTES).filter((k) => !appRoutes.includes(k));
    assert.deepEqual(stale, [], "ROUTES entries the app no longer has");
    const problems: string[] = [];
    for (const key of v1Routes.filter((k) => !k.startsWith("HEAD "))) {
      const { method, path } = splitKey(key);
      const spec = ROUTES[key]!;
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) if (routeParam(spec, name!, w) === undefined) problems.push(`${key}: no value for path parameter {${name}}`);
      const op = openapi?.paths?.[path]?.[method.toLowerCase()];
      if (op?.requestBody?.required && !spec.body) problems.push(`${key}: the body is required but ROUTES gives none`);
      for (const p of (op?.parameters ?? []) as { in: string; name: string; required?: boolean }[]) {
        if (p.in === "query" && p.required && !(p.name in (spec.query?.(w) ?? {}))) problems.push(`${key}: required query parameter ${p.name} missing`);
      }
      if (spec.kind === "account" && !spec.attacker) problems.push(`${key}: account route with no attacker expectation`);
    }
    assert.deepEqual(problems, []);
  });

  it("serves every non-/v1 route without a token (and ignores a bad one there)", async () => {
    const open = [...new Set(appRoutes)].filter((k) => !v1(k));
    for (const want of ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "GET /docs"]) assert.ok(open.includes(want), `${want} is a route`);
    const failures: string[] = [];
    for (const key of open) {
      const { method, path } = splitKey(key);
      const wildcard = path.includes("*");
      const url = path.replace(/\*$/, "index.css").replace(/\{[^}]+\}/g, "index.css");
      for (const authorization of [null, "Bearer garbage"]) {
        const r = await call(method, url, { authorization });
        const ok = wildcard ? r.status !== 401 && r.status !== 403 && r.status < 500 : r.status >= 200 && r.status < 400;
        if (!ok) failures.push(`${key} (${authorization ?? "no token"}) -> ${r.status} ${r.text.slice(0, 120)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("answers every /v1 route × credential case as expected, leaking nothing", async (t) => {
    const exp = () => now() + 600;
    const claims = (sub: string, extra: Record<string, unknown> = {}) => ({ sub, exp: exp(), scope: "admin", ...extra });
    const hs = (payload: object, secret: string = JWT_SECRET) => jwt.sign(payload, secret, { algorithm: "HS256" });
    const rs = (payload: object) => jwt.sign(payload, rsa.privateKey, { algorithm: "RS256" });
    const unauthorized: Expect = { status: 401, code: "unauthorized" };
    const forbidden: Expect = { status: 403, code: "forbidden" };
    const noAccount: Expect = { status: 404, code: "account-not-found" };
    const legit = (spec: RouteSpec): Expect => ({ status: spec.ok });
    // Refused tokens carry sub=victim and scope=admin, so any acceptance would show as success.
    const refused = (name: string, auth: string | null) => ({ name, auth: () => auth, expect: () => unauthorized, role: "refused" as const });
    const cases = [
      refused("no-auth", null),
      refused("basic", `Basic ${Buffer.from(`${w.victim}:pw`).toString("base64")}`),
      refused("garbage", "Bearer garbage"),
      refused("expired", bearer(hs(claims(w.victim, { exp: now() - 60 })))),
      // Accepted once (so cached by the gateway), expired since: the cache must not outlive exp.
      refused("expired-cached", bearer(shortLived.token)),
      refused("nbf-future", bearer(hs(claims(w.victim, { nbf: now() + 300 })))),
      refused("bad-sig", bearer(hs(claims(w.victim), "another-secret-another-secret-0123"))),
      refused("alg-none", bearer(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims(w.victim))}.`)),
      refused("hs256-rsa-pem", bearer(hs(claims(w.victim), rsaPublic))),
      refused("no-exp", bearer(hs({ sub: w.victim, scope: "admin" }))),
      { name: "unknown-acct", auth: () => bearer(gw.token("ghost")), expect: (s: RouteSpec) => (s.kind === "admin" ? forbidden : noAccount), role: "other" as const },
      { name: "attacker", auth: () => bearer(gw.token(w.attacker)), expect: (s: RouteSpec) => (s.kind === "admin" ? forbidden : s.attacker!), role: "attacker" as const },
      // The admin token's sub ("admin") is not an account: admin scope reaches account data only
      // where a route says so (RouteSpec.admin: an admin manages every webhook).
      { name: "admin-hs256", auth: () => bearer(gw.adminToken), expect: (s: RouteSpec) => (s.kind === "admin" ? legit(s) : (s.admin ?? noAccount)), role: "admin" as const },
      // Last: the owner's pass changes the victim's data. RS256 with the gateway holding both keys.
      { name: "rs256", auth: (k: Kind) => bearer(k === "admin" ? rs(claims("admin")) : rs({ sub: w.victim, exp: exp() })), expect: legit, role: "owner" as const },
    ];

    const rows: Row[] = [];
    const keys = Object.keys(ROUTES)
      .filter((k) => appRoutes.includes(k))
      .sort((a, b) => splitKey(a).path.localeCompare(splitKey(b).path) || a.localeCompare(b));
    for (const key of keys) {
      const { method, path } = splitKey(key);
      const spec = ROUTES[key]!;
      rows.push({ label: key, method, path, spec, variant: "plain" });
      if (method === "GET" && appRoutes.includes(`HEAD ${path}`)) rows.push({ label: `HEAD ${path}`, method: "HEAD", path, spec, variant: "head" });
      if (spec.sse) rows.push({ label: `${key} [SSE]`, method, path, spec, variant: "sse" });
    }
    for (const k of appRoutes.filter((k) => v1(k) && k.startsWith("HEAD ") && ROUTES[k.replace(/^HEAD /, "GET ")] && !rows.some((r) => r.label === k))) {
      rows.push({ label: k, method: "HEAD", path: splitKey(k).path, spec: ROUTES[k.replace(/^HEAD /, "GET ")]!, variant: "head" });
    }

    const matrix = new Map<string, Map<string, string>>(rows.map((r) => [r.label, new Map()]));
    const failures: string[] = [];
    const conformance = new OpenApiConformance(openapi);
    /** Documented /v1 operations answered with a 2xx that matched the document. */
    const conformingSuccesses = new Set<string>();
    const stackTrace = /\n\s+at |node_modules|\.[cm]?[jt]s:\d+|"stack"/;
    const s0 = await victimState();
    while (Date.now() < shortLived.exp * 1000 + 50) await new Promise((r) => setTimeout(r, 50));

    try {
      for (const kase of cases) {
        for (const row of rows) {
          const { spec } = row;
          const expect = kase.expect(spec);
          const authorization = kase.auth(spec.kind);
          const adminOnAccount = kase.role === "admin" && spec.kind === "account" && spec.admin !== undefined;
          const legitCall = (kase.role === "owner" && spec.kind === "account") || ((kase.role === "owner" || kase.role === "admin") && spec.kind === "admin") || adminOnAccount;
          const ownParams = adminOnAccount ? spec.admin?.params : spec.okParams;
          const params = legitCall && ownParams ? await ownParams(w) : {};
          const path = row.path.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? routeParam(spec, name, w) ?? `{${name}}`));
          const query = new URLSearchParams(spec.query?.(w) ?? {}).toString();
          const url = query ? `${path}?${query}` : path;
          const where = `${row.label} [${kase.name}]`;
          let r: Res;
          try {
            r = await call(row.method, url, {
              authorization,
              body: row.variant === "head" ? undefined : spec.body?.(w),
              accept: row.variant === "sse" ? "text/event-stream" : "application/json",
              until: kase.role === "attacker" ? (text) => text.includes(w.attackerMarker) : undefined,
            });
          } catch (err) {
            matrix.get(row.label)!.set(kase.name, "ERR");
            failures.push(`${where}: ${(err as Error).message}`);
            continue;
          }
          matrix.get(row.label)!.set(kase.name, String(r.status) + (r.status === expect.status ? "" : "!"));
          const fail = (msg: string) => failures.push(`${where}: ${msg}`);

          if (r.status !== expect.status) fail(`status ${r.status}, expected ${expect.status}: ${r.text.slice(0, 200)}`);
          if (r.status >= 400) {
            if (!/^application\/problem\+json/.test(r.headers.get("content-type") ?? "")) fail(`content-type ${r.headers.get("content-type")}, expected application/problem+json`);
            if (r.stream) fail("a refused request got an event stream instead of a problem");
            if (row.variant !== "head") {
              const p = r.body as Record<string, unknown> | undefined;
              if (!p || typeof p.type !== "string" || typeof p.title !== "string" || typeof p.detail !== "string" || p.status !== r.status) fail(`not an RFC 9457 problem: ${r.text.slice(0, 200)}`);
              if (expect.code && p?.code !== expect.code) fail(`code ${String(p?.code)}, expected ${expect.code}`);
              if (/eyJ[A-Za-z0-9_-]{8,}/.test(r.text)) fail("a problem carries something that looks like a JWT");
            }
          }
          if (row.variant === "sse" && r.status === 200 && !r.stream) fail("a 200 on the SSE route is not text/event-stream");
          // HEAD has no body to check (Fastify answers it from the GET route): the GET row is checked.
          if (row.variant !== "head") {
            const mismatch = conformance.check(row.method, row.path, { status: r.status, contentType: r.headers.get("content-type") ?? undefined, text: r.text });
            if (mismatch) fail(`not as the OpenAPI document says: ${mismatch}`);
            else if (r.status >= 200 && r.status < 300) conformingSuccesses.add(`${row.method} ${row.path}`);
          }

          // Leaks: the presented credential, the keys, stack traces, and (unless the caller is
          // entitled) the victim's data. Values the caller itself put in the URL do not count.
          const credential = authorization?.replace(/^\S+ /, "") ?? "";
          const secrets = [credential, credential.split(".")[2] ?? "", JWT_SECRET, pemBody, ...neverShown].filter((s) => s.length >= 12);
          if (!legitCall) secrets.push(...victimSecrets.filter((s) => !url.includes(encodeURIComponent(s)) && !url.includes(s)));
          for (const s of secrets) if (r.text.includes(s)) fail(`the response leaks ${s === credential ? "the presented token" : JSON.stringify(s.slice(0, 24))}`);
          if (stackTrace.test(r.text)) fail(`the response looks like it carries a stack trace: ${r.text.slice(0, 200)}`);

          if (r.status === expect.status && row.variant !== "head") {
            const extra =
              kase.role === "attacker" && spec.kind === "account" ? spec.attacker?.check?.(r, w) : adminOnAccount ? spec.admin?.check?.(r, w) : legitCall ? spec.okCheck?.(r, w) : null;
            if (extra) fail(extra);
          }
        }
        if (kase.role !== "owner") {
          try {
            assert.deepEqual(await victimState(), s0);
          } catch (err) {
            failures.push(`after the ${kase.name} pass the victim's account changed: ${(err as Error).message.slice(0, 1500)}`);
          }
        }
      }

      // The owner's pass ended the victim's session: it was still there after the attacker's DELETE.
      const sessions = await asVictim("GET", "/v1/sessions");
      if (sessions.status !== 200 || sessions.body.items.some((s: { resource: string }) => s.resource === w.victimResource)) {
        failures.push(`the owner's DELETE /v1/sessions/{resource} did not end the session: ${sessions.status} ${sessions.text.slice(0, 200)}`);
      }
    } finally {
      const names = cases.map((c) => c.name);
      const width = Math.max(...rows.map((r) => r.label.length));
      const cols = names.map((n) => Math.max(n.length, 4));
      t.diagnostic(`${"route".padEnd(width)} | ${names.map((n, i) => n.padEnd(cols[i]!)).join(" ")}`);
      for (const row of rows) t.diagnostic(`${row.label.padEnd(width)} | ${names.map((n, i) => (matrix.get(row.label)!.get(n) ?? "-").padEnd(cols[i]!)).join(" ")}`);
      t.diagnostic(`${rows.length} rows × ${names.length} cases; "!" marks an unexpected status`);
      for (const f of failures.slice(0, 40)) t.diagnostic(`FAIL ${f}`);
    }
    assert.deepEqual(failures, [], `${failures.length} failing cells`);
    // Fails on an empty list too: the walk must have reached every documented /v1 operation.
    const operations = conformance.operations("/v1/");
    assert.ok(operations.length >= 40, `the document lists ${operations.length} /v1 operations`);
    assert.deepEqual(
      operations.filter((op) => !conformingSuccesses.has(op)),
      [],
      "documented /v1 operations without a successful call whose response matched the document",
    );
  });

  it("does not let a percent-encoded /v1 prefix skip authentication", async () => {
    // Fastify routes "/%761/sessions" to /v1/sessions; the auth hook must not be the only guard.
    const failures: string[] = [];
    for (const key of Object.keys(ROUTES).filter((k) => appRoutes.includes(k))) {
      const { method, path } = splitKey(key);
      const url = path.replace(/^\/v1\//, "/%761/").replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(routeParam(ROUTES[key], name, w) ?? name));
      const query = new URLSearchParams(ROUTES[key]!.query?.(w) ?? {}).toString();
      const r = await call(method, query ? `${url}?${query}` : url, { body: ROUTES[key]!.body?.(w) });
      if (r.status !== 401 || r.body?.code !== "unauthorized") failures.push(`${method} ${url} without a token -> ${r.status} ${r.text.slice(0, 120)}`);
    }
    assert.deepEqual(failures, []);
  });
});
