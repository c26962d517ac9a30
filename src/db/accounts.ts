// Accounts: the localparts this gateway hosts. Lookups by localpart are cached in-process for a
// short time (a cache only: the row in Postgres is the truth).
import { LRUCache } from "lru-cache";
import { fetchFresh } from "./cached-read.js";
import type { Account } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import type { Db, Tx } from "./client.js";
import { Prisma } from "./generated/client.js";
import { CHANNELS, notify, type Notifications } from "./notify.js";
import { WEBHOOK_LANES_LOCK } from "./webhooks.js";

/**
 * A new account's lanes of the every-account webhooks, from its first event. The lock (shared
 * here, exclusive while such a webhook is created) and the second statement's fresh snapshot
 * make sure a webhook created concurrently sees this account or this account sees it.
 */
async function addEveryAccountLanes(tx: Tx, accountId: number): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${WEBHOOK_LANES_LOCK})`;
  await tx.$executeRaw`INSERT INTO webhook_lane (webhook_id, account_id, seq) SELECT id, ${accountId}, 0 FROM webhook WHERE account_id IS NULL`;
}

const select = { id: true, localpart: true, createdAt: true } as const;

export class Accounts {
  private readonly cache: LRUCache<string, Account>;

  constructor(private readonly db: Db) {
    // An account not found is not cached (it may be created any moment).
    this.cache = new LRUCache<string, Account>({ max: 50_000, ttl: 30_000, fetchMethod: async (localpart) => (await db.account.findUnique({ where: { localpart }, select })) ?? undefined });
  }

  /** Forgets what another instance changed (a deleted account), and everything after a missed notification. */
  listen(notifications: Notifications): void {
    notifications.on(CHANNELS.cache, (payload) => {
      if (payload === null) this.cache.clear();
      else if (payload.startsWith("account:")) this.cache.delete(payload.slice("account:".length));
    });
  }

  async find(localpart: string): Promise<Account | null> {
    return (await fetchFresh(this.cache, localpart)) ?? null;
  }

  async create(localpart: string): Promise<Account> {
    try {
      const row = await this.db.$transaction(async (tx) => {
        const created = await tx.account.create({ data: { localpart }, select });
        await addEveryAccountLanes(tx, created.id);
        return created;
      });
      this.cache.set(localpart, row);
      return row;
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
        throw new AppError("account-exists", `account "${localpart}" already exists`);
      }
      throw err;
    }
  }

  /**
   * For auto-provisioning: creates the account unless it exists. Concurrent first requests race
   * here, so it is INSERT ... ON CONFLICT DO NOTHING, then a read in a new statement (whose
   * snapshot sees the row the winner committed).
   */
  async ensure(localpart: string): Promise<Account> {
    const inserted = await this.db.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: number; created_at: Date }[]>`
        INSERT INTO account (localpart) VALUES (${localpart}) ON CONFLICT (localpart) DO NOTHING RETURNING id, created_at`;
      if (rows[0]) await addEveryAccountLanes(tx, rows[0].id);
      return rows;
    });
    const first = inserted[0];
    const row = first ? { id: first.id, localpart, createdAt: first.created_at } : await this.db.account.findUnique({ where: { localpart }, select });
    if (!row) throw new Error(`account ${localpart} vanished while being provisioned`);
    this.cache.set(localpart, row);
    return row;
  }

  list(afterId: number, limit: number): Promise<Account[]> {
    return this.db.account.findMany({ where: { id: { gt: afterId } }, orderBy: { id: "asc" }, take: limit, select });
  }

  /** Deletes the account row; its data goes with it (ON DELETE CASCADE). Every instance forgets it on commit. */
  async delete(tx: Tx, id: number, localpart: string): Promise<void> {
    await tx.account.delete({ where: { id } });
    await notify(tx, CHANNELS.cache, `account:${localpart}`);
    this.cache.delete(localpart);
  }

  forget(localpart: string): void {
    this.cache.delete(localpart);
  }
}
