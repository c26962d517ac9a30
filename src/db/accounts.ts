// Accounts: the localparts this gateway hosts. Lookups by localpart are cached in-process for a
// short time (a cache only: the row in Postgres is the truth).
import { AppError } from "../domain/errors.js";
import type { Db } from "./client.js";
import { Prisma } from "./generated/client.js";

export interface AccountRow {
  id: number;
  localpart: string;
  createdAt: Date;
}

const CACHE_MS = 30_000;

export class Accounts {
  private cache = new Map<string, { row: AccountRow; until: number }>();

  constructor(private readonly db: Db) {}

  async find(localpart: string): Promise<AccountRow | null> {
    const hit = this.cache.get(localpart);
    if (hit && hit.until > Date.now()) return hit.row;
    const row = await this.db.account.findUnique({ where: { localpart }, select: { id: true, localpart: true, createdAt: true } });
    if (row) this.remember(row);
    else this.cache.delete(localpart);
    return row;
  }

  async get(localpart: string): Promise<AccountRow> {
    const row = await this.find(localpart);
    if (!row) throw new AppError("account-not-found", `no account "${localpart}"`);
    return row;
  }

  async create(localpart: string): Promise<AccountRow> {
    try {
      const row = await this.db.account.create({ data: { localpart }, select: { id: true, localpart: true, createdAt: true } });
      this.remember(row);
      return row;
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
        throw new AppError("account-exists", `account "${localpart}" already exists`);
      }
      throw err;
    }
  }

  /** For auto-provisioning: creates the account unless it exists. */
  async ensure(localpart: string): Promise<AccountRow> {
    const row = await this.db.account.upsert({
      where: { localpart },
      create: { localpart },
      update: {},
      select: { id: true, localpart: true, createdAt: true },
    });
    this.remember(row);
    return row;
  }

  async list(afterId: number, limit: number): Promise<AccountRow[]> {
    return this.db.account.findMany({
      where: { id: { gt: afterId } },
      orderBy: { id: "asc" },
      take: limit,
      select: { id: true, localpart: true, createdAt: true },
    });
  }

  forget(localpart: string): void {
    this.cache.delete(localpart);
  }

  private remember(row: AccountRow): void {
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(row.localpart, { row, until: Date.now() + CACHE_MS });
  }
}
