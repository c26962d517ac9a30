// Seeded, bounded fuzzing of every HTTP route of the running app, with a real XMPP user watching
// what comes out of the component. The route list comes from the app itself (printRoutes, with
// the request schemas from its own /openapi.json), so a new route is fuzzed without touching this
// file. Requests go over raw TCP so that what no well-behaved client sends (unknown methods, raw
// lone surrogates, invalid UTF-8, bad percent-encoding, GET bodies, oversized headers) is sent too.
//
// Invariants: every response is < 500; every 4xx is an RFC 9457 problem document with a string
// `code`; every response to a documented operation (its method and path; HEAD, OPTIONS, /docs and
// the hidden /openapi.json are not documented ones) has a status the OpenAPI document lists for
// that operation and a body that validates against the schema documented for that status and
// media type (test/helpers/openapi-conformance.ts); a request without a valid token never gets a 2xx on /v1; the component link never
// drops; every message accepted with 202 leaves the outbox, and each one addressed to the XMPP
// user (her bare JID, her session's full JID, or another resource of hers unless it is a
// headline, which Prosody discards for a resource without a session) reaches her exactly once
// and intact, whatever the shape of its body (text or language map); the others end `sent`,
// `delivered` or `failed` (read back with GET /v1/messages/{id}); nothing arrives without a
// 202; a known-good message sent at the end still arrives; and every GET route still answers its
// valid request after the fuzz, on a known room and webhook that no request of the fuzz deletes
// (a DELETE, also one switched from another method, names the disposable ones; a block covering
// the known room leaves it, as documented, and the read-back enters it again first).
//
// The request count is a floor, never a budget: the run sends every request (and every corpus
// case, which may make it more) however long that takes, and prints how long it took.
//
//   FUZZ_SEED=<n>        the seed (printed); default a fixed one, so CI is reproducible;
//   FUZZ_SEED=random     a new seed per run, for exploring
//   FUZZ_REQUESTS=<n>    at least this many requests (default 2500)
//   FUZZ_TIMEOUT_MS=<n>  fails a run that takes longer than this (default 20 minutes); the test
//                        runner's per-file timeout applies as well (scripts/test.sh:
//                        TEST_TIMEOUT_MS, default 180 s), so a long run needs both raised. Either
//                        way a slow run fails, it never passes having sent fewer requests.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import jwt from "jsonwebtoken";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { JWT_SECRET, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { freePort } from "../../scripts/harness/gateway-process.js";
import { accountLocalpart, parseJid } from "../../src/domain/jid.js";
import { OpenApiConformance } from "../helpers/openapi-conformance.js";

const DEFAULT_SEED = 20261123;
const SEED = process.env.FUZZ_SEED === "random" ? randomBytes(4).readUInt32BE(0) : process.env.FUZZ_SEED ? Number.parseInt(process.env.FUZZ_SEED, 10) >>> 0 : DEFAULT_SEED;
/** The least number of requests sent (below 1,000,000: the per-request seeds of the corpus start there). */
const MIN_REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2500);
if (!Number.isInteger(MIN_REQUESTS) || MIN_REQUESTS < 1 || MIN_REQUESTS >= 1_000_000) throw new Error(`FUZZ_REQUESTS must be an integer from 1 to 999999, not ${process.env.FUZZ_REQUESTS}`);
/** Only a bound on a run that hangs: a slow machine takes longer, it never sends fewer requests. */
const TIMEOUT_MS = Number(process.env.FUZZ_TIMEOUT_MS ?? 20 * 60_000);
const CONCURRENCY = 8;
const REQUEST_TIMEOUT_MS = 5_000;
/** Node's default --max-http-header-size. */
const NODE_HEADER_LIMIT = 16 * 1024;
const USER = "romeo";
const CONTACT = "juliet";

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: one generator per request, derived from (seed, index), so a request
// is the same whatever the concurrency.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

const subSeed = (seed: number, i: number) => (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;

// ---------------------------------------------------------------------------------------------
// JSON with what JSON.stringify cannot say: raw fragments (1e309, 10,000 levels), duplicate and
// __proto__ keys, and strings whose lone surrogates are sent raw (WTF-8) instead of escaped.

class Raw {
  constructor(readonly text: string) {}
}
class Obj {
  constructor(public entries: [string, Json][]) {}
}
type Json = null | boolean | number | string | Json[] | Obj | Raw;

function serialize(v: Json, rawSurrogates: boolean): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj) return `{${v.entries.map(([k, x]) => `${str(k, rawSurrogates)}:${serialize(x, rawSurrogates)}`).join(",")}}`;
  if (Array.isArray(v)) return `[${v.map((x) => serialize(x, rawSurrogates)).join(",")}]`;
  if (typeof v === "string") return str(v, rawSurrogates);
  return JSON.stringify(v);
}

function str(s: string, rawSurrogates: boolean): string {
  const j = JSON.stringify(s);
  return rawSurrogates ? j.replace(/\\u(d[89a-f][0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))) : j;
}

/** UTF-8, except that lone surrogates are encoded as if they were code points (WTF-8): bytes no UTF-8 decoder accepts. */
function wtf8(s: string): Buffer {
  if (!/[\ud800-\udfff]/.test(s)) return Buffer.from(s, "utf8");
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Buffer.from(out);
}

/** Percent-encodes every byte outside RFC 3986 unreserved (lone surrogates as WTF-8, which no decoder accepts). */
function pct(s: string): string {
  let out = "";
  for (const b of wtf8(s)) out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

const deepArray = (n: number) => new Raw(`${"[".repeat(n)}${"]".repeat(n)}`);
const deepObject = (n: number) => new Raw(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`);
const deepMixed = (n: number) => new Raw(`${'[{"constructor":'.repeat(n)}null${"}]".repeat(n)}`);

// ---------------------------------------------------------------------------------------------
// Pools of hostile and edge-case values.

const CTRL = ["\u0000", "\u0001", "\u0008", "\u000b", "\u000c", "\u001b", "\u001f", "\u007f", "\u0085", "\ufffe", "\uffff"];
const SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "a\ud83d", "\ude00b", "\ud83d\ud83d"];
const INJECTIONS = [
  "</body><iq type='set' id='x'><query xmlns='jabber:iq:roster'/></iq><body>",
  "]]><![CDATA[x]]>",
  "<?xml version='1.0'?><stream:stream>",
  "</stream:stream>",
  "&amp;&lt;&#0;&#x1;&#xD800;",
  "' \" < > &",
  "\"/><presence type='unavailable'/><x a=\"",
  "x'/><message to='juliet@localhost'><body>pwned</body></message><x a='",
  "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>&a;",
  "\r\n\r\nGET / HTTP/1.1\r\n",
];
const UNICODE = ["é", "😀", "\u202e", "\ufeff", "ｊｕｌｉｅｔ", "ß", "İ", "ǅ", "e\u0301", "中文", "עברית", "\u00a0", "\u2028", "\u3000", "\u200d", "🏳️‍🌈"];
const LANGS = ["en", "fr", "de", "it", "ja", "x-klingon", "en-GB", "zh-Hant-TW", "", "e n", "</body>", "x".repeat(9), "toString", "__proto__", "constructor", "EN", "en\u0000"];

function jidPools(domain: string) {
  const valid = [
    `${CONTACT}@localhost`,
    `${CONTACT}@localhost/fuzz`,
    `${CONTACT.toUpperCase()}@LOCALHOST`,
    "ｊｕｌｉｅｔ@localhost",
    `${CONTACT}@localhost/</body><iq type='set' id='x'/>`,
    `${CONTACT}@localhost/a'b"c&d<e>`,
    `${CONTACT}@localhost/😀`,
    `${CONTACT}@localhost/${"r".repeat(1023)}`,
    `${"l".repeat(1023)}@localhost`,
    `${"é".repeat(511)}@localhost`,
    "localhost",
    domain,
    `${USER}@${domain}`,
    `ghost@${domain}`,
    "nobody@localhost",
    "a@b.example",
    "a@127.0.0.1",
    "a@[::1]",
    "ромео@пример.рф",
    "a@xn--80ak6aa92e.com",
    "a@b/c@d/e",
  ];
  const invalid = [
    "",
    "@",
    "@@",
    "a@@b",
    `@${domain}`,
    "@localhost",
    "juliet@",
    "juliet@localhost/",
    "/",
    "/res",
    "juliet@/res",
    `${"l".repeat(1024)}@localhost`,
    `${"é".repeat(512)}@localhost`,
    `${"l".repeat(3000)}@localhost`,
    `juliet@localhost/${"r".repeat(1024)}`,
    `a@${"b".repeat(1024)}`,
    `a@${"b".repeat(64)}.com`,
    "a@xn--zz",
    "a@xn--",
    "a@-bad-.com",
    "a@.com",
    "a@com..",
    "a@999.1.1.1",
    "a@[::1",
    "a@[1.2.3.4]",
    "a@1.2.3.4.5",
    "a@12345",
    "a b@localhost",
    " juliet@localhost",
    "a\"b@localhost",
    "a&b@localhost",
    "a<b@localhost",
    "a:b@localhost",
    "😀@localhost",
    "a@😀.com",
    "\u200d@localhost",
    "ju\u0000liet@localhost",
    "ju\u0007liet@localhost",
    "juliet@local\u0000host",
    "juliet@localhost/\u0001",
    "juliet@localhost/\ufffe",
    "\ud800@localhost",
    "juliet@localhost/\udfff",
    "juliet@localhost/\ud83d",
    "juliet@localhost'/><iq type='set'/>",
    "a@b@c",
    "%00@localhost",
  ];
  return { valid, invalid };
}

