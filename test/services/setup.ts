// The service tests' world: a fresh, migrated PostgreSQL database, the repositories over it, a
// FakeOutbound instead of the component link, and the Delivery that drains the outbox to it (this
// instance always holds the link, unfenced). Each test file calls setup() in before() and
// teardown() in after(); the use cases are constructed in the test files exactly as src/gateway.ts
// constructs them (Messaging, which every sending test needs, through env.messaging()). Use cases
// only record stanzas: a test that looks at the port calls flush() first.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { Accounts as AccountStore } from "../../src/db/accounts.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { readEvents } from "../../src/db/event-reads.js";
import type { StoredEvent } from "../../src/db/events.js";
import type { InboundRow } from "../../src/db/inbound-writes.js";
import { Messages } from "../../src/db/messages.js";
import { outboxStanzas } from "../../src/db/outbox.js";
import { migrate } from "../../src/db/migrate.js";
import { deadSeconds, Sessions } from "../../src/db/sessions.js";
import { accountJid, type Account, type AccountRef } from "../../src/domain/account.js";
import { AppError, type ErrorCode } from "../../src/domain/errors.js";
import type { InboundStanza } from "../../src/domain/inbound.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Delivery, type SendGate } from "../../src/services/delivery.js";
import { Inbound } from "../../src/services/inbound.js";
import { Messaging } from "../../src/services/messaging.js";
import { Presence, type PresenceTiming } from "../../src/services/presence.js";
import type { ServiceLog, ServiceMetrics } from "../../src/services/ports.js";
import { FakeOutbound } from "./fake-port.js";

export const DOMAIN = "balcony.test";

export interface TestAccount extends Account {
  /** The account's bare JID. */
  jid: string;
  /** What the roster and presence use cases take. */
  ref: AccountRef;
}

export interface LogEntry {
  level: "debug" | "info" | "warn";
  o: object;
  m: string;
}

export interface Env {
  tdb: TestDatabase;
  db: Database;
  accountStore: AccountStore;
  messages: Messages;
  sessions: Sessions;
  out: FakeOutbound;
  domain: string;
  /** A ServiceLog that keeps what it was told (tests may assert on warnings). */
  log: ServiceLog & { entries: LogEntry[] };
  metrics: ServiceMetrics & { accepted: number; written: number };
  /** What Delivery asks before it drains: this instance holds the link, and claims are not fenced. */
  gate: SendGate;
  /** Drains the outbox and the message queue to `out` when kicked (not started: no sweep timer). */
  delivery: Delivery;
  /**
   * A Messaging as src/gateway.ts builds it (without rooms and blocking: no room joined, nobody
   * blocked), recording through `delivery` and sizing stanzas for `port`. teardown() waits for
   * its writes before it stops anything.
   */
  messaging(delivery?: Delivery, port?: FakeOutbound, notBlocked?: (accountId: number, to: string) => Promise<void>): Messaging;
  /** A Presence as src/gateway.ts builds it, on this env's sessions and `delivery`, with these timings. */
  presence(timing: PresenceTiming): Presence;
  /** A started Delivery of its own on `out` that sweeps every `sweepMs` (the shared one has no sweep timer); teardown() stops it. */
  sweeping(sweepMs: number): Delivery;
  /**
   * Kicks the delivery and waits (at most `ms`) until the outbox is empty and no outbound message
   * is queued, i.e. until everything recorded so far is on `out`. Only for a port that is online
   * and confirming: it fails at once otherwise (nothing could drain).
   */
  flush(ms?: number): Promise<void>;
  /** What went out to `out` so far, once everything recorded is on it (flush()). */
  sent(): Promise<Stanza[]>;
  /** Before each test: everything left over drained, then a fresh port (online, confirming, empty). */
  clean(): Promise<void>;
  /** The stanza outbox in sequence order: what waits for the link. */
  outbox(): Promise<OutboxRow[]>;
  /** A new account with a localpart no other test uses. */
  account(prefix?: string): Promise<TestAccount>;
  /** The account's event log after `after` (every session's view: resource filter off). */
  events(accountId: number, after?: number): Promise<StoredEvent[]>;
}

export interface OutboxRow {
  seq: number;
  accountId: number | null;
  stanza: Stanza;
}

