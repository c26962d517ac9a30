// Blocking (XEP-0191) as the accounts' home server: the blocklist, and the presence that starts or
// stops with a block (§3.3: unavailable to a blocked subscriber; §3.4: current presence again on
// unblock, and a probe of the contacts whose presence the block dropped). Enforcement elsewhere
// reads the list through `blocks`: inbound stanzas (src/services/inbound.ts), messages and
// subscription requests the account sends, and the subscriber lists of every presence broadcast
// (src/db/roster.ts).
import type { Blocklists } from "../db/blocklist.js";
import type { AnyTx, Database, Tx } from "../db/client.js";
import { appendEvents } from "../db/events.js";
import { availableSessions, lockLiveAccount, presenceSources, presenceSubscribers } from "../db/roster.js";
import { clearContactResources, contactPresence } from "../db/contact-presence.js";
import type { AccountRef } from "../domain/account.js";
import { blockedError, blockItem, isBlocked, MAX_BLOCKS } from "../domain/blocking.js";
import { AppError } from "../domain/errors.js";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { assertAddressSpeltAlike } from "../domain/stringprep-fold.js";
import type { Delivery } from "./delivery.js";
import { broadcast, contactsGone } from "./presence.js";
import { presence, type Stanza } from "../domain/stanza.js";