const LOCALPARTS = ["a", "x".repeat(1023), "x".repeat(1024), "é".repeat(511), "é".repeat(512), "", " ", "a@b", "a/b", "a:b", "A", "ａｂｃ", "😀", "\u0000", "a\u0001", "\ud800", "..", ".", "-", "ß", "İ", "a b", "</x>", "'"];
const IDS = ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "-1", "0", "1e309", "99999999999999999999999", "NaN", "null", "undefined", "%00", "..", "../../etc/passwd", "' OR 1=1 --", "{00000000-0000-0000-0000-000000000000}", "x".repeat(3000)];
const CURSORS = ["-1", "0", "1", "1e309", "9".repeat(18), "9".repeat(19), "9223372036854775807", "9223372036854775808", "abc", "", "0x10", "1.5", " 1", "+1", "١٢", "1,2", "Infinity", "NaN", "00000000000000001"];
const INTS: Json[] = [0, -1, 1, 127, 128, -128, -129, 100, 1000, 1001, 31_536_000, 31_536_001, 2 ** 31, 2 ** 53, -(2 ** 53), 1.5, new Raw("1e309"), new Raw("-1e309"), new Raw("1e-400"), new Raw("-0"), new Raw("123456789012345678901234567890"), new Raw("0.1e1")];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/json; charset=latin1",
  "application/json; charset=utf-16",
  "application/json;;;",
  "application/json, text/plain",
  "application/problem+json",
  "application/vnd.api+json",
  "text/plain",
  "text/plain; charset=utf-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/xml",
  "text/xml",
  "*/*",
  "",
  "application/octet-stream",
];
const ACCEPTS = ["application/json", "*/*", "application/*", "text/html", "application/xml", "text/event-stream", "text/event-stream;q=0, application/json", "application/json;q=0.1, text/plain", "garbage/////", "\u00e9\u00e9"];
const METHODS = ["PATCH", "PUT", "POST", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "SEARCH", "MKCOL", "PURGE", "LINK", "FOO", "M-SEARCH", "get", "BREW", "QUERY"];
const BROKEN_JSON = [
  "{not json",
  '{"to":',
  '{"a":1,}',
  "{'to':'juliet@localhost'}",
  "NaN",
  "undefined",
  '{"to":"juliet@localhost","body":"x"}garbage',
  '{"to":"juliet@localhost"}{"to":"x"}',
  '{"to":"juliet@localhost","body":"\\u12"}',
  '{"body":"\\x41"}',
  '{"a":"unterminated',
  "\u0000",
  "[",
  "}",
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '{"a":01}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":0x10}',
  '{"a":Infinity}',
  "// comment\n{}",
  '{"a":"\t"}',
];

function textPool(rng: Rng): string {
  switch (rng.int(7)) {
    case 0:
      return `x${rng.pick(CTRL)}y`;
    case 1:
      return `x${rng.pick(SURROGATES)}y`;
    case 2:
      return rng.pick(INJECTIONS);
    case 3:
      return rng.pick(UNICODE).repeat(1 + rng.int(3));
    case 4:
      return rng.pick(["", " ", "\t", "\n", "\r\n", "\r"]);
    case 5:
      return rng.pick(["a", "x"]).repeat(rng.pick([1023, 1024, 1025, 65536, 65537, 100_000]));
    default:
      return `fuzz ${rng.int(1e6)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Routes: from the running app.

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  patternProperties?: Record<string, Schema>;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  maxLength?: number;
  minLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  maxItems?: number;
  minItems?: number;
  maxProperties?: number;
  format?: string;
}

interface Parameter {
  in: "path" | "query" | "header" | "cookie";
  name: string;
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  tags?: string[];
}

interface Route {
  method: string;
  /** Fastify form: /v1/roster/:jid, /docs/* */
  path: string;
  op: Operation | undefined;
}

/** Parses printRoutes({ commonPrefix: false }): one tree line per node, "segment (METHODS)". */
function routesFromTree(tree: string): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ]*)(?:├── |└── )(.*?)(?: \(([^)]*)\))?$/u.exec(line);
    if (!m) continue;
    const depth = Math.round([...m[1]!].length / 4);
    stack.length = depth;
    const prefix = stack.join("");
    const path = prefix + m[2]!;
    stack.push(m[2]!);
    for (const method of (m[3] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) out.push({ method, path });
  }
  return out;
}

const openApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP.

/**
 * What an accepted message must look like at Juliet. A reply arrives behind its fallback quote
 * (the body must end with the text); attachments without a body arrive as the first URL; a
 * correction (`replace`) is no new message (its answer is the corrected message's id).
 */
interface Wanted {
  to: string;
  type: unknown;
  body: unknown;
  subject: unknown;
  reply?: boolean;
  firstUrl?: string;
  correction?: boolean;
}

interface FuzzRequest {
  route: string;
  method: string;
  target: Buffer;
  headers: [string, Buffer][];
  body: Buffer | undefined;
  /** No valid token on a /v1 route: must never get a 2xx. */
  unauthenticated: boolean;
  /** Which of the run's tokens it carries (the `tokens` map). */
  tokenKind: string;
  notes: string[];
  /** For POST /v1/messages: what the XMPP user must receive if it is accepted. */
  message: Wanted | null;
  /** For POST /v1/messages/batch: the same per item (null for an item that is not an object). */
  batch: (Wanted | null)[] | null;
  /**
   * The documented operation the request is aimed at ("GET /v1/roster/{jid}"), whose answers the
   * response must be among; null when it is aimed at none: another method than the route's, a
   * path that the raw-path mutations may route elsewhere, HEAD or OPTIONS, an undocumented route.
   */
  operation: string | null;
}

interface FuzzResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
  failure?: string;
  started: number;
  ended: number;
}

function buildHead(req: FuzzRequest, port: number): Buffer {
  const parts: Buffer[] = [Buffer.from(`${req.method} `, "latin1"), req.target, Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`, "latin1")];
  for (const [name, value] of req.headers) parts.push(Buffer.from(`${name}: `, "latin1"), value, Buffer.from("\r\n", "latin1"));
  if (req.body !== undefined && !req.headers.some(([n]) => n.toLowerCase() === "transfer-encoding")) parts.push(Buffer.from(`Content-Length: ${req.body.length}\r\n`, "latin1"));
  parts.push(Buffer.from("\r\n", "latin1"));
  return Buffer.concat(parts);
}

function parseHead(buf: Buffer): { status: number; headers: Map<string, string>; bodyStart: number } | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end === -1) return null;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers, bodyStart: end + 4 };
}

function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const eol = buf.indexOf("\r\n", i);
    if (eol === -1) break;
    const size = Number.parseInt(buf.subarray(i, eol).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function send(port: number, req: FuzzRequest): Promise<FuzzResponse> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const buf = Buffer.concat(chunks, size);
      const head = parseHead(buf);
      const ended = Date.now();
      if (!head) {
        resolve({ status: 0, headers: new Map(), body: Buffer.alloc(0), failure: failure ?? (size ? "unparseable response" : "connection closed without a response"), started, ended });
        return;
      }
      let body: Buffer = buf.subarray(head.bodyStart);
      if (head.headers.get("transfer-encoding")?.includes("chunked")) body = dechunk(body);
      // Only the first response: after it, the server may answer the unread rest of a broken request.
      const len = Number(head.headers.get("content-length") ?? Number.NaN);
      if (Number.isFinite(len)) body = body.subarray(0, len);
      resolve({ status: head.status, headers: head.headers, body, started, ended });
    };
    const timer = setTimeout(() => finish("timeout"), REQUEST_TIMEOUT_MS);
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      const head = parseHead(Buffer.concat(chunks, size));
      if (!head) return;
      // An event stream never ends by itself: its status and headers are the answer.
      if (head.headers.get("content-type")?.startsWith("text/event-stream")) return finish();
      const len = head.headers.get("content-length");
      if (req.method !== "HEAD" && len !== undefined && size - head.bodyStart >= Number(len)) finish();
    });
    socket.on("error", () => undefined); // EPIPE/ECONNRESET when the server answers before reading the whole body; "close" follows
    socket.on("close", () => finish());
    socket.on("connect", () => {
      socket.write(buildHead(req, port));
      if (req.body) socket.write(req.body);
    });
  });
}

interface JsonDoc {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  xmpp?: unknown;
  id?: unknown;
  results?: unknown;
}

