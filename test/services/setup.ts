// The service tests' world: a fresh, migrated PostgreSQL database, the repositories over it, and a
// FakeOutbound instead of the component link. Each test file calls setup() in before() and
// teardown() in after(); the use cases are constructed in the test files exactly as src/gateway.ts
// constructs them.
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { Accounts as AccountStore } from "../../src/db/accounts.js";
import { openDatabase, type Database } from "../../src/db/client.js";
import { readEvents, type StoredEvent } from "../../src/db/events.js";
import { Messages } from "../../src/db/messages.js";
import { migrate } from "../../src/db/migrate.js";
import { Sessions } from "../../src/db/sessions.js";
import { accountJid, type Account, type AccountRef } from "../../src/domain/account.js";
import { AppError, type ErrorCode } from "../../src/domain/errors.js";
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
  /** A new account with a localpart no other test uses. */
  account(prefix?: string): Promise<TestAccount>;
  /** The account's event log after `after` (every session's view: resource filter off). */
  events(accountId: number, after?: number): Promise<StoredEvent[]>;
}

let counter = 0;

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
  return {
    tdb,
    db,
    accountStore,
    messages: new Messages(db.prisma, db.pool),
    sessions: new Sessions(db.prisma),
    out: new FakeOutbound(),
    domain: DOMAIN,
    log,
    metrics,
    async account(prefix = "user") {
      const row = await accountStore.create(`${prefix}${++counter}`);
      const jid = accountJid(row.localpart, DOMAIN);
      return { ...row, jid, ref: { id: row.id, jid } };
    },
    events: (accountId, after = 0) => readEvents(db.prisma, accountId, after, 1000, null),
  };
}

export async function teardown(env: Env | undefined): Promise<void> {
  if (!env) return;
  await env.db.close();
  await env.tdb.drop();
}

/** Polls `cond` until it holds; fails after `ms` naming what it waited for. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
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
