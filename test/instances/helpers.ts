// Shared by the multi-instance tests: a cluster of gateway processes on one database behind a real
// HAProxy, a real XMPP user, clients that retry like real ones, and failure reports that keep
// every instance's log.
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { GatewayCluster, api, type ClusterOptions } from "../../scripts/harness/cluster.js";
import { startHaproxy, type Haproxy } from "../../scripts/harness/haproxy.js";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { SseClient, type SseEvent } from "../helpers/sse.js";
import { assertNoSchemaMismatches } from "../helpers/event-schema.js";
import { comeOnline } from "../helpers/xmpp-world.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Testbed {
  server: XmppServer;
  db: TestDatabase;
  cluster: GatewayCluster;
  haproxy: Haproxy;
  /** The balancer's URL. */
  lb: string;
  juliet: XmppUser;
  /** Logs in juliet again (after an XMPP server restart): roster get and initial presence. */
  reconnectJuliet(): Promise<XmppUser>;
  stop(): Promise<void>;
}

export const JULIET = "juliet";
export const JULIET_PW = "pw-juliet";

export async function startTestbed(kind: XmppServerKind, opts: ClusterOptions = {}): Promise<Testbed> {
  const server = await startXmppServer(kind);
  await server.registerUser(JULIET, JULIET_PW);
  const db = await createTestDatabase();
  let cluster: GatewayCluster | undefined;
  let haproxy: Haproxy | undefined;
  try {
    cluster = await GatewayCluster.start(server, db.url, opts);
    haproxy = await startHaproxy(cluster.servers);
  } catch (error) {
    await cluster?.stop();
    await db.drop();
    await server.stop();
    throw error;
  }
  const bed: Testbed = {
    server,
    db,
    cluster,
    haproxy,
    lb: haproxy.url,
    juliet: await loginJuliet(server),
    async reconnectJuliet() {
      await bed.juliet.stop();
      bed.juliet = await loginJuliet(server);
      return bed.juliet;
    },
    async stop() {
      await bed.juliet?.stop();
      await haproxy?.stop();
      await cluster?.stop();
      await db.drop();
      await server.stop();
      assertNoSchemaMismatches();
    },
  };
  return bed;
}

async function loginJuliet(server: XmppServer): Promise<XmppUser> {
  const juliet = await connectUser(server, JULIET, JULIET_PW, "balcony");
  await comeOnline(juliet);
  return juliet;
}

/**
 * Runs a test body; on failure, writes every instance's log to a temp dir, prints the link
 * events (who held the link when) and HAProxy's last log lines, then rethrows.
 */