function parseJson(text: string): JsonDoc | null {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === "object" ? (v as JsonDoc) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------

describe(`HTTP fuzz (FUZZ_SEED=${SEED})`, () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let port: number;
  let bodyLimit: number;
  const tokens = new Map<string, { token: string | null; header?: string; authenticated: boolean }>();
  const accepted = new Map<string, NonNullable<FuzzRequest["message"]>>();
  /** Accepted corrections (XEP-0308): changes of an earlier message, checked by test/xmpp/message-features.test.ts. */
  let corrections = 0;
  const linkDrops: number[] = [];
  const violations: { kind: string; detail: string; at: number }[] = [];
  const perRoute = new Map<string, Map<number, number>>();
  const statuses = new Map<number, number>();
  const acceptedAt = new Map<string, { at: number; what: string }>();
  const excused: string[] = [];
  const readBack: FuzzRequest[] = [];
  const stuck: string[] = [];
  let knownMessageId = "";
  /** Webhooks of the user's (to a closed port on 127.0.0.1): one the fuzz never deletes, one it may. */
  let knownWebhookId = "";
  let disposableWebhookId = "";
  /** Rooms the user joined (XEP-0045): one the fuzz never leaves, one it may. */
  let knownRoom = "";
  let disposableRoom = "";
  /** Requests that removed a known fixture: none may (a harness defect, which the read-back would report as the gateway's). */
  const removedFixtures: string[] = [];
  /**
   * Accepted blocks of the user's that cover the known room (its bare JID, its service or a parent
   * domain, e.g. "localhost"): such a block makes the account leave the room (README Blocking), so
   * the room may legitimately be gone after the fuzz; nothing else of the fuzz's may make it go.
   */
  const roomBlocks: string[] = [];
  /** Responses checked against the OpenAPI document, per documented operation. */
  const checkedOps = new Map<string, number>();
  let sent = 0;
  let unauthenticatedAnswered = 0;
  let runtimeMs = 0;

  before(async () => {
    console.log(`fuzz: FUZZ_SEED=${SEED} (set FUZZ_SEED to reproduce), at least ${MIN_REQUESTS} requests, all of them sent whatever it takes (timeout ${TIMEOUT_MS} ms)`);
    server = await startXmppServer();
    await server.registerUser(CONTACT, "pw");
    // Webhook targets on 127.0.0.1 only (a closed port: the fuzz's deliveries are refused there).
    gw = await startTestGateway(server, { WEBHOOK_ALLOW_PRIVATE: "127.0.0.1" });
    port = Number(new URL(gw.url).port);
    bodyLimit = gw.config.bodyLimitBytes;
    gw.running.link.on("offline", () => linkDrops.push(Date.now()));
    await gw.createAccount(USER);
    juliet = await connectUser(server, CONTACT, "pw", "fuzz");
    await juliet.sendPresence();
    const userToken = gw.token(USER);
    const first = await gw.request("POST", "/v1/messages", { token: userToken, body: { to: `${CONTACT}@localhost`, body: "setup" } });
    assert.equal(first.status, 202, first.text);
    knownMessageId = first.body.id;
    accepted.set(knownMessageId, { to: `${CONTACT}@localhost`, type: undefined, body: "setup", subject: undefined });
    await juliet.waitFor((s) => s.attrs.id === knownMessageId);
    await gw.request("PUT", "/v1/presence?resource=fuzz-session", { token: userToken, body: { status: "here" } });
    const hookUrl = `http://127.0.0.1:${await freePort()}/hook`;
    for (const which of ["known", "disposable"]) {
      const room = `fuzz-${which}-${randomBytes(3).toString("hex")}@${server.mucDomain}`;
      const joined = await gw.request("PUT", `/v1/rooms/${room}`, { token: userToken, body: { nick: "fuzzer" } });
      assert.equal(joined.status, 201, joined.text);
      if (which === "known") knownRoom = room;
      else disposableRoom = room;
    }
    for (const which of ["known", "disposable"]) {
      const hook = await gw.request("POST", "/v1/webhooks", { token: userToken, body: { url: hookUrl, description: which } });
      assert.equal(hook.status, 201, hook.text);
      if (which === "known") knownWebhookId = hook.body.id;
      else disposableWebhookId = hook.body.id;
    }

    const sign = (claims: Record<string, unknown>, secret = JWT_SECRET) => jwt.sign(claims, secret, { algorithm: "HS256" });
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    tokens.set("user", { token: userToken, authenticated: true });
    tokens.set("admin", { token: gw.adminToken, authenticated: true });
    // Valid signatures, hostile claims: what a backend might mint from user input.
    for (const [name, resource] of [
      ["resource-ctrl", "phone\u0001"],
      ["resource-nul", "phone\u0000"],
      ["resource-fffe", "phone\ufffe"],
      ["resource-surrogate", "phone\ud800"],
      ["resource-huge", "r".repeat(3000)],
      ["resource-slash", "a/b@c"],
      ["resource-xml", "</body><iq type='set' id='x'/>"],
      ["resource-number", 42],
    ] as const) {
      tokens.set(name, { token: sign({ sub: USER, exp, resource }), authenticated: true });
    }
    tokens.set("scope-array", { token: sign({ sub: USER, exp, scope: ["admin"] }), authenticated: true });
    tokens.set("unknown-account", { token: sign({ sub: "ghost", exp }), authenticated: true });
    // No valid token.
    tokens.set("none", { token: null, authenticated: false });
    tokens.set("expired", { token: sign({ sub: USER, exp: 1000 }), authenticated: false });
    tokens.set("wrong-secret", { token: sign({ sub: USER, exp }, "another-secret-0123456789abcdef012345"), authenticated: false });
    tokens.set("alg-none", { token: `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: USER, exp, scope: "admin" })}.`, authenticated: false });
    tokens.set("no-exp", { token: sign({ sub: USER }), authenticated: false });
    tokens.set("other-domain", { token: sign({ sub: "romeo@evil.example", exp }), authenticated: false });
    tokens.set("sub-ctrl", { token: sign({ sub: "rom\u0000eo", exp }), authenticated: false });
    tokens.set("garbage", { token: "not.a.token", authenticated: false });
    tokens.set("huge", { token: "a".repeat(8000), authenticated: false });
    tokens.set("basic", { token: null, header: "Basic cm9tZW86cHc=", authenticated: false });
    tokens.set("lowercase-bearer", { token: null, header: `bearer ${userToken}`, authenticated: true }); // RFC 9110 §11.1: the scheme is case-insensitive
    tokens.set("empty-bearer", { token: null, header: "Bearer ", authenticated: false });
    tokens.set("bearer-space", { token: null, header: `Bearer  ${userToken}`, authenticated: true }); // and 1*SP
  });

  after(async () => {
    await juliet?.stop();
    await gw?.stop();
    await server?.stop();
  });

  // One scenario, one test: the checks below are steps of it (subtests) that read what this run
  // collected, never what another test left behind.
  it("fuzzes every route with at least FUZZ_REQUESTS requests, then checks every invariant", { timeout: TIMEOUT_MS }, async (t) => {
    const started = Date.now();
    const domain = gw.domain;
    const tree = gw.running.app.printRoutes({ commonPrefix: false });
    const openapi = (await gw.request("GET", "/openapi.json", { token: null })).body as { paths: Record<string, Record<string, Operation>> };
    const routes: Route[] = routesFromTree(tree).map((r) => ({ ...r, op: openapi.paths[openApiPath(r.path)]?.[r.method.toLowerCase()] }));
    const conformance = new OpenApiConformance(openapi);
    // The tree and the OpenAPI document describe the same app: every documented operation is routed.
    const routed = new Set(routes.map((r) => `${r.method} ${openApiPath(r.path)}`));
    for (const [p, ops] of Object.entries(openapi.paths)) for (const m of Object.keys(ops)) assert.ok(routed.has(`${m.toUpperCase()} ${p}`), `${m} ${p} is documented but not in printRoutes()`);
    assert.ok(routes.length >= 20, `only ${routes.length} routes found in:\n${tree}`);
    const jids = jidPools(domain);

    // ----- value generators -------------------------------------------------------------------
    const freshLocalpart = (rng: Rng) => `fz${rng.int(1e9).toString(36)}`;
    const safeLocalpart = (lp: string, rng: Rng) => (accountLocalpart(lp, domain) === USER ? freshLocalpart(rng) : lp);
    /**
     * A valid path parameter of a route: under /v1/webhooks an `id` names the user's webhook, a
     * `room` one of the user's rooms (a DELETE the disposable one of each, so the read-back after
     * the fuzz still finds the other).
     */
    const validParam = (r: Route, name: string, rng: Rng, method = r.method): string => {
      if (name === "id" && r.path.startsWith("/v1/webhooks/")) return method === "DELETE" ? disposableWebhookId : knownWebhookId;
      if (name === "room") return method === "DELETE" ? disposableRoom : knownRoom;
      return String(validValue(name, undefined, rng));
    };
    /** Tokens whose subject is the user (hostile claims besides): what they change is the user's. */
    const asUser = (kind: string) => ["user", "scope-array", "lowercase-bearer", "bearer-space"].includes(kind) || kind.startsWith("resource-");
    /** Whether PUT /v1/blocklist/{jid} at `target` blocks the known room: its bare JID, its service or a domain above (README Blocking). */
    const coversKnownRoom = (target: Buffer): boolean => {
      let item: string;
      try {
        item = decodeURIComponent(target.toString("latin1").split("?")[0]!.slice("/v1/blocklist/".length)).toLowerCase();
      } catch {
        return false;
      }
      const service = knownRoom.split("@")[1]!;
      return item === knownRoom || item === service || service.endsWith(`.${item}`);
    };
    /** What a DELETE names instead of a known fixture: the disposable one of its kind. */
    const disposable = (v: string) => (v === knownRoom ? disposableRoom : v === knownWebhookId ? disposableWebhookId : v);

    function matches(schema: Schema, s: string): boolean {
      if (schema.pattern) {
        try {
          if (!new RegExp(schema.pattern, "u").test(s)) return false;
        } catch {
          return false;
        }
      }
      return s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? Infinity);
    }

    function validValue(name: string, schema: Schema | undefined, rng: Rng): Json {
      const n = name.toLowerCase();
      if (n === "to") return rng.pick([`${CONTACT}@localhost`, `${CONTACT}@localhost`, `${CONTACT}@localhost/fuzz`, "nurse@localhost"]);
      if (["with", "jid"].includes(n)) return rng.pick([`${CONTACT}@localhost`, "nurse@localhost"]);
      if (n === "localpart") return freshLocalpart(rng);
      if (n === "account") return rng.chance(0.5) ? USER : `${USER}@${domain}`;
      if (n === "id" || n === "replace") return knownMessageId;
      if (n === "url") return rng.pick(["https://files.example/fuzz.png", "http://files.example/a%20b?c=d"]);
      if (n === "emojis") return rng.pick([["👍"], [], ["🎉", "❤️"]]);
      if (n === "resource") return rng.pick(["fuzz-session", "phone", "r1"]);
      if (n === "lang") return rng.pick(["en", "fr", "en-GB"]);
      if (["since", "cursor", "before", "after", "last-event-id"].includes(n)) return String(rng.int(5));
      if (!schema) return "x";
      if (schema.enum) return rng.pick(schema.enum) as Json;
      if (schema.const !== undefined) return schema.const as Json;
      if (schema.anyOf) return validValue(name, rng.pick(schema.anyOf.filter((s) => s.type !== "null").length ? schema.anyOf.filter((s) => s.type !== "null") : schema.anyOf), rng);
      const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
      switch (type) {
        case "integer":
        case "number": {
          const lo = schema.minimum ?? 0;
          const hi = Math.min(schema.maximum ?? lo + 10, lo + 10);
          return lo + rng.int(hi - lo + 1);
        }
        case "boolean":
          return rng.chance(0.5);
        case "null":
          return null;
        case "array":
          return rng.chance(0.5) && !schema.minItems ? [] : [validValue(name, schema.items, rng)];
        case "object":
          if (schema.properties) return objectFrom(schema, rng, (k, s) => validValue(k, s, rng), 0.5);
          return new Obj([[rng.pick(["en", "fr"]), validValue("text", recordValueSchema(schema), rng)]]);
        default: {
          const candidates = [`fuzz ${rng.int(1000)}`, "x", "en", "a1", "t-1", `${CONTACT}@localhost`];
          return candidates.find((c) => matches(schema, c)) ?? "x";
        }
      }
    }

    function recordValueSchema(schema: Schema): Schema | undefined {
      if (schema.patternProperties) return Object.values(schema.patternProperties)[0];
      return typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
    }

    function objectFrom(schema: Schema, rng: Rng, value: (k: string, s: Schema) => Json, optionalP: number): Obj {
      const entries: [string, Json][] = [];
      const required = new Set(schema.required ?? []);
      for (const [k, s] of Object.entries(schema.properties ?? {})) {
        // A correction (replace) is no new message: rarely, or few valid messages would be new ones.
        if (required.has(k) ? rng.chance(0.95) : rng.chance(k === "replace" ? optionalP / 5 : optionalP)) entries.push([k, value(k, s)]);
      }
      return new Obj(entries);
    }

    function edgeValue(name: string, schema: Schema | undefined, rng: Rng): Json {
      const n = name.toLowerCase();
      if (["to", "with", "jid", "account"].includes(n)) return rng.chance(0.3) ? rng.pick(jids.valid) : rng.pick(jids.invalid);
      if (n === "localpart") return safeLocalpart(rng.pick(LOCALPARTS), rng);
      if (n === "id") return rng.pick(IDS);
      if (["since", "cursor", "before", "after", "limit", "last-event-id"].includes(n)) return rng.chance(0.5) ? rng.pick(CURSORS) : rng.pick(INTS);
      if (n === "lang") return rng.pick(LANGS);
      const type = schema && (Array.isArray(schema.type) ? schema.type[0] : schema.type);
      if (type === "integer" || type === "number") return rng.pick(INTS);
      if (type === "array") return rng.pick<Json>([Array.from({ length: 65 }, (_, i) => `g${i}`), ["a", "a"], [1, 2], [[]], [null], Array.from({ length: 5000 }, () => "x")]);
      if (schema?.anyOf?.some((s) => s.type === "object") || type === "object") {
        return rng.pick<Json>([
          new Obj([]),
          new Obj(Array.from({ length: 17 }, (_, i) => [`l${String.fromCharCode(97 + i)}`, "x"])),
          new Obj([[rng.pick(LANGS), textPool(rng)]]),
          new Obj([["en", textPool(rng)], ["fr", textPool(rng)]]),
          new Obj([["en", 1]]),
          new Obj([["en", "a"], ["en", "b"]]),
        ]);
      }
      return textPool(rng);
    }

    function wrongType(rng: Rng): Json {
      return rng.pick<Json>([1, -1, 0, 1.5, true, false, null, [], ["x"], new Obj([]), new Obj([["a", 1]]), "", new Raw("1e309"), new Raw("-0"), "true", "1", "null"]);
    }

    /** A value the schema accepts, chosen to be awkward downstream: markup, odd Unicode, edge lengths, odd but valid JIDs. */
    function hostileValid(name: string, schema: Schema | undefined, rng: Rng): Json {
      const n = name.toLowerCase();
      if (n === "to") return rng.pick(jids.valid);
      if (!schema || n === "localpart" || n === "account" || n === "with" || n === "jid") return validValue(name, schema, rng);
      const branches = schema.anyOf ?? [schema];
      const record = branches.find((b) => b.type === "object" && recordValueSchema(b));
      const text = branches.find((b) => b.type === "string" && !b.enum && b.const === undefined);
      if (record && rng.chance(0.5)) {
        const langs = rng.shuffle(["en", "fr", "de-CH", "ja", "x-pig-latin", "EN"]).slice(0, 1 + rng.int(3));
        return new Obj(langs.map((l) => [l, hostileValid("text", recordValueSchema(record), rng)]));
      }
      if (text) {
        const candidates = [...INJECTIONS, ...UNICODE, " ", "\r\n", "\t", "\r", "]]>", "x".repeat(text.maxLength ?? 1000), "&".repeat(Math.min(text.maxLength ?? 1000, 1000)), INJECTIONS.join("")];
        const ok = candidates.filter((c) => matches(text, c));
        if (ok.length) return rng.pick(ok);
      }
      return validValue(name, schema, rng);
    }

    function fuzzValue(name: string, schema: Schema | undefined, rng: Rng): Json {
      const r = rng.float();
      if (r < 0.35) return validValue(name, schema, rng);
      if (r < 0.65) return edgeValue(name, schema, rng);
      if (r < 0.8) return wrongType(rng);
      if (r < 0.9) return textPool(rng);
      if (r < 0.95) return rng.pick([deepArray(rng.pick([100, 10_000])), deepObject(rng.pick([100, 10_000])), deepMixed(1000)]);
      return rng.pick(INTS);
    }

    /** A valid request body that is as large as the body limit allows, in characters XML must escape. */
    function expandingBody(schema: Schema, rng: Rng): Obj {
      let budget = Math.floor(bodyLimit * 0.9);
      const fill = (s: Schema | undefined): Json | undefined => {
        if (!s) return undefined;
        const branches = s.anyOf ?? [s];
        const record = branches.find((b) => b.type === "object" && recordValueSchema(b));
        const text = branches.find((b) => b.type === "string" && matches({ ...b, minLength: 0, maxLength: Infinity }, "&<>"));
        if (record) {
          const vs = recordValueSchema(record)!;
          const per = Math.min(vs.maxLength ?? 1024, budget);
          const entries: [string, Json][] = [];
          const langs = ["en", "fr", "de", "it", "es", "pt", "nl", "sv", "da", "fi", "pl", "cs", "ja", "zh", "ko", "ru"];
          for (const l of langs.slice(0, record.maxProperties ?? 16)) {
            if (budget < per) break;
            entries.push([l, "&".repeat(per)]);
            budget -= per + 10;
          }
          return entries.length ? new Obj(entries) : undefined;
        }
        if (text?.maxLength) {
          const n = Math.min(text.maxLength, budget);
          budget -= n;
          return n > 0 ? "&".repeat(n) : undefined;
        }
        if (s.type === "array" && s.items?.maxLength) {
          const items: Json[] = [];
          for (let i = 0; i < (s.maxItems ?? 1) && budget > s.items.maxLength; i++) {
            items.push(`${i}${"&".repeat(s.items.maxLength - String(i).length)}`);
            budget -= s.items.maxLength + 3;
          }
          return items;
        }
        return undefined;
      };
      const entries: [string, Json][] = [];
      const required = new Set(schema.required ?? []);
      for (const [k, s] of Object.entries(schema.properties ?? {})) {
        const big = ["to", "with", "jid", "account", "localpart", "resource"].includes(k) ? undefined : fill(s);
        if (big !== undefined) entries.push([k, big]);
        else if (required.has(k)) entries.push([k, validValue(k, s, rng)]);
      }
      return new Obj(entries);
    }

    // ----- request assembly -------------------------------------------------------------------
    interface Plan {
      route: Route;
      method?: string;
      tokenKind?: string;
      params?: Record<string, string>;
      rawPath?: Buffer;
      query?: string;
      headers?: [string, string | Buffer][];
      contentType?: string | null;
      body?: Buffer | Json;
      rawSurrogates?: boolean;
      /** The raw path is a mutation of the route's (a trailing slash, upper case…) that may route elsewhere. */
      offRoute?: boolean;
      notes: string[];
    }

    function assemble(p: Plan, rng: Rng): FuzzRequest {
      const method = p.method ?? p.route.method;
      const params: Record<string, string> = {};
      let target: Buffer;
      if (p.rawPath) target = p.rawPath;
      else {
        const path = p.route.path.replace(/:([A-Za-z0-9_]+)|\*/g, (whole, name?: string) => {
          const key = name ?? "*";
          const v = p.params?.[key] ?? (name ? validParam(p.route, name, rng, method) : "json");
          params[key] = v;
          return key === "*" ? v : pct(v);
        });
        target = Buffer.from(path + (p.query ? `?${p.query}` : ""), "latin1");
      }
      const headers: [string, Buffer][] = [];
      const tok = tokens.get(p.tokenKind ?? "user")!;
      if (tok.header !== undefined) headers.push(["Authorization", Buffer.from(tok.header, "latin1")]);
      else if (tok.token) headers.push(["Authorization", Buffer.from(`Bearer ${tok.token}`, "latin1")]);
      for (const [n, v] of p.headers ?? []) headers.push([n, typeof v === "string" ? Buffer.from(v, "latin1") : v]);
      let body: Buffer | undefined;
      let message: FuzzRequest["message"] = null;
      let batch: FuzzRequest["batch"] = null;
      if (p.body !== undefined) {
        if (Buffer.isBuffer(p.body)) body = p.body;
        else {
          const text = serialize(p.body, p.rawSurrogates ?? false);
          body = p.rawSurrogates ? wtf8(text) : Buffer.from(text, "utf8");
        }
        if (p.contentType !== null) headers.push(["Content-Type", Buffer.from(p.contentType ?? "application/json", "latin1")]);
        if ((p.route.path === "/v1/messages" || p.route.path === "/v1/messages/batch") && method === "POST") {
          // What the server will have parsed: its UTF-8 decoding, BOM dropped (bytes that are not UTF-8: 400, nothing).
          const asMessage = (m: unknown) => {
            const o = m as Record<string, unknown> | null;
            if (!o || typeof o !== "object" || Array.isArray(o)) return null;
            const firstUrl = Array.isArray(o.attachments) ? (o.attachments[0] as { url?: unknown } | undefined)?.url : undefined;
            return {
              to: String(o.to),
              type: o.type,
              body: o.body,
              subject: o.subject,
              ...(o.reply !== undefined ? { reply: true } : {}),
              ...(typeof firstUrl === "string" ? { firstUrl } : {}),
              ...(o.replace !== undefined ? { correction: true } : {}),
            };
          };
          try {
            const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)) as Record<string, unknown> | null;
            if (p.route.path === "/v1/messages") message = asMessage(parsed);
            else if (parsed && Array.isArray(parsed.messages)) batch = parsed.messages.map(asMessage);
          } catch {
            message = null;
            batch = null;
          }
        }
      }
      if (headers.some(([n]) => n.toLowerCase() === "transfer-encoding")) body = Buffer.from("zz\r\nnot a chunk\r\n0\r\n\r\n", "latin1");
      const notes = [...p.notes, `token=${p.tokenKind ?? "user"}`];
      if (Object.keys(params).length) notes.push(`params=${JSON.stringify(params).slice(0, 120)}`);
      const operation = p.route.op && method === p.route.method && !p.offRoute ? `${method} ${openApiPath(p.route.path)}` : null;
      return { route: `${p.route.method} ${p.route.path}`, method, target, headers, body, unauthenticated: !tok.authenticated && p.route.path.startsWith("/v1/"), tokenKind: p.tokenKind ?? "user", notes, message, batch, operation };
    }

    const hasBody = (r: Route) => !["GET", "HEAD"].includes(r.method);
    const bodySchema = (r: Route) => r.op?.requestBody?.content?.["application/json"]?.schema;
    const pickToken = (rng: Rng, route: Route) => {
      const own = route.op?.tags?.includes("accounts") ? "admin" : "user";
      const r = rng.float();
      if (r < 0.6) return own;
      if (r < 0.75) return own === "user" ? "admin" : "user";
      if (r < 0.8) return rng.pick(["resource-ctrl", "resource-nul", "resource-fffe", "resource-surrogate", "resource-huge", "resource-slash", "resource-xml", "resource-number", "scope-array", "unknown-account"]);
      return rng.pick(["none", "expired", "wrong-secret", "alg-none", "no-exp", "other-domain", "sub-ctrl", "garbage", "huge", "basic", "lowercase-bearer", "empty-bearer", "bearer-space"]);
    };
    const validParams = (r: Route, rng: Rng) => Object.fromEntries([...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => [m[1]!, validParam(r, m[1]!, rng)]));
    const validQuery = (r: Route, rng: Rng) =>
      (r.op?.parameters ?? [])
        .filter((p) => p.in === "query" && p.required)
        .map((p) => `${p.name}=${pct(String(validValue(p.name, p.schema, rng)))}`)
        .join("&");
    const validBody = (r: Route, rng: Rng): Json | undefined => {
      const s = bodySchema(r);
      return s ? objectFrom(s, rng, (k, ps) => validValue(k, ps, rng), 0.5) : undefined;
    };

    /** The deterministic part: the same edge cases for every route. */
    function corpus(r: Route, rng: Rng): Plan[] {
      // The token the route is meant for (admin routes are tagged "accounts"), so validation runs past auth.
      const own = r.op?.tags?.includes("accounts") ? "admin" : "user";
      const base = (notes: string[], extra: Partial<Plan> = {}): Plan => ({
        route: r,
        tokenKind: own,
        params: validParams(r, rng),
        query: validQuery(r, rng),
        ...(hasBody(r) && bodySchema(r) ? { body: validBody(r, rng)! } : {}),
        notes,
        ...extra,
      });
      const plans: Plan[] = [
        base(["corpus: valid"]),
        base(["corpus: the other role's token"], { tokenKind: own === "user" ? "admin" : "user" }),
        base(["corpus: no token"], { tokenKind: "none" }),
        base(["corpus: alg none"], { tokenKind: "alg-none" }),
      ];
      for (const t of ["resource-ctrl", "resource-nul", "resource-fffe", "resource-surrogate"]) plans.push(base([`corpus: hostile claim ${t}`], { tokenKind: t }));
      plans.push(base(["corpus: oversized header below the limit"], { headers: [["X-Fuzz", "h".repeat(NODE_HEADER_LIMIT - 3000)]] }));
      plans.push(base(["corpus: header over the limit (expect 431)"], { headers: [["X-Fuzz", "h".repeat(NODE_HEADER_LIMIT + 100)]] }));
      plans.push(base(["corpus: unknown method FOO"], { method: "FOO" }));
      plans.push(base(["corpus: method PATCH"], { method: "PATCH" }));
      for (const name of r.path.match(/:([A-Za-z0-9_]+)/g) ?? []) {
        const key = name.slice(1);
        for (const v of ["\u0000", "\ud800", "x".repeat(3100), "a@b/c", "</x>"]) plans.push(base([`corpus: param ${key}=${JSON.stringify(v.slice(0, 10))}`], { params: { ...validParams(r, rng), [key]: v } }));
        plans.push(base([`corpus: bad percent-encoding in ${key}`], { rawPath: Buffer.from(r.path.replace(name, "%zz%E0%A4%A"), "latin1") }));
      }
      for (const p of r.op?.parameters ?? []) {
        if (p.in !== "query") continue;
        for (const v of ["-1", "1e309", "9".repeat(18), "2147483648", "9".repeat(30), "\u0000", "", "中😀", "a\r\nb"]) plans.push(base([`corpus: query ${p.name}=${JSON.stringify(v)}`], { query: `${validQuery(r, rng)}&${p.name}=${pct(v)}` }));
        // The same values where a GET may answer with an event stream instead.
        if (r.method === "GET") for (const v of ["中😀", "a\r\nb", "x".repeat(1023)]) plans.push(base([`corpus: query ${p.name}=${JSON.stringify(v.slice(0, 10))} with Accept: text/event-stream`], { query: `${validQuery(r, rng)}&${p.name}=${pct(v)}`, headers: [["Accept", "text/event-stream"]] }));
      }
      if (hasBody(r)) {
        plans.push(base(["corpus: broken JSON"], { body: Buffer.from('{"a":', "latin1") }));
        plans.push(base(["corpus: 10,000 nested arrays"], { body: deepArray(10_000) }));
        plans.push(base(["corpus: 10,000 nested objects"], { body: deepObject(10_000) }));
        plans.push(base(["corpus: body over the limit"], { body: new Obj([["x", "x".repeat(bodyLimit + 10)]]) }));
        plans.push(base(["corpus: text/plain"], { contentType: "text/plain" }));
        plans.push(base(["corpus: form"], { contentType: "application/x-www-form-urlencoded", body: Buffer.from("to=juliet%40localhost&body=x") }));
        const s = bodySchema(r);
        if (s) {
          // Maps keyed by a pattern (languages): a key outside the pattern must not escape validation.
          for (const [k, ps] of Object.entries(s.properties ?? {})) {
            if (!(ps.anyOf ?? [ps]).some((b) => b.type === "object" && (b.patternProperties || typeof b.additionalProperties === "object"))) continue;
            for (const v of ["a\u0001b", 123, new Obj([["nested", [1, 2]]]), "x".repeat(70_000)] as Json[]) {
              const body = validBody(r, rng) as Obj;
              body.entries = body.entries.filter(([n]) => n !== k);
              body.entries.push([k, new Obj([["x y", v]])]);
              plans.push(base([`corpus: ${k} map with a key outside its pattern, value ${serialize(v, false).slice(0, 12)}`], { body }));
            }
          }
          plans.push(base(["corpus: maximal body in characters XML escapes"], { body: expandingBody(s, rng) }));
          plans.push(base(["corpus: raw lone surrogate (WTF-8) in every string"], { body: objectFrom(s, rng, () => "x\ud800y", 1), rawSurrogates: true }));
          plans.push(base(["corpus: invalid UTF-8 bytes"], { body: Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80]), Buffer.from('"}')]) }));
        }
      }
      return plans;
    }

    // API routes, and above all those with a request body, get most of the random requests.
    const weighted = routes.flatMap((r) => Array<Route>((r.path.startsWith("/v1/") ? 3 : 1) * (bodySchema(r) ? 3 : 1)).fill(r));
    function randomPlan(rng: Rng): Plan {
      const r = rng.pick(weighted);
      const notes: string[] = ["random"];
      const plan: Plan = { route: r, tokenKind: pickToken(rng, r), notes };
      // Path parameters.
      const params: Record<string, string> = {};
      for (const m of r.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
        const name = m[1]!;
        let v = rng.chance(0.4) ? validParam(r, name, rng) : String(edgeValue(name, undefined, rng));
        if (r.method === "DELETE" && name === "localpart") v = safeLocalpart(v, rng);
        params[name] = v;
      }
      if (r.path.includes("*")) params["*"] = rng.pick(["json", "yaml", "static/index.html", "static/../../package.json", "%2e%2e/%2e%2e/package.json", "x".repeat(2000), "static/%00"]);
      plan.params = params;
      if (rng.chance(0.04)) {
        const raw = rng.pick([`${r.path.replace(/:[A-Za-z0-9_]+/g, "é😀")}`, `${r.path.replace(/:[A-Za-z0-9_]+/g, "a b")}`, `${r.path}%`, `${r.path}#frag`, `${r.path.toUpperCase()}`, `/${r.path}`, `${r.path}/..`, `${r.path}/`]);
        plan.rawPath = Buffer.from(raw.replace(/:[A-Za-z0-9_]+/g, "x"), "utf8");
        plan.offRoute = true;
        notes.push(`raw path ${JSON.stringify(raw.slice(0, 40))}`);
      }
      // Query string.
      const q: string[] = [];
      for (const p of r.op?.parameters ?? []) {
        if (p.in !== "query") continue;
        if (p.required ? rng.chance(0.9) : rng.chance(0.5)) {
          const v = fuzzValue(p.name, p.schema, rng);
          q.push(`${p.name}=${pct(typeof v === "string" ? v : serialize(v, false))}`);
        }
      }
      if (rng.chance(0.15)) q.push(rng.pick(["__proto__=x", "constructor[prototype]=x", "a[b]=c", "=", "&&&", "%", "%zz=1", "a=%E0%A4%A", "x=%00", "limit=1&limit=2", "since=1&since=2", `big=${"q".repeat(6000)}`, "a=b=c", "%C0%AF=1"]));
      plan.query = q.join("&");
      if (plan.query) notes.push(`query=${plan.query.slice(0, 80)}`);
      // Headers.
      const headers: [string, string | Buffer][] = [];
      if (rng.chance(0.3)) headers.push(["Accept", rng.pick(ACCEPTS)]);
      if (rng.chance(0.1)) headers.push(["Idempotency-Key", rng.pick(["k1", "k2", "", " ", "k".repeat(300), "é", "a b", "\u00ff\u00fe"])]);
      if (rng.chance(0.1)) headers.push(["Balcony-Resource", rng.pick(["phone", "", "r".repeat(1100), "é", "a/b", "</x>", "\u00a0"])]);
      if (rng.chance(0.1)) headers.push(["Last-Event-ID", rng.pick(CURSORS)]);
      if (rng.chance(0.05)) headers.push(["If-None-Match", rng.pick(['"0"', "*", 'W/"1"', '"', "x".repeat(500)])]);
      if (rng.chance(0.03)) headers.push(["X-Fuzz", "h".repeat(rng.pick([4000, 10_000, NODE_HEADER_LIMIT - 3000, NODE_HEADER_LIMIT + 500]))]);
      if (rng.chance(0.02)) headers.push(["X-Ctl", Buffer.from([0x61, rng.pick([0x00, 0x01, 0x7f, 0x0b]), 0x62])]);
      const tok = tokens.get(plan.tokenKind!)!;
      if ((tok.token || tok.header) && rng.chance(0.02)) headers.push(["Authorization", `Bearer ${tokens.get("admin")!.token}`]); // a duplicate: Node keeps the first
      if (rng.chance(0.02)) headers.push(["Transfer-Encoding", "chunked"], ["X-Note", "bad chunks"]);
      plan.headers = headers;
      for (const [n, v] of headers) notes.push(`${n}: ${String(v).slice(0, 30)}`);
      // Method.
      if (rng.chance(0.05)) {
        plan.method = rng.chance(0.05) ? "CONNECT" : rng.pick(METHODS);
        notes.push(`method ${plan.method}`);
        // The path parameters were chosen for the route's own method: a switch to DELETE must not
        // remove a known fixture (the read-back after the fuzz needs it), so it gets the
        // disposable one, as a DELETE route does; it still reaches the handler with a real id.
        if (plan.method === "DELETE") for (const [name, v] of Object.entries(params)) params[name] = name === "localpart" ? safeLocalpart(v, rng) : disposable(v);
      }
      // Body.
      const method = plan.method ?? r.method;
      const schema = bodySchema(r);
      if (method !== "HEAD" && (hasBody(r) || rng.chance(0.05))) {
        const x = rng.float();
        if (x < 0.15 && schema) {
          // Valid, but awkward in every field: what gets through must come out intact on the XMPP side.
          plan.body = objectFrom(schema, rng, (k, s) => hostileValid(k, s, rng), 0.7);
          plan.tokenKind = r.op?.tags?.includes("accounts") ? "admin" : "user";
          notes.push(`hostile but valid body ${serialize(plan.body, false).slice(0, 100)}`);
        } else if (x < 0.45) {
          // A valid body with a few fields mutated: gets past validation often enough to reach the XMPP side.
          const valid = validBody(r, rng);
          if (valid instanceof Obj) {
            for (let k = rng.pick([0, 0, 1, 1, 1, 2, 3]); k > 0; k--) {
              const [name, s] = rng.pick(Object.entries(schema?.properties ?? { x: {} }));
              const v = rng.chance(0.6) ? edgeValue(name, s, rng) : fuzzValue(name, s, rng);
              const at = valid.entries.findIndex(([n]) => n === name);
              if (at >= 0) valid.entries[at] = [name, v];
              else valid.entries.push([name, v]);
            }
          }
          plan.body = valid ?? wrongType(rng);
          if (rng.chance(0.1)) plan.rawSurrogates = true;
          notes.push(`body ${serialize(plan.body, false).slice(0, 100)}`);
        } else if (x < 0.62) {
          plan.body = schema ? objectFrom(schema, rng, (k, s) => fuzzValue(k, s, rng), 0.5) : wrongType(rng);
          if (plan.body instanceof Obj && rng.chance(0.1)) plan.body.entries.push([rng.pick(["__proto__", "constructor", "toString", "", "x", "to"]), wrongType(rng)]);
          if (rng.chance(0.1)) plan.rawSurrogates = true;
          notes.push(`body ${serialize(plan.body, false).slice(0, 100)}`);
        } else if (x < 0.7) {
          plan.body = Buffer.from(rng.pick(BROKEN_JSON), "utf8");
          notes.push(`broken JSON ${plan.body.toString().slice(0, 40)}`);
        } else if (x < 0.75) {
          plan.body = rng.pick<Json>([null, [], "string", 1, true, new Raw("1e309"), new Raw('"\\ud800"')]);
          notes.push(`top-level ${serialize(plan.body, false)}`);
        } else if (x < 0.79) {
          plan.body = rng.pick([deepArray(10_000), deepObject(10_000), deepMixed(5000), deepArray(50_000)]);
          notes.push("deep nesting");
        } else if (x < 0.82) {
          plan.body = new Obj([["to", `${CONTACT}@localhost`], ["body", "x".repeat(bodyLimit + rng.int(64 * 1024))]]);
          notes.push("over the body limit");
        } else if (x < 0.85) {
          plan.body = Buffer.alloc(0);
          notes.push("empty body");
        } else if (x < 0.88 && schema) {
          plan.body = expandingBody(schema, rng);
          notes.push("maximal body in characters XML escapes");
        } else if (x < 0.91) {
          plan.body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(serialize(validBody(r, rng) ?? new Obj([]), false))]);
          notes.push("BOM");
        } else if (x < 0.94) {
          plan.body = Buffer.concat([Buffer.from(`{"to":"${CONTACT}@localhost","body":"`), Buffer.from(rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]])), Buffer.from('"}')]);
          notes.push("invalid UTF-8 in a string");
        } else {
          plan.body = validBody(r, rng) ?? new Obj([]);
          notes.push("valid body");
        }
        if (rng.chance(0.25)) {
          plan.contentType = rng.chance(0.1) ? null : rng.pick(CONTENT_TYPES);
          notes.push(`content-type ${plan.contentType}`);
        }
      }
      return plan;
    }

    // ----- the run ----------------------------------------------------------------------------
    // Replayed after the fuzz: the same valid requests must still succeed.
    for (const [i, r] of routes.entries()) if (r.method === "GET") readBack.push(assemble(corpus(r, new Rng(subSeed(SEED, 3_000_000 + i)))[0]!, new Rng(subSeed(SEED, 4_000_000 + i))));
    const rootRng = new Rng(SEED);
    const corpusPlans = routes.flatMap((r, i) => corpus(r, new Rng(subSeed(SEED, 1_000_000 + i))));
    // A floor: every corpus case is sent too, even when there are more of them than FUZZ_REQUESTS.
    const total = Math.max(MIN_REQUESTS, corpusPlans.length);
    const order = rootRng.shuffle(Array.from({ length: total }, (_, i) => i));
    const planAt = (i: number): Plan => (i < corpusPlans.length ? corpusPlans[i]! : randomPlan(new Rng(subSeed(SEED, i))));
    const link = gw.running.link;
    const corpusOutcomes = new Map<string, number>();
    let next = 0;
    let corpusSent = 0;
    const worker = async () => {
      while (next < order.length) {
        const i = order[next++]!;
        const plan = planAt(i);
        const req = assemble(plan, new Rng(subSeed(SEED, 2_000_000 + i)));
        const res = await send(port, req);
        sent++;
        if (i < corpusPlans.length) corpusSent++;
        const routeStatuses = perRoute.get(req.route) ?? new Map<number, number>();
        routeStatuses.set(res.status, (routeStatuses.get(res.status) ?? 0) + 1);
        perRoute.set(req.route, routeStatuses);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const what = `#${i} ${req.method} ${req.target.toString("latin1").slice(0, 100)} [${req.notes.join("; ")}]`;
        const bad = (kind: string, detail: string) => violations.push({ kind, detail: `${what} -> ${res.status} ${detail}${link.online ? "" : " (link was down)"}`, at: res.ended });
        if (req.method === "DELETE" && res.status < 300 && [knownRoom, knownWebhookId].some((k) => req.target.toString("latin1").includes(pct(k)))) removedFixtures.push(what);
        if (req.route === "PUT /v1/blocklist/:jid" && req.method === "PUT" && res.status < 300 && asUser(req.tokenKind) && coversKnownRoom(req.target)) roomBlocks.push(what);
        if (res.status === 0) {
          // Node drops CONNECT without a listener; anything else must be answered.
          if (req.method !== "CONNECT") bad(`no response (${res.failure})`, "");
          continue;
        }
        const ct = res.headers.get("content-type") ?? "";
        const text = res.body.toString("utf8");
        const json = parseJson(text);
        if (res.status >= 500) {
          // 503 for the link being down is the contract; the drop itself fails the link test.
          const linkDown = res.status === 503 && (json?.code === "xmpp-unavailable" || json?.xmpp === "down" || (req.method === "HEAD" && req.route.endsWith("/readyz")));
          if (linkDown && (!link.online || linkDrops.some((t) => t >= res.started - 1000))) excused.push(what);
          else bad(`${res.status} ${typeof json?.code === "string" ? json.code : ""}`.trim(), text.slice(0, 200));
        }
        if (res.status >= 400 && res.status < 500) {
          const doc: JsonDoc | null = req.method === "HEAD" ? { code: "", status: res.status } : json;
          const sig = String(json?.code ?? json?.message ?? (text ? "not JSON" : "empty body"));
          if (!ct.startsWith("application/problem+json")) bad(`${res.status} without application/problem+json (${sig})`, `content-type "${ct}" ${text.slice(0, 160)}`);
          else if (req.method !== "HEAD" && (!doc || typeof doc.code !== "string" || doc.status !== res.status)) bad(`${res.status} problem document without code/status`, text.slice(0, 160));
        }
        if (req.operation) {
          const [method, path] = req.operation.split(" ") as [string, string];
          const mismatch = conformance.check(method, path, { status: res.status, contentType: res.headers.get("content-type"), text });
          checkedOps.set(req.operation, (checkedOps.get(req.operation) ?? 0) + 1);
          if (mismatch) bad(`openapi: ${req.operation} -> ${res.status}`, mismatch);
        }
        if (req.unauthenticated) unauthenticatedAnswered++;
        if (req.unauthenticated && res.status >= 200 && res.status < 300) bad("2xx without a valid token", text.slice(0, 120));
        if (i < corpusPlans.length) {
          const key = `${req.notes[0]} -> ${res.status}`;
          corpusOutcomes.set(key, (corpusOutcomes.get(key) ?? 0) + 1);
        }
        if (req.route === "POST /v1/messages" && res.status === 202) {
          // Every accepted message is tracked: one the test cannot read back is a failure, not a skip.
          if (!req.message || typeof json?.id !== "string") bad("202 for a message the test cannot track", text.slice(0, 160));
          else if (req.message.correction) corrections++;
          else {
            accepted.set(json.id, req.message);
            acceptedAt.set(json.id, { at: res.ended, what: what.slice(0, 300) });
          }
        }
        if (req.route === "POST /v1/messages/batch" && res.status === 200) {
          const results = Array.isArray(json?.results) ? (json.results as { id?: unknown }[]) : null;
          if (!results || !req.batch || results.length !== req.batch.length) bad("200 for a batch the test cannot track", text.slice(0, 160));
          else
            results.forEach((r, i) => {
              if (typeof r.id !== "string") return;
              const m = req.batch![i];
              if (!m) return bad("a batch item accepted that was not a message object", text.slice(0, 160));
              accepted.set(r.id, m);
              acceptedAt.set(r.id, { at: res.ended, what: `${what.slice(0, 200)} [item ${i}]` });
            });
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    runtimeMs = Date.now() - started;

    const byRoute = [...perRoute.entries()].sort(([a], [b]) => a.localeCompare(b));
    const hist = [...statuses.entries()].sort(([a], [b]) => a - b);
    console.log(`fuzz: ${sent} requests over ${routes.length} routes in ${runtimeMs} ms (${Math.round((sent * 1000) / Math.max(runtimeMs, 1))} req/s; seed ${SEED}, floor ${MIN_REQUESTS}, ${corpusPlans.length} corpus cases), ${accepted.size - 1} messages accepted`);
    const line = ([r, st]: [string, Map<number, number>]) => {
      const n = [...st.values()].reduce((a, b) => a + b, 0);
      return `  ${String(n).padStart(5)}  ${r.padEnd(40)} ${[...st.entries()].sort(([a], [b]) => a - b).map(([k, v]) => `${k}×${v}`).join(" ")}`;
    };
    console.log(`fuzz: requests per route (statuses):\n${byRoute.map(line).join("\n")}`);
    console.log(`fuzz: statuses: ${hist.map(([s, n]) => `${s}×${n}`).join("  ")}${excused.length ? ` (${excused.length} 503s while the component link was down)` : ""}`);

    const outcomes = [...corpusOutcomes.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(`fuzz: corpus outcomes (all routes):\n${outcomes.map(([k, n]) => `  ${String(n).padStart(4)}  ${k}`).join("\n")}`);

    await t.test("sends every planned request, and every route gets some", () => {
      assert.ok(total >= MIN_REQUESTS && total >= corpusPlans.length, `${total} planned`);
      assert.equal(next, order.length, "every planned request was taken");
      assert.equal(sent, total, `all ${total} requests were sent (${MIN_REQUESTS} asked for, ${corpusPlans.length} corpus cases)`);
      assert.equal(corpusSent, corpusPlans.length, "every corpus case was sent");
      const missed = routes.filter((r) => !perRoute.has(`${r.method} ${r.path}`)).map((r) => `${r.method} ${r.path}`);
      assert.deepEqual(missed, [], "routes that got no request");
    });

    await t.test("answers every request with < 500, and every 4xx with a problem document", () => {
      assert.equal([...statuses.values()].reduce((a, b) => a + b, 0), sent, "every request sent has an outcome");
      const http = violations.filter((v) => !v.kind.startsWith("2xx") && !v.kind.startsWith("openapi: "));
      assert.deepEqual(summarize(http), [], `FUZZ_SEED=${SEED}: responses broke the HTTP invariants:\n${details(http)}`);
    });

    await t.test("answers every documented operation as the OpenAPI document says: a documented status, a body matching its schema", () => {
      const documented = conformance.operations();
      assert.ok(documented.length >= 40, `the document lists ${documented.length} operations`);
      assert.deepEqual(documented.filter((op) => !checkedOps.has(op)), [], "documented operations with no response checked");
      const mismatches = violations.filter((v) => v.kind.startsWith("openapi: "));
      assert.deepEqual(summarize(mismatches), [], `FUZZ_SEED=${SEED}: responses the OpenAPI document does not describe:\n${details(mismatches)}`);
    });

    await t.test("never lets a request without a valid token through", () => {
      assert.ok(unauthenticatedAnswered > 0, "the run sent requests without a valid token");
      const auth = violations.filter((v) => v.kind.startsWith("2xx"));
      assert.deepEqual(summarize(auth), [], details(auth));
    });

    await t.test("keeps the component link online throughout, and /readyz is 200", async () => {
      // The outbox retries what the server did not take, so a message that breaks the link stays queued.
      const queued: string[] = [];
      for (const id of acceptedAt.keys()) if ((await gw.request("GET", `/v1/messages/${id}`, { token: gw.token(USER) })).body?.status === "queued") queued.push(id);
      const first = linkDrops[0] ?? 0;
      const before = [...acceptedAt.entries()].filter(([, a]) => a.at <= first + 50 && a.at >= first - 1000);
      assert.equal(
        linkDrops.length,
        0,
        [
          `FUZZ_SEED=${SEED}: the component link went down ${linkDrops.length} time(s)`,
          `the oldest accepted messages still queued (the outbox sends in order, so the likely cause is at the head):`,
          ...oldestFirst(queued).slice(0, 6).map((id) => `  ${id}: ${acceptedAt.get(id)!.what}`),
          ...(queued.length > 6 ? [`  … and ${queued.length - 6} more behind them`] : []),
          `accepted within 1 s before the first drop:`,
          ...before.map(([id, a]) => `  ${id}: ${a.what}`),
        ].join("\n"),
      );
      assert.ok(gw.running.link.online, "link online");
      const ready = await gw.request("GET", "/readyz", { token: null });
      assert.equal(ready.status, 200, ready.text);
    });

    await t.test("delivers every accepted message to its recipient exactly once and intact, nothing else, and the stream still works", async () => {
      await checkDelivery();
    });
  });

  /** What the run's accepted messages became: arrivals at Juliet, statuses, and what arrived without a 202. */
  async function checkDelivery(): Promise<void> {
    const userToken = gw.token(USER);
    const problems: string[] = juliet.errors.map((e) => `juliet's stream: ${e.message}`);
    // Inputs: the fuzz itself got messages accepted (besides the setup message), and replays GETs.
    assert.ok(acceptedAt.size > 0, "the fuzz got at least one message accepted");
    assert.ok(readBack.length > 0, "there are GET routes to read back");

    // Every accepted message leaves the outbox (sent, delivered or failed; never stuck queued).
    const ids = [...accepted.keys()];
    const views = new Map<string, { status: string; error?: { condition?: unknown } | null }>();
    const unreadable: string[] = [];
    await waitFor(
      async () => {
        stuck.length = 0;
        unreadable.length = 0;
        for (let i = 0; i < ids.length; i += 16) {
          const batch = ids.slice(i, i + 16);
          const got = await Promise.all(batch.map((id) => gw.request("GET", `/v1/messages/${id}`, { token: userToken })));
          got.forEach((v, j) => {
            const id = batch[j]!;
            if (v.status !== 200) unreadable.push(`${id}: GET -> ${v.status} ${v.text.slice(0, 100)} [${acceptedAt.get(id)?.what ?? ""}]`);
            else {
              views.set(id, v.body);
              if (v.body.status === "queued") stuck.push(id);
            }
          });
        }
        return stuck.length === 0 && unreadable.length === 0;
      },
      60_000,
      "every accepted message to leave the outbox",
    ).catch(() => undefined);
    if (stuck.length) problems.push(`${stuck.length} accepted message(s) still queued, the oldest:\n${oldestFirst(stuck).slice(0, 6).map((id) => `    ${id}: ${acceptedAt.get(id)?.what ?? ""}`).join("\n")}`);
    if (unreadable.length) problems.push(`accepted message(s) that cannot be read back:\n${unreadable.map((u) => `    ${u}`).join("\n")}`);

    if (removedFixtures.length) problems.push(`the fuzz removed a known fixture the read-back needs (a harness defect):\n${removedFixtures.map((w) => `    ${w.slice(0, 200)}`).join("\n")}`);
    // The fuzz may have blocked Juliet (or her domain): the sentinel needs the account to reach her.
    // And a block of the known room's service left that room: unblocked, the account enters it
    // again for the read-back (a join of a blocked room is 400 blocked). Only then: a room gone
    // that no block covered is the gateway's defect, and the read-back reports it.
    const blocked = await gw.request("GET", "/v1/blocklist", { token: userToken });
    for (const jid of (blocked.body?.items ?? []) as string[]) await gw.request("DELETE", `/v1/blocklist/${encodeURIComponent(jid)}`, { token: userToken });
    if (roomBlocks.length && (await gw.request("GET", `/v1/rooms/${knownRoom}`, { token: userToken })).status === 404) {
      const again = await gw.request("PUT", `/v1/rooms/${knownRoom}`, { token: userToken, body: { nick: "fuzzer" } });
      if (again.status !== 201 && again.status !== 200) problems.push(`entering the known room again after the block(s) that left it -> ${again.status} ${again.text.slice(0, 160)}`);
      console.log(`fuzz: the known room was left by a block covering it (${roomBlocks.length}, the first: ${roomBlocks[0]!.slice(0, 160)}) and entered again -> ${again.status}`);
    }
    // What the fuzz stored must not break reads: every GET route still answers a valid request.
    for (const req of readBack) {
      const res = await send(port, req);
      if (res.status < 200 || res.status >= 400) problems.push(`after the fuzz, ${req.method} ${req.target.toString("latin1").slice(0, 80)} -> ${res.status} ${res.body.toString("utf8").slice(0, 160)}`);
    }

    // The sentinel: a known-good message sent after everything else left the outbox. One link, in
    // order: once it has arrived, whatever was sent to Juliet before it has arrived too.
    const markerText = "known good <&> after the fuzz";
    const marker = await gw.request("POST", "/v1/messages", { token: userToken, body: { to: `${CONTACT}@localhost`, body: markerText } });
    assert.equal(marker.status, 202, marker.text);
    accepted.set(marker.body.id, { to: `${CONTACT}@localhost`, type: undefined, body: markerText, subject: undefined });
    const markerGot = await juliet.waitFor((s) => s.attrs.id === marker.body.id, 10_000).catch(() => null);
    if (!markerGot) problems.push("the known-good message sent after the fuzz never arrived");
    else if (markerGot.getChildText("body") !== markerText) problems.push(`the known-good message arrived altered: ${markerGot.toString()}`);
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${marker.body.id}`, { token: userToken })).body?.status === "sent", 5_000, "the marker recorded as sent").catch(() =>
      problems.push("the known-good message was not recorded as sent"),
    );
    views.set(marker.body.id, { status: "sent" });

    // Exact: the gateway writes CR as a character reference, so line ends arrive unchanged. A
    // language map arrives as one <body xml:lang="…"> (or <subject>) per language, in any order.
    const texts = (m: XmlElement, name: string): unknown => {
      const els = m.getChildren(name);
      if (els.length === 0) return undefined;
      if (els.length === 1 && els[0]!.attrs["xml:lang"] === undefined) return els[0]!.text();
      return els.map((e) => [e.attrs["xml:lang"] ?? "", e.text()] as const);
    };
    const canonical = (v: unknown): string | undefined => {
      if (v === undefined) return undefined;
      const entries = Array.isArray(v) ? (v as (readonly [string, string])[]) : v && typeof v === "object" ? Object.entries(v) : null;
      return entries ? JSON.stringify([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : JSON.stringify(v);
    };
    // Changes of earlier messages (corrections, retractions, reactions, markers) are no new messages:
    // test/xmpp/message-features.test.ts checks them; here they only must not break the stream.
    const CHANGES = new Set(["urn:xmpp:message-correct:0", "urn:xmpp:message-retract:1", "urn:xmpp:reactions:0", "urn:xmpp:chat-markers:0"]);
    const isChange = (s: XmlElement) => (s.children as XmlElement[]).some((c) => typeof c === "object" && CHANGES.has(c.attrs?.xmlns ?? "") && c.name !== "markable");
    const changes = juliet.stanzas.filter((s) => s.is("message") && isChange(s)).length;
    const fromGateway = juliet.stanzas.filter((s) => s.is("message") && !isChange(s) && (s.attrs.from ?? "").split("/")[0]!.endsWith(`@${gw.domain}`));
    const copies = new Map<string, XmlElement[]>();
    for (const m of fromGateway) {
      // Well-formed is not enough: the addresses must be JIDs (RFC 7622) too.
      if (!parseJid(m.attrs.from ?? "")) problems.push(`message ${m.attrs.id} has an invalid from JID: ${JSON.stringify((m.attrs.from ?? "").slice(0, 80))}… (${(m.attrs.from ?? "").length} chars)`);
      if (!accepted.has(m.attrs.id ?? "")) problems.push(`unexpected message (no 202 for it): ${m.toString().slice(0, 300)}`);
      else copies.set(m.attrs.id!, [...(copies.get(m.attrs.id!) ?? []), m]);
    }

    // Every accepted message, whatever its recipient and whatever the shape of its text.
    const ownResource = juliet.jid.split("/")[1];
    const tally = new Map<string, number>();
    const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    for (const [id, want] of accepted) {
      const got = copies.get(id) ?? [];
      const view = views.get(id);
      const to = parseJid(want.to);
      const what = `${id} to ${JSON.stringify(want.to.slice(0, 80))} (type ${String(want.type ?? "chat")}) [${acceptedAt.get(id)?.what.slice(0, 200) ?? ""}]`;
      const toJuliet = to !== null && to.local === CONTACT && to.domain === "localhost";
      const resource = to?.resource;
      // Her bare JID, her connected resource, or another resource of hers: the server handles a
      // full JID without a session as the bare JID (RFC 6121 §8.5.3.2.1), except that Prosody
      // discards a headline addressed to a full JID it has no session for.
      const mustArrive = toJuliet && (!resource || resource === ownResource || want.type !== "headline");
      const kind = !toJuliet ? "elsewhere" : !resource ? "juliet bare" : resource === ownResource ? "juliet full (her session)" : "juliet other resource";
      const shape = (v: unknown) => (v === undefined ? "none" : typeof v === "string" ? "text" : v && typeof v === "object" && !Array.isArray(v) ? `${Object.keys(v).length}-language map` : typeof v);
      count(`${kind}: ${got.length ? "arrived" : "not at juliet"}, ${view?.status ?? "unread"}`);
      count(`body ${shape(want.body)}, subject ${shape(want.subject)}${got.length ? " (content checked)" : ""}`);
      if (got.length > 1) problems.push(`${what} arrived ${got.length} times (the link never dropped: once)`);
      if (mustArrive && got.length === 0) problems.push(`accepted message ${what} never arrived (status ${view?.status ?? "unread"})`);
      if (!toJuliet && got.length > 0) problems.push(`${what} is not addressed to Juliet, yet she received it: ${got[0]!.toString().slice(0, 200)}`);
      if (mustArrive && view && !["sent", "delivered"].includes(view.status)) problems.push(`${what} arrived but reads ${view.status}`);
      if (!mustArrive && view) {
        // "delivered": a receipt came back, e.g. from this gateway for a message to its own account.
        if (!["sent", "delivered", "failed"].includes(view.status)) problems.push(`${what} reads ${view.status}, not sent, delivered or failed`);
        if (view.status === "failed" && typeof view.error?.condition !== "string") problems.push(`${what} failed without a stanza error condition: ${JSON.stringify(view.error)}`);
      }
      for (const m of got) {
        for (const field of ["body", "subject"] as const) {
          const sentText = canonical(field === "body" && want.body === undefined && want.firstUrl !== undefined ? want.firstUrl : want[field]);
          const gotText = canonical(texts(m, field));
          // A reply's body is its text behind the fallback quote (XEP-0461 §3).
          const same = field === "body" && want.reply && typeof want.body === "string" ? typeof texts(m, field) === "string" && (texts(m, field) as string).endsWith(want.body) : sentText === gotText;
          if (!same) problems.push(`${field} of ${what} altered: sent ${String(sentText).slice(0, 160)}, got ${String(gotText).slice(0, 160)}`);
        }
      }
    }
    console.log(
      `fuzz: juliet received ${fromGateway.length} message(s) from the gateway and ${changes} change(s) of earlier ones, ${juliet.stanzas.length} stanza(s) in all; ${accepted.size} accepted (with the setup and marker messages), ${corrections} correction(s):`,
    );
    console.log([...tally.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${String(n).padStart(4)}  ${k}`).join("\n"));
    assert.deepEqual(problems, [], `FUZZ_SEED=${SEED}:\n${problems.join("\n")}`);
  }

  function oldestFirst(ids: string[]): string[] {
    return [...ids].sort((a, b) => (acceptedAt.get(a)?.at ?? 0) - (acceptedAt.get(b)?.at ?? 0));
  }

  function summarize(vs: { kind: string }[]): string[] {
    const counts = new Map<string, number>();
    for (const v of vs) counts.set(v.kind, (counts.get(v.kind) ?? 0) + 1);
    return [...counts.entries()].map(([k, n]) => `${n}× ${k}`);
  }

  function details(vs: { kind: string; detail: string }[]): string {
    const byKind = new Map<string, string[]>();
    for (const v of vs) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), v.detail]);
    return [...byKind.entries()].map(([k, ds]) => `${k} (${ds.length}), e.g.:\n${ds.slice(0, 4).map((d) => `    ${d.slice(0, 600)}`).join("\n")}`).join("\n");
  }
});