let counter = 0;

/** What each Env made that teardown() must wind down: its Messaging and sweeping Delivery instances. */
const madeBy = new WeakMap<Env, { senders: Messaging[]; holders: Delivery[] }>();

export async function setup(): Promise<Env> {
  const tdb = await createTestDatabase();
  const db = openDatabase(tdb.url, 3);
  try {
    await migrate(db.pool);
  } catch (err) {
    await db.close();
    await tdb.drop();
    throw err;
  }
  const accountStore = new AccountStore(db.prisma);
  const entries: LogEntry[] = [];
  const log = {
    entries,
    debug: (o: object, m: string) => void entries.push({ level: "debug", o, m }),
    info: (o: object, m: string) => void entries.push({ level: "info", o, m }),
    warn: (o: object, m: string) => void entries.push({ level: "warn", o, m }),
  };
  const metrics = {
    accepted: 0,
    written: 0,
    messagesAccepted(n: number) {
      metrics.accepted += n;
    },
    messagesWritten(n: number) {
      metrics.written += n;
    },
  };
  const out = new FakeOutbound();
  const gate: SendGate = { holder: true, exclusive: true, fence: () => null, drainIdleLimitMs: 0 };
  const delivery = new Delivery(db, out, gate, log, metrics);
  const messages = new Messages(db.prisma, db.pool);
  const pending = async () => {
    const { rows } = await db.pool.query<{ outbox: number; queued: number }>(
      // The queue, not message.status: a message no longer queued (a receipt came first) still
      // waits for the drain to take it out.
      "SELECT (SELECT count(*) FROM outbox)::int AS outbox, (SELECT count(*) FROM message_queue)::int AS queued",
    );
    return rows[0]!;
  };
  const flush = async (ms = 5000) => {
    if (!out.online || !out.confirms) throw new Error(`flush() needs a port that is online and confirming (online: ${out.online}, confirms: ${out.confirms})`);
    const deadline = Date.now() + ms;
    for (;;) {
      // Every round kicks again: Delivery can lose a kick that lands while a drain is finishing
      // (after its last check, before `running` is cleared), and the tests start no sweep timer.
      delivery.kick();
      const left = await pending();
      // Returns with no drain running: one still in flight (its last kick's) could claim what a
      // test records next, after the test took the link down, and write part of it when it is up.
      if (left.outbox === 0 && left.queued === 0) return delivery.idle();
      if (Date.now() > deadline) throw new Error(`flush(): after ${ms} ms, ${left.outbox} outbox rows and ${left.queued} queued messages are still waiting for the link`);
      await sleep(5);
    }
  };
  const made = { senders: [] as Messaging[], holders: [] as Delivery[] };
  const env: Env = {
    tdb,
    db,
    accountStore,
    messages,
    // The gateway's default grace (60 s) and heartbeat (15 s).
    sessions: new Sessions(db.prisma, db.pool, deadSeconds(60, 15_000)),
    out,
    domain: DOMAIN,
    log,
    metrics,
    gate,
    delivery,
    messaging(d = delivery, port = out, notBlocked) {
      const m = new Messaging(messages, d, port, DOMAIN, metrics, undefined, notBlocked);
      made.senders.push(m);
      return m;
    },
    presence(timing) {
      return new Presence(db, env.sessions, delivery, DOMAIN, timing, log);
    },
    sweeping(sweepMs) {
      const d = new Delivery(db, out, gate, log, metrics, sweepMs);
      made.holders.push(d);
      d.start();
      return d;
    },
    flush,
    async sent() {
      await flush();
      return out.sent;
    },
    async clean() {
      out.reset();
      await flush();
      out.reset();
    },
    async outbox() {
      const { rows } = await db.pool.query<{ seq: number; account_id: number | null; stanza: Parameters<typeof outboxStanzas>[0] }>("SELECT seq, account_id, stanza FROM outbox ORDER BY seq");
      // A broadcast is one row (src/db/outbox.ts): listed as the stanzas it stands for, same seq.
      return rows.flatMap((r) => outboxStanzas(r.stanza).map((stanza) => ({ seq: Number(r.seq), accountId: r.account_id, stanza })));
    },
    async account(prefix = "user") {
      const row = await accountStore.create(`${prefix}${++counter}`);
      const jid = accountJid(row.localpart, DOMAIN);
      return { ...row, jid, ref: { id: row.id, jid } };
    },
    // Without the running size readEvents leaves on each row (its `more`), for tests that compare rows whole.
    events: async (accountId, after = 0) => (await readEvents(db.pool, accountId, after, 1000, null)).events.map(({ upto: _, ...e }: StoredEvent & { upto?: number }) => e),
  };
  madeBy.set(env, made);
  return env;
}

