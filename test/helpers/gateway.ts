// Starts the real gateway in-process against a fresh database and a real XMPP server, and
// gives tests a small HTTP client with tokens.
import { randomBytes } from "node:crypto";
import jwt from "jsonwebtoken";
import { loadConfig, type Config } from "../../src/config.js";
import { startGateway, type RunningGateway } from "../../src/gateway.js";
import pino, { type Logger } from "pino";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { JWT_SECRET } from "../../scripts/harness/gateway-process.js";
import type { XmppServer } from "../../scripts/harness/xmpp-server.js";
import { SseClient } from "./sse.js";
import { assertNoSchemaMismatches, checkEventItem, recordMismatch } from "./event-schema.js";
import { freePort } from "../../scripts/harness/ports.js";
import { assertNoResponseMismatches, checkResponse } from "./openapi-responses.js";

export { JWT_SECRET };

export interface HttpResult {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export interface TestGateway {
  url: string;
  config: Config;
  running: RunningGateway;
  db: TestDatabase;
  domain: string;
  adminToken: string;
  token(localpart: string, claims?: Record<string, unknown>): string;
  request(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<HttpResult>;
  createAccount(localpart: string): Promise<string>;
  sse(path: string, token: string, headers?: Record<string, string>): Promise<SseClient>;
  /** Error and fatal log entries the gateway wrote so far (captured whatever TEST_LOG_LEVEL says). */
  errorLogs(): LogEntry[];
  /** Lets stop() pass although the gateway logged entries at error level matching `pattern` (tested against the entry's JSON line). */
  allowErrorLogs(pattern: RegExp): void;
  /** Closes the gateway; throws if it emitted events off-schema or logged errors nobody expected. */
  stop(): Promise<void>;
}

/** A pino entry as JSON: `level` (50 error, 60 fatal), `msg`, and whatever fields the call logged. */
export interface LogEntry {
  level: number;
  msg?: string;
  [field: string]: unknown;
}

export interface TestGatewayOptions {
  /** The test provokes errors on purpose: error-level logs do not fail stop(). Say why where you set it. */
  expectErrors?: boolean;
}

/**
 * The in-process gateway's logger: TEST_LOG_LEVEL (or LOG_LEVEL from the test's env) decides what
 * is printed, and entries at error and fatal level are always captured as well, for stop() to
 * fail on.
 */
function capturingLogger(printLevel: string, captured: LogEntry[]): Logger {
  const capture = {
    write(line: string) {
      try {
        captured.push(JSON.parse(line) as LogEntry);
      } catch {
        captured.push({ level: 50, msg: line });
      }
    },
  };
  const streams: pino.StreamEntry[] = [{ level: "error", stream: capture }];
  const printValue = pino.levels.values[printLevel];
  if (printValue !== undefined) streams.push({ level: printLevel as pino.Level, stream: process.stdout });
  // 50: error. The logger passes what its most verbose stream wants.
  const level = printValue !== undefined && printValue < 50 ? printLevel : "error";
  return createLogger(level, pino.multistream(streams));
}

/**
 * `logger`: a caller's own logger (the caller then checks its logs itself: nothing is captured).
 * Otherwise error-level logs fail stop() unless `options.expectErrors` or `allowErrorLogs()`.
 */
export async function startTestGateway(
  server: XmppServer,
  env: Record<string, string> = {},
  existingDb?: TestDatabase,
  logger?: Logger,
  options: TestGatewayOptions = {},
): Promise<TestGateway> {
  const db = existingDb ?? (await createTestDatabase());
  const config = loadConfig({
    // A reserved port (scripts/harness/ports.ts), not one the kernel would hand out while another
    // test file's server has yet to bind it.
    PORT: String(await freePort()),
    DATABASE_URL: db.url,
    XMPP_SERVICE: server.componentService,
    XMPP_DOMAIN: server.componentDomain,
    XMPP_SECRET: server.componentSecret,
    JWT_SECRET,
    XMPP_RECONNECT_MAX: "2s",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DB_POOL_MAX: "5",
    ...env,
  });
  const captured: LogEntry[] = [];
  const allowed: RegExp[] = [];
  const running = await startGateway(config, logger ?? capturingLogger(config.logLevel, captured));
  const domain = config.xmpp.domain;
  // Ready: this instance's link is up, or (a standby, XMPP_LINK_MODE=single) the holder's is.
  await waitFor(async () => (await fetch(`${running.url}/readyz`).catch(() => null))?.status === 200, 30_000, "gateway ready (component link up here or at the holder)");
  const token = (localpart: string, claims: Record<string, unknown> = {}) =>
    jwt.sign({ sub: localpart, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });
  const adminToken = token("admin", { scope: "admin" });
  const request: TestGateway["request"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const tok = opts.token === undefined ? adminToken : opts.token;
    if (tok) headers.authorization = `Bearer ${tok}`;
    let payload: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(running.url + path, { method, headers, body: payload });
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    // Every item of a JSON page of the event log is checked against the event catalogue.
    if (method.toUpperCase() === "GET" && path.startsWith("/v1/events") && res.status === 200 && /application\/json/.test(res.headers.get("content-type") ?? "")) {
      const items = (body as { items?: unknown } | undefined)?.items;
      if (!Array.isArray(items)) recordMismatch(`GET ${path}`, `200 JSON without an items array: ${text.slice(0, 200)}`);
      else
        for (const [i, item] of items.entries()) {
          const mismatch = checkEventItem(item);
          if (mismatch) recordMismatch(`GET ${path} items[${i}]`, mismatch);
        }
    }
    // Every response is checked against the committed OpenAPI document (stop() fails on a mismatch).
    checkResponse(method, path, { status: res.status, headers: res.headers, text });
    return { status: res.status, headers: res.headers, body, text };
  };
  return {
    url: running.url,
    config,
    running,
    db,
    domain,
    adminToken,
    token,
    request,
    async createAccount(localpart) {
      const r = await request("POST", "/v1/accounts", { body: { localpart } });
      if (r.status !== 201) throw new Error(`create account ${localpart}: ${r.status} ${r.text}`);
      return r.body.jid as string;
    },
    sse: (path, tok, headers = {}) => SseClient.open(running.url + path, { authorization: `Bearer ${tok}`, ...headers }),
    errorLogs: () => [...captured],
    allowErrorLogs(pattern) {
      allowed.push(pattern);
    },
    async stop() {
      await running.close();
      if (!existingDb) await db.drop();
      // An event the gateway emitted that does not match its documented schema fails the test.
      assertNoSchemaMismatches();
      // Every response a test got through request() matches the OpenAPI document.
      assertNoResponseMismatches();
      // So does an error the gateway logged that the test did not provoke on purpose.
      if (options.expectErrors) return;
      const unexpected = captured.map((e) => JSON.stringify(e)).filter((line) => !allowed.some((p) => p.test(line)));
      if (unexpected.length)
        throw new Error(`the gateway logged ${unexpected.length} unexpected error-level entr${unexpected.length === 1 ? "y" : "ies"}:\n${unexpected.map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l)).join("\n")}`);
    },
  };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Keeps the gateway's component link down (no reconnect) until the returned function is called. */
export function holdReconnect(gw: TestGateway): () => void {
  const { reconnect } = gw.running.link.xmpp;
  reconnect.stop();
  return () => {
    reconnect.start();
    reconnect.scheduleReconnect?.();
  };
}

export const uniq = (prefix: string) => `${prefix}${randomBytes(3).toString("hex")}`;
