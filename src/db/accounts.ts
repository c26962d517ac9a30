// Accounts: the localparts this gateway hosts. Lookups by localpart are cached in-process for a
// short time (a cache only: the row in Postgres is the truth), each with the latest deletion of
// its localpart (table account_deletion): the caller's tokens issued before it are an earlier
// account's (src/services/accounts.ts caller), and telling so costs no statement of its own.
import { LRUCache } from "lru-cache";
import { fetchFresh } from "./cached-read.js";
import type { Account } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { isSendable } from "../domain/message.js";
import { exec, sql, type AnyTx, type Db, type Tx } from "./client.js";
import { toOutbound } from "./messages.js";
import { CHANNELS, notify, type Notifications } from "./notify.js";
import { MOOT, OUTBOUND_COLUMNS } from "./outbox-claim.js";
import { endAllSessions } from "./sessions.js";
import { WEBHOOK_LANES_LOCK } from "./webhooks.js";

/**
 * A new account's lanes of the every-account webhooks, from its first event. The lock (shared
 * here, exclusive while such a webhook is created) and the second statement's fresh snapshot
 * make sure a webhook created concurrently sees this account or this account sees it.
 */
async function addEveryAccountLanes(tx: Tx, accountId: number): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${WEBHOOK_LANES_LOCK})`;
  // From its log's start: an account made again numbers its events after a deleted one's (insert()).
  await tx.$executeRaw`INSERT INTO webhook_lane (webhook_id, account_id, seq) SELECT w.id, a.id, a.last_seq FROM webhook w, account a WHERE w.account_id IS NULL AND a.id = ${accountId}`;
}

const select = { id: true, localpart: true, createdAt: true } as const;

/** An account (null when there is none) with the latest deletion of its localpart (null when never deleted). */
export interface Lookup<A extends Account | null = Account | null> {
  account: A;
  deletedAt: Date | null;
}

/**
 * One statement: the account and its localpart's deletion mark, a row even when neither exists.
 * The deletion is committed with the account's row gone (delete()), so a read that sees an
 * account created again sees the mark of the deletion before it.
 */
async function lookup(db: Db | AnyTx, localpart: string): Promise<Lookup> {
  const rows = await sql<{ id: number | null; created_at: Date | null; deleted_at: Date | null }>(
    db as AnyTx,
    `SELECT a.id, a.created_at, d.deleted_at FROM (SELECT $1::text AS localpart) k
     LEFT JOIN account a ON a.localpart = k.localpart LEFT JOIN account_deletion d ON d.localpart = k.localpart`,
    [localpart],
  );
  const r = rows[0]!;
  return { account: r.id === null ? null : { id: r.id, localpart, createdAt: r.created_at! }, deletedAt: r.deleted_at };
}

/** lookup() as the cache holds it: only an account found (see the constructor). */
async function cacheable(db: Db | AnyTx, localpart: string): Promise<Lookup<Account> | undefined> {
  const found = await lookup(db, localpart);
  return found.account ? { account: found.account, deletedAt: found.deletedAt } : undefined;
}

/** The localpart's deletion mark, in a transaction about to create an account: read before it writes anything. */
async function deletionOf(tx: Tx, localpart: string): Promise<Date | null> {
  const marks = await tx.$queryRaw<{ deleted_at: Date }[]>`SELECT deleted_at FROM account_deletion WHERE localpart = ${localpart}`;
  return marks[0]?.deleted_at ?? null;
}

/**
 * Creates the account unless the localpart has one (null then), with its every-account webhook
 * lanes. The INSERT returns the localpart's deletion mark too, for the cache: no statement of its
 * own, whether or not anything reads it (DELETION_REVOKES_TOKENS). An account made again starts
 * its roster versions after the deleted one's (account_deletion.roster_ver), and its events one
 * number past the deleted one's last (account_deletion.last_seq): a cursor of the old log then
 * always finds a gap before the new log's first event, and gets a resync (src/db/event-reads.ts).
 */
async function insert(tx: Tx, localpart: string): Promise<Lookup<Account> | null> {
  const rows = await tx.$queryRaw<{ id: number; created_at: Date; deleted_at: Date | null }[]>`
    INSERT INTO account (localpart, roster_ver, last_seq)
    SELECT ${localpart}, coalesce(d.roster_ver + 1, 0), coalesce(d.last_seq + 1, 0) FROM (SELECT 1) one LEFT JOIN account_deletion d ON d.localpart = ${localpart}
    ON CONFLICT (localpart) DO NOTHING
    RETURNING id, created_at, (SELECT deleted_at FROM account_deletion WHERE localpart = ${localpart}) AS deleted_at`;
  const r = rows[0];
  if (!r) return null;
  await addEveryAccountLanes(tx, r.id);
  return { account: { id: r.id, localpart, createdAt: r.created_at }, deletedAt: r.deleted_at };
}

/** The account's rows in the message queue, for SQL that appends FOR UPDATE OF q. */
const QUEUED = `FROM message_queue q JOIN message m ON m.id = q.message_id WHERE m.account_id = $1 ORDER BY q.seq`;

type QueuedRow = Parameters<typeof toOutbound>[0] & { seq: string; status: string; retracted: boolean; moot: string[] | null };

/**
 * Turns the account's queued outbound messages into outbox stanzas before the cascade takes the
 * messages (the drain would find them gone and drop them unsent): a 2xx is a promise to send
 * (API.md "Every outbound stanza is durable"). Each keeps its `seq` (the queue and the outbox
 * share the message sequence, so the number is free in the outbox and keeps its place in the one
 * order), and is the stanza the drain would have written (src/db/outbox.ts drainOnce, with
 * Delivery's asStanza), decided as the drain decides: a message a receipt or an error reached
 * first is not sent, a retracted one is withdrawn with its queued retraction, corrections and
 * reactions (XEP-0424 Business Rules), an edited one goes once with its latest text and its
 * queued corrections are dropped (MOOT), one the server would refuse is not sent. Needs the
 * account row locked (no message can be added), and takes the queue rows' locks, waiting for a
 * drain step that claimed some (it sends them or rolls back: no row is sent twice).
 */
async function handOverQueued(tx: Tx, accountId: number): Promise<void> {
  const rows = await sql<QueuedRow>(
    tx,
    `SELECT q.seq::text AS seq, ${OUTBOUND_COLUMNS}, m.status::text AS status, m.retracted_at IS NOT NULL AS retracted, ${MOOT} AS moot ${QUEUED} FOR UPDATE OF q`,
    [accountId],
  );
  if (rows.length === 0) return;
  const queued = rows.filter((r) => r.status === "queued");
  const moot = queued.flatMap((r) => r.moot ?? []);
  const stanzas = queued.filter((r) => !r.retracted).map((r) => [r.seq, { kind: "message", ...toOutbound(r) }] as const);
  await exec(tx, `DELETE FROM message_queue WHERE seq IN (SELECT value::bigint FROM json_array_elements_text($1::json))`, [JSON.stringify(rows.map((r) => r.seq))]);
  if (moot.length) await exec(tx, `DELETE FROM outbox WHERE seq IN (SELECT value::bigint FROM json_array_elements_text($1::json))`, [JSON.stringify(moot)]);
  const sendable = stanzas.filter(([, s]) => isSendable(s));
  if (sendable.length === 0) return;
  // One JSON array parameter of [seq, stanza] pairs (see src/db/outbox.ts enqueue).
  await exec(tx, `INSERT INTO outbox (seq, account_id, stanza) SELECT (e->>0)::bigint, $1::int, e->1 FROM json_array_elements($2::json) e`, [accountId, JSON.stringify(sendable)]);
  await notify(tx, CHANNELS.outbox);
}

export class Accounts {
  private readonly cache: LRUCache<string, Lookup<Account>>;

  constructor(private readonly db: Db) {
    // An account not found is not cached (it may be created any moment). A deletion drops the
    // entry on every instance (delete(), listen()): the next read has the new mark.
    this.cache = new LRUCache<string, Lookup<Account>>({
      max: 50_000,
      ttl: 30_000,
      fetchMethod: (localpart) => cacheable(db, localpart),
    });
  }

  /** Forgets what another instance changed (a deleted account), and everything after a missed notification. */
  listen(notifications: Notifications): void {
    notifications.on(CHANNELS.cache, (payload) => {
      if (payload === null) this.cache.clear();
      else if (payload.startsWith("account:")) this.cache.delete(payload.slice("account:".length));
    });
  }

  /**
   * The cached row (read on a miss). Another instance may have deleted the account, or deleted and
   * created it again (a new id), without this instance having heard of it yet: use it only for
   * work that notices an id that is gone (src/http/context.ts callerAccount, inbound stanzas:
   * src/services/inbound-stale.ts), else read().
   */
  async find(localpart: string, tx?: AnyTx): Promise<Account | null> {
    return (await fetchFresh(this.cache, localpart, tx && (() => cacheable(tx, localpart))))?.account ?? null;
  }

  /** find() with the deletion mark (deletedAt null when the account is not found: unread). */
  async findCaller(localpart: string): Promise<Lookup> {
    return (await fetchFresh(this.cache, localpart)) ?? { account: null, deletedAt: null };
  }

  /**
   * The row as the database has it now, past the cache. A cached entry it contradicts (the
   * account deleted, or created again with a new id, on another instance whose NOTIFY this one has
   * not read yet) is dropped; the row read is not cached (a NOTIFY arriving meanwhile could not
   * abort it, src/db/cached-read.ts).
   */
  async read(localpart: string, tx?: AnyTx): Promise<Account | null> {
    return (await this.readCaller(localpart, tx)).account;
  }

  /** read() with the deletion mark (in `tx` if given: see find()). */
  async readCaller(localpart: string, tx?: AnyTx): Promise<Lookup> {
    const found = await lookup(tx ?? this.db, localpart);
    if (this.cache.peek(localpart)?.account.id !== found.account?.id) this.cache.delete(localpart);
    return found;
  }

  /**
   * Whether `id`, taken from the cache, is still `localpart`'s account: read as read() does. Null
   * when it is; else the account under the localpart now (`now`, null when there is none). Where
   * something found nothing under a cached id, which is what an id that is gone finds.
   */
  async replaced(localpart: string, id: number, tx?: AnyTx): Promise<{ now: Account | null } | null> {
    const now = await this.read(localpart, tx);
    return now?.id === id ? null : { now };
  }

  /**
   * Drops the cached entries of `localparts` that the database contradicts (the account deleted,
   * or created again with a new id, on an instance whose NOTIFY this one has not read yet), with
   * one read for them all: for work that found an account id it took from the cache gone
   * (src/services/inbound-stale.ts). The next find() reads those again.
   */
  async recheck(localparts: readonly string[]): Promise<void> {
    const cached = [...new Set(localparts)].filter((lp) => this.cache.peek(lp) !== undefined);
    if (cached.length === 0) return;
    const rows = await this.db.account.findMany({ where: { localpart: { in: cached } }, select: { id: true, localpart: true } });
    const now = new Map(rows.map((r) => [r.localpart, r.id]));
    for (const lp of cached) if (this.cache.peek(lp)?.account.id !== now.get(lp)) this.cache.delete(lp);
  }

  async create(localpart: string): Promise<Account> {
    const row = await this.db.$transaction((tx) => insert(tx, localpart));
    if (!row) throw new AppError("account-exists", `account "${localpart}" already exists`);
    this.cache.set(localpart, row);
    return row.account;
  }

  /**
   * For auto-provisioning: creates the account unless it exists. Concurrent first requests race
   * here, so it is INSERT ... ON CONFLICT DO NOTHING, then a read in a new statement (whose
   * snapshot sees the row the winner committed). `admit` (null: nothing to check) sees the
   * localpart's deletion mark before anything is written, and that of an account found created
   * meanwhile, and throws to refuse: an earlier account's token creates nothing.
   */
  async ensure(localpart: string, admit: ((deletedAt: Date | null) => void) | null): Promise<Account> {
    const inserted = await this.db.$transaction(async (tx) => {
      if (admit) admit(await deletionOf(tx, localpart));
      return insert(tx, localpart);
    });
    const found = inserted ?? (await lookup(this.db, localpart));
    if (!found.account) throw new Error(`account ${localpart} vanished while being provisioned`);
    if (!inserted) admit?.(found.deletedAt);
    this.cache.set(localpart, { account: found.account, deletedAt: found.deletedAt });
    return found.account;
  }

  list(afterId: number, limit: number): Promise<Account[]> {
    return this.db.account.findMany({ where: { id: { gt: afterId } }, orderBy: { id: "asc" }, take: limit, select });
  }

  /**
   * Locks the account's queued messages and stanzas, first waiting out any drain step that claimed
   * some: from then on no drain (FOR UPDATE SKIP LOCKED) sends them, nor anything of the account's
   * recorded behind them, before the deletion commits and hands the messages over (delete()). Taken
   * before the account row's lock, which a drain step needs to record one of the account's messages
   * failed: waiting for the step while holding that lock would deadlock it.
   */
  async holdQueue(tx: Tx, id: number): Promise<void> {
    await sql(tx, `SELECT 1 ${QUEUED} FOR UPDATE OF q`, [id]);
    await sql(tx, "SELECT 1 FROM outbox WHERE account_id = $1 ORDER BY seq FOR UPDATE", [id]);
  }

  /**
   * Deletes the account row, under its lock (src/db/roster.ts lockAccount); its data goes with it
   * (ON DELETE CASCADE), its queued messages first become outbox stanzas. Every instance forgets it on commit.
   */
  async delete(tx: Tx, id: number, localpart: string): Promise<void> {
    await handOverQueued(tx, id);
    const gone = await tx.account.delete({ where: { id }, select: { rosterVer: true, lastSeq: true } });
    // The account's tokens stay valid until they expire: from now on they are refused (src/domain/
    // account.ts issuedBeforeDeletion), also for an account created again under the localpart.
    // clock_timestamp(), not the transaction's start: a token minted while the deletion ran is
    // the old account's too.
    // Its roster version and event sequence too: an account created again starts after them (insert()).
    await tx.$executeRaw`
      INSERT INTO account_deletion (localpart, deleted_at, roster_ver, last_seq) VALUES (${localpart}, clock_timestamp(), ${gone.rosterVer}, ${gone.lastSeq})
      ON CONFLICT (localpart) DO UPDATE SET deleted_at = EXCLUDED.deleted_at, roster_ver = greatest(account_deletion.roster_ver, EXCLUDED.roster_ver),
        last_seq = greatest(account_deletion.last_seq, EXCLUDED.last_seq)`;
    await notify(tx, CHANNELS.cache, `account:${localpart}`);
    // Its open streams end on every instance (their sessions went with the account's rows).
    await endAllSessions(tx, id);
    this.cache.delete(localpart);
  }

  forget(localpart: string): void {
    this.cache.delete(localpart);
  }
}