export async function teardown(env: Env | undefined): Promise<void> {
  if (!env) return;
  // Accepted messages finish their inserts before the deliveries they record through stop.
  const made = madeBy.get(env);
  await Promise.all((made?.senders ?? []).map((m) => m.idle()));
  await Promise.all((made?.holders ?? []).map((d) => d.stop()));
  await env.delivery.stop();
  await env.db.close();
  await env.tdb.drop();
}

/** Polls `cond` until it holds; fails after `ms` naming what it waited for. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** `p`, or a failure after `ms` (so a test that waits for something that never comes fails fast). */
export async function within<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An assertion predicate for assert.rejects: an AppError with this code. */
export const appError = (code: ErrorCode) => (err: unknown) => {
  if (!(err instanceof AppError) || err.code !== code) throw new Error(`expected AppError "${code}", got ${String(err)}`, { cause: err });
  return true;
};

/** An Inbound as src/gateway.ts builds it on `env`; `over` swaps the database, the account store (its cache), the transactions' Delivery or the blocklists. */
export function inboundOf(
  env: Env,
  over: { db?: Database; accounts?: AccountStore; delivery?: Pick<Delivery, "transaction" | "sqlTransaction">; blocks?: ConstructorParameters<typeof Inbound>[7] } = {},
): Inbound {
  return new Inbound(over.db ?? env.db, over.accounts ?? env.accountStore, { messages: env.messages, sessions: env.sessions }, over.delivery ?? env.delivery, env.out, env.domain, env.log, over.blocks);
}

/** Hands the stanzas to `inbound` synchronously, so they make one batch, and waits until it is processed. */
export async function feedBatch(inbound: Inbound, ...stanzas: InboundStanza[]): Promise<void> {
  for (const s of stanzas) inbound.receive(s);
  await inbound.idle();
}

/** What an Inbound made by countedInbound() ran. */
export interface InboundCounts {
  /** Transactions: one per batch, plus one per stanza if the batch failed. */
  transactions: number;
  /** Of those, the ones on a raw pg client. */
  raw: number;
  /** Statements on the pool itself, outside any transaction (autocommit). */
  alone: number;
}

/** An Inbound as src/gateway.ts builds it (on `env`), counting the transactions and statements it runs. */
export function countedInbound(env: Env): { inbound: Inbound; counts: InboundCounts } {
  const counts: InboundCounts = { transactions: 0, raw: 0, alone: 0 };
  const counted: Pick<Delivery, "transaction" | "sqlTransaction"> = {
    sqlTransaction: (fn) => (counts.transactions++, counts.raw++, env.delivery.sqlTransaction(fn)),
    transaction: (fn) => (counts.transactions++, env.delivery.transaction(fn)),
  };
  const pool = new Proxy(env.db.pool, {
    get: (target, prop, receiver) => {
      if (prop !== "query") return Reflect.get(target, prop, receiver) as unknown;
      return (...args: Parameters<typeof target.query>) => {
        counts.alone++;
        return (target.query as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const inbound = inboundOf(env, { db: { ...env.db, pool }, delivery: counted });
  return { inbound, counts };
}

/** A received chat message from `from` (juliet@example.net/balcony by default) to `a`, as storeInbound takes it. */
export const inboundRow = (a: TestAccount, body: string, from = "juliet@example.net/balcony"): InboundRow => ({
  id: randomUUID(),
  accountId: a.id,
  peer: from.split("/")[0]!,
  from,
  to: a.jid,
  type: "chat",
  body,
  subject: null,
  thread: null,
  lang: null,
  state: null,
  receipt: false,
  stanzaId: null,
});