export async function withReport(bed: Testbed, label: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const dir = await bed.cluster.writeLogs(label).catch(() => "(could not write logs)");
    console.error(
      [
        `--- ${label} FAILED; instance logs in ${dir}`,
        `link events:`,
        ...bed.cluster.linkEvents().slice(-60).map((l) => `  ${l}`),
        `haproxy (last 30 lines):`,
        ...bed.haproxy.logs().slice(-30).map((l) => `  ${l}`),
        `xmpp server:`,
        bed.server.logTail(20),
      ].join("\n"),
    );
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Posting messages like a real client: Idempotency-Key, retries with the same key

export interface PostLog {
  /** key -> the ids of every 202 for it */
  ids: Map<string, Set<string>>;
  /** key -> when its first 202 came (ms since epoch) */
  acceptedAt: Map<string, number>;
  accepted: number;
  /** Attempts that failed (connection error, 5xx, 429) and were retried. */
  failures: number;
  failureKinds: Map<string, number>;
}

export function newPostLog(): PostLog {
  return { ids: new Map(), acceptedAt: new Map(), accepted: 0, failures: 0, failureKinds: new Map() };
}

/** POSTs one message until it gets a 202 (retrying with the same key), bounded by the deadline. */
export async function postUntilAccepted(base: string, token: string, key: string, to: string, body: string, log: PostLog, deadline: number): Promise<string> {
  for (;;) {
    if (Date.now() > deadline) throw new Error(`gave up on ${key}: no 202 before the deadline (${log.failures} failures so far: ${JSON.stringify([...log.failureKinds])})`);
    let kind: string;
    try {
      const r = await api(base, "POST", "/v1/messages", { token, headers: { "idempotency-key": key }, body: { to, body }, timeoutMs: 10_000 });
      if (r.status === 202) {
        const id = (r.body as { id: string }).id;
        log.ids.set(key, (log.ids.get(key) ?? new Set()).add(id));
        if (!log.acceptedAt.has(key)) log.acceptedAt.set(key, Date.now());
        log.accepted++;
        return id;
      }
      if (r.status < 500 && r.status !== 429) throw new Error(`${key}: unexpected ${r.status} ${JSON.stringify(r.body)}`);
      kind = `${r.status} ${(r.body as { code?: string } | undefined)?.code ?? ""}`.trim();
    } catch (error) {
      if (/unexpected/.test(String(error))) throw error;
      kind = `connection: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name}`;
    }
    log.failures++;
    log.failureKinds.set(kind, (log.failureKinds.get(kind) ?? 0) + 1);
    await sleep(50);
  }
}

/**
 * Checks what juliet received against the 202s: every key's body arrived at least once, one id per
 * key, and every copy carries that id as stanza id and XEP-0359 origin-id. Returns the number of
 * resends (copies beyond one).
 */
export function checkDelivered(juliet: XmppUser, log: PostLog, keys: string[], bodyOf: (key: string) => string): { resends: number; problems: string[] } {
  const problems: string[] = [];
  const byBody = new Map<string, XmlElement[]>();
  for (const s of juliet.stanzas) {
    if (!s.is("message")) continue;
    const b = s.getChildText("body");
    if (b !== null) byBody.set(b, [...(byBody.get(b) ?? []), s]);
  }
  let resends = 0;
  for (const key of keys) {
    const ids = log.ids.get(key);
    if (!ids) {
      problems.push(`${key}: never accepted`);
      continue;
    }
    if (ids.size !== 1) problems.push(`${key}: ${ids.size} ids across retries: ${[...ids].join(",")}`);
    const [id] = [...ids];
    const copies = byBody.get(bodyOf(key)) ?? [];
    if (copies.length === 0) problems.push(`${key}: accepted as ${id} but never delivered`);
    resends += Math.max(0, copies.length - 1);
    for (const c of copies) {
      if (c.attrs.id !== id) problems.push(`${key}: a copy has stanza id ${c.attrs.id}, not ${id}`);
      const origin = c.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id;
      if (origin !== id) problems.push(`${key}: a copy has origin-id ${origin}, not ${id}`);
    }
  }
  return { resends, problems };
}

/** Waits (bounded) until juliet has a message with each of the bodies. */
export async function waitForBodies(juliet: XmppUser, bodies: string[], timeoutMs: number): Promise<void> {
  const want = new Set(bodies);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = new Set(juliet.stanzas.filter((s) => s.is("message")).map((s) => s.getChildText("body")));
    const missing = [...want].filter((b) => !got.has(b));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${missing.length} of ${want.size} accepted messages never reached juliet within ${timeoutMs} ms, e.g. ${missing.slice(0, 5).join(", ")}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Failover timing

/**
 * Polls the /readyz of the given instances directly every 50 ms until one says xmpp "up"; returns
 * its index and the time since `since` (bounded by timeoutMs, then throws).
 */
export async function waitForNewHolder(bed: Testbed, candidates: number[], since: number, timeoutMs = 20_000): Promise<{ index: number; ms: number }> {
  const deadline = since + timeoutMs;
  for (;;) {
    const rs = await Promise.all(candidates.map((i) => bed.cluster.readyz(i, 1000)));
    const k = rs.findIndex((r) => r.xmpp === "up");
    if (k >= 0) return { index: candidates[k]!, ms: Date.now() - since };
    if (Date.now() > deadline) throw new Error(`no instance took the link within ${timeoutMs} ms: ${JSON.stringify(rs)}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// Event streams

export function messageBody(e: SseEvent): string | null {
  const b = (e.json as { body?: unknown } | undefined)?.body;
  if (typeof b === "string") return b;
  if (b && typeof b === "object") return Object.values(b as Record<string, string>)[0] ?? null;
  return null;
}

/** Opens a stream through the balancer until one is served by the wanted instance (bounded). */
export async function openStreamOn(lb: string, path: string, token: string, wanted: string, headers: Record<string, string> = {}, attempts = 9): Promise<SseClient> {
  const seen: string[] = [];
  for (let i = 0; i < attempts; i++) {
    const s = await SseClient.open(lb + path, { authorization: `Bearer ${token}`, ...headers });
    const by = s.headers?.get("x-served-by") ?? `(status ${s.status})`;
    if (s.status === 200 && by === wanted) return s;
    seen.push(by);
    await s.close();
  }
  throw new Error(`HAProxy did not route a stream to ${wanted} in ${attempts} attempts; it chose ${seen.join(", ")}`);
}
