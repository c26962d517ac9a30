// Inbound stanzas are routed (src/services/inbound.ts) with what this instance caches: accounts by
// localpart (src/db/accounts.ts) and blocklists (src/db/blocklist.ts), which another instance may
// have changed without this one having read its NOTIFY yet. A stale entry is never paid for up
// front: the writes notice it and store nothing (a committed block covering a sender: StaleBlocklist;
// an account id that is gone: its foreign key, its missing row or lock), and the batch is routed
// again with those entries read afresh. The stanzas are then handled as for the accounts and lists
// as they are now: stored for an account deleted and created again (its new id), and handled as
// to no account for one deleted (RFC 6121 §8.5.1), not bounced as a storage failure.
// A stanza decided without a write (a probe answered, presence ignored, a message bounced for want
// of a session) cannot notice it that way. But under an id that is gone every such decision is one
// that found nothing (rows go with their account): only such a decision pays a read, whether the id
// is still its localpart's (StaleRoutes.confirm), and the stanza is decided again if not
// (AccountMoved). What finds a row under the id has proven it. A drop on a cached block is decided
// without a write too: it is confirmed by the committed list (src/services/inbound.ts stillBlocked),
// a read that finds the block's row under the id, or lets the stanza go on.
import type { Accounts } from "../db/accounts.js";
import type { AnyTx } from "../db/client.js";
import type { Account } from "../domain/account.js";
import { StaleBlocklist } from "../db/blocklist.js";
import { isAccountGone } from "../db/errors.js";
import type { BlockLookup } from "../domain/blocking.js";
import { AppError } from "../domain/errors.js";
import type { InboundStanza } from "../domain/inbound.js";
import type { ServiceLog } from "./ports.js";

/** Runs of one batch at most: each finds a stale entry of its own only if another changed meanwhile. */
const RUNS = 3;

/**
 * Whether a write failed because an account it wrote for is gone: a row referencing it (its
 * foreign key), events appended for it (no account row: AccountVanished), or its lock (a
 * subscription's lockLiveAccount: account-not-found). Routing never throws account-not-found
 * (a stanza to no account is answered, src/services/inbound.ts), so that one is the lock's.
 */
export function accountGone(err: unknown): boolean {
  return isAccountGone(err) || (err instanceof AppError && err.code === "account-not-found");
}

/**
 * Thrown where a stanza's decision found nothing under an account id taken from the cache and the
 * database has another account under its localpart (deleted and created again elsewhere) or none
 * (deleted): the stanza is decided again with `now` (src/services/inbound.ts route).
 */
export class AccountMoved extends Error {
  constructor(readonly now: Account | null) {
    super("a cached account id is no longer its localpart's");
  }
}

export class StaleRoutes {
  constructor(
    private readonly accounts: Pick<Accounts, "recheck" | "replaced">,
    private readonly blocks: BlockLookup,
    private readonly domain: string,
    private readonly log: ServiceLog,
  ) {}

  /**
   * Runs `store` (which routes and writes `stanzas`, all or nothing) and, when it failed on a
   * stale entry, again with the stale entries dropped: the blocklists the statement named, or the
   * cached accounts of the stanzas' addressees that the database contradicts (one read for them
   * all). At most RUNS runs; any other failure, or the last run's, is the caller's.
   */
  async run<T>(stanzas: readonly InboundStanza[], store: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await store();
      } catch (err) {
        if (attempt >= RUNS) throw err;
        if (err instanceof StaleBlocklist) {
          this.log.debug({ accounts: err.accounts }, "a cached blocklist missed a block: routing the batch again");
          for (const id of err.accounts) this.blocks.forget?.(id);
        } else if (accountGone(err)) {
          const localparts = this.addressees(stanzas);
          this.log.debug({ localparts: localparts.length, err: String(err) }, "an account the batch wrote for is gone: routing the batch again with the accounts read afresh");
          try {
            await this.accounts.recheck(localparts);
          } catch {
            throw err; // the batch's own failure is what the caller handles
          }
        } else throw err;
      }
    }
  }

  /**
   * For a decision that found nothing for `account`, from the cache (no roster item, session, room
   * or message): one read whether its id is still its localpart's.
   * Returns the account when it is; else throws AccountMoved.
   */
  async confirm(account: Account, tx?: AnyTx): Promise<Account> {
    const moved = await this.accounts.replaced(account.localpart, account.id, tx);
    if (moved) {
      this.log.debug({ localpart: account.localpart }, "a decision found nothing under a cached account that is gone: deciding again");
      throw new AccountMoved(moved.now);
    }
    return account;
  }

  /** The localparts of the hosted accounts the stanzas are addressed to (each routed by find()). */
  private addressees(stanzas: readonly InboundStanza[]): string[] {
    const out = new Set<string>();
    for (const s of stanzas) if (s.to?.local && s.to.domain === this.domain) out.add(s.to.local);
    return [...out];
  }
}