type Send = (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>;

/** Whether blocklist `items` cover the address `jid` (XEP-0191 §3 matching; not a JID: no). */
function covers(items: ReadonlySet<string>, jid: string): boolean {
  const parsed = parseJid(jid);
  return !!parsed && isBlocked(items, parsed);
}

export class Blocking {
  /** Committed lists being read for confirmBlocks without a transaction (committed()). */
  private readonly reading = new Map<number, Promise<ReadonlySet<string>>>();

  constructor(
    private readonly db: Database,
    private readonly blocks: Blocklists,
    private readonly delivery: Delivery,
    /** Leaves the rooms where a block covers the account's occupant JID (Rooms.leaveBlocked). */
    private readonly leaveRooms: (tx: Tx, send: Send, account: AccountRef, covered: (jid: string) => boolean) => Promise<void> = async () => undefined,
  ) {}

  list(accountId: number): Promise<string[]> {
    return this.blocks.list(this.db.prisma, accountId);
  }

  /**
   * PUT /v1/blocklist/{jid}: idempotent; subscribers it covers get the account's unavailable
   * presence. The stored presence of contacts it covers goes too, each resource with an
   * unavailable event: their presence is dropped from now on (XEP-0191 §3.3), so what we hold
   * would be stale, and would show again after an unblock. The unblock's probe (RFC 6121 §4.3.1)
   * brings it back, as does their next presence.
   */
  async block(account: AccountRef, raw: string): Promise<void> {
    const jid = item(raw, true);
    await this.change(account, "unavailable", async (tx, send) => {
      const r = await this.blocks.add(tx, account.id, jid, MAX_BLOCKS);
      if (r === "full") throw new AppError("too-many-blocks", `an account blocks at most ${MAX_BLOCKS} JIDs`);
      // Matched as every blocked stanza is (XEP-0191 §3): the item covers the resource's address.
      const item = new Set([jid]);
      const covered = (await contactPresence(tx, account.id)).filter((c) => covers(item, c.resource ? `${c.jid}/${c.resource}` : c.jid));
      await clearContactResources(tx, account.id, covered);
      await appendEvents(tx, contactsGone(account.id, covered));
      // A room is no subscriber, but the account's occupancy is its presence there.
      await this.leaveRooms(tx, send, account, (jid) => covers(item, jid));
    });
  }

  /**
   * DELETE /v1/blocklist/{jid}: subscribers it covered get the account's current presence again,
   * and the contacts it covered whose presence the account receives (to/both, and not blocked by
   * another item) are probed from its bare JID (RFC 6121 §4.3.1): the block forgot what we held of
   * their presence and dropped what they sent since, and a contact who stayed online sends nothing
   * new until she changes it. Idempotent: XEP-0191 §3.4 defines no error for unblocking a JID that
   * is not blocked (and then nothing is sent).
   */
  async unblock(account: AccountRef, raw: string): Promise<void> {
    const jid = item(raw);
    await this.change(account, null, async (tx, send) => {
      if (!(await this.blocks.remove(tx, account.id, jid))) return;
      // Matched as block() cleared: a bare JID or domain item covers the contact's every resource;
      // a full JID item (`contact/resource`) covered that resource of hers alone.
      const removed = new Set([jid]);
      const parsed = parseJid(jid)!;
      const owner = parsed.resource ? jidToString(bare(parsed)) : null;
      const probed = (await presenceSources(tx, account.id)).filter((c) => c === owner || covers(removed, c));
      if (probed.length > 0) await send(account.id, probed.map((c) => presence(account.jid, c, "probe")));
    });
  }

  /**
   * Throws 400 blocked when the account blocked `to` (XEP-0191 §3.3: nothing is routed to it): by
   * the list `tx` reads, or without one by the cached list, a block it holds confirmed by the
   * committed list (confirmBlocks: an unblock elsewhere not heard of yet refuses nothing).
   */
  async assertNotBlocked(accountId: number, to: string, field: string, tx?: AnyTx): Promise<void> {
    if (await (tx ? this.blocksJid(accountId, to, tx) : this.confirmBlocks(accountId, to))) throw blockedError(to, field);
  }

  /**
   * Whether the account blocked `jid`: by this instance's cached list, or, given `tx`, by the list
   * that transaction reads (under the account lock, what every block committed before it made).
   */
  async blocksJid(accountId: number, jid: string, tx?: AnyTx): Promise<boolean> {
    const items = tx ? new Set(await this.blocks.list(tx, accountId)) : await this.blocks.of(accountId);
    // Most accounts block no one: then the JID need not be parsed (a profiled ~5% of a send's CPU).
    return items.size > 0 && covers(items, jid);
  }

  /**
   * Whether the account blocks `jid` by its committed list, for a check that would otherwise lose
   * something on a stale cached list: an unblock committed on another instance whose NOTIFY has
   * not come yet (src/db/blocklist.ts). The cached list answers when it does not block `jid` (no
   * read: the usual case); when it does, the list is read (in `tx` if given), and if that no longer
   * blocks `jid` the cached list is forgotten. A block committed elsewhere and not heard of yet is
   * not seen: only a stale block is corrected here.
   */
  async warm(accountId: number): Promise<void> {
    await this.blocks.of(accountId);
  }

  async confirmBlocks(accountId: number, jid: string, tx?: AnyTx): Promise<boolean> {
    if (!covers(await this.blocks.of(accountId, tx), jid)) return false;
    if (covers(tx ? new Set(await this.blocks.list(tx, accountId)) : await this.committed(accountId), jid)) return true;
    this.blocks.forget(accountId);
    return false;
  }

  /**
   * The account's committed list, one read shared by the checks that ask for it at the same time
   * (a batch's messages to a JID still blocked: up to 1,000 at once, each a read otherwise).
   */
  private committed(accountId: number): Promise<ReadonlySet<string>> {
    let read = this.reading.get(accountId);
    if (!read) {
      read = this.blocks.list(this.db.prisma, accountId).then((items) => new Set(items) as ReadonlySet<string>).finally(() => this.reading.delete(accountId));
      this.reading.set(accountId, read);
    }
    return read;
  }

  /** Runs `edit` with the subscriber list before and after it; those who left or joined it hear of it. */
  private async change(account: AccountRef, type: "unavailable" | null, edit: (tx: Tx, send: Send) => Promise<unknown>): Promise<void> {
    try {
      await this.delivery.transaction(async (tx, send) => {
        await lockLiveAccount(tx, account);
        const before = new Set(await presenceSubscribers(tx, account.id));
        await edit(tx, send);
        const after = new Set(await presenceSubscribers(tx, account.id));
        const moved = type === "unavailable" ? [...before].filter((c) => !after.has(c)) : [...after].filter((c) => !before.has(c));
        if (moved.length > 0) await send(account.id, broadcast(account.jid, await availableSessions(tx, account.id), moved, type));
      });
    } finally {
      this.blocks.forget(account.id);
    }
  }
}

/** A blocklist item named in a path. One to block is spelt as its server spells it; one to unblock, in any spelling (one blocked before that check). */
function item(raw: string, blocks = false): string {
  const jid = blockItem(raw);
  if (!jid) throw new AppError("invalid-jid", `not a JID: ${raw}`, { field: "params.jid" });
  if (blocks) assertAddressSpeltAlike(parseJid(jid)!, "params.jid", "her stanzas come from there, and the block would not cover them");
  return jid;
}
