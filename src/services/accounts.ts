// Accounts: creation, listing, the caller's own account (auto-provisioned when configured), and
// deletion. Before a deleted account's data goes, the messages it still has queued are handed to
// the outbox, then everyone who had its presence sees it go unavailable, and every contact gets the
// unsubscribe/unsubscribed that removing its roster item would send (RFC 6121 §2.5.2).
import type { Accounts as AccountStore } from "../db/accounts.js";
import { listRooms } from "../db/rooms.js";
import { allItems, availableSessions, lockAccount, presenceSubscribers } from "../db/roster.js";
import { accountJid, issuedBeforeDeletion, type Account, type AccountRef } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { accountLocalpart } from "../domain/jid.js";
import { exitRoom } from "../domain/muc.js";
import { assertSpeltAlike, nodeprepFolded } from "../domain/stringprep-fold.js";
import { pageOf, type Page } from "../domain/page.js";
import { subscription, type Stanza } from "../domain/stanza.js";
import { transition } from "../domain/subscription.js";
import type { Delivery } from "./delivery.js";
import { Presence } from "./presence.js";

export interface AccountView {
  jid: string;
  createdAt: string;
}

/**
 * A new account's localpart: one the XMPP server spells otherwise (src/domain/stringprep-fold.ts)
 * would never be reached (Prosody prepares a stanza's `to` before routing it to the component, so
 * what is sent to "straße@gw" arrives for "strasse@gw", and bounces).
 */
function reachable(localpart: string, field: string): string {
  assertSpeltAlike(localpart, nodeprepFolded(localpart), field, "localpart", "what is sent to the account would never reach it");
  return localpart;
}

export class Accounts {
  constructor(
    private readonly store: AccountStore,
    private readonly delivery: Delivery,
    readonly domain: string,
    private readonly autoProvision: boolean,
    /**
     * DELETION_REVOKES_TOKENS: a credential issued before the localpart's latest deletion is
     * refused. Off by default: API.md names an account by its localpart alone, so an account
     * created again under it is the token's account.
     */
    private readonly deletionRevokesTokens = false,
  ) {}

  ref(a: Account): AccountRef {
    return { id: a.id, jid: accountJid(a.localpart, this.domain) };
  }

  jid(localpart: string): string {
    return accountJid(localpart, this.domain);
  }

  /** A localpart (or bare JID on our domain) from user input, prepared per RFC 7622 §3.3. */
  localpart(raw: string, field: string): string {
    const lp = accountLocalpart(raw, this.domain);
    if (!lp) throw new AppError("invalid-jid", `${field}: "${raw}" is not a valid localpart (RFC 7622 §3.3)`, { field });
    return lp;
  }

  /** The account from this instance's cache (inbound iqs to a full JID: routing that tolerates a stale entry, src/xmpp/iq.ts). */
  find(localpart: string): Promise<Account | null> {
    return this.store.find(localpart);
  }

  /** The account as the database has it now (not this instance's cache, which may not have heard of a deletion yet). */
  read(localpart: string): Promise<Account | null> {
    return this.store.read(localpart);
  }

  /** Whether a cached account id is no longer its localpart's, from the database (src/db/accounts.ts replaced). */
  replaced(localpart: string, id: number): Promise<{ now: Account | null } | null> {
    return this.store.replaced(localpart, id);
  }

  /**
   * The caller's own account; created on first use when AUTO_PROVISION is on. `fresh` false: from
   * the cache, for work that notices an account id that is gone (src/http/context.ts). With
   * DELETION_REVOKES_TOKENS, a credential issued (`issuedAt`, ms; null: unknown) before the
   * localpart's latest deletion is taken as an earlier account's: refused, as a bad token is,
   * rather than taken for the account there is now or one it would create. Without AUTO_PROVISION
   * an account deleted and not created again stays 404 for it, as for any token.
   */
  async caller(localpart: string, issuedAt: number | null, fresh = false): Promise<Account> {
    const found = fresh ? await this.store.readCaller(localpart) : await this.store.findCaller(localpart);
    if (found.account) {
      this.admit(localpart, issuedAt, found.deletedAt);
      return found.account;
    }
    // Without DELETION_REVOKES_TOKENS there is nothing to admit: the deletion mark is not read first.
    if (this.autoProvision) return this.store.ensure(reachable(localpart, "token sub"), this.deletionRevokesTokens ? (deletedAt) => this.admit(localpart, issuedAt, deletedAt) : null);
    throw new AppError("account-not-found", `no account "${localpart}" on this gateway`);
  }

  private admit(localpart: string, issuedAt: number | null, deletedAt: Date | null): void {
    if (this.deletionRevokesTokens && issuedBeforeDeletion(issuedAt, deletedAt)) {
      throw new AppError("unauthorized", `token issued before account "${localpart}" was deleted (at ${deletedAt!.toISOString()}): it is not valid for the account of that name now; get a new one`);
    }
  }

  /** Whether a token may be minted for this account (it exists, or would be provisioned: under a name it could have). */
  async mayMint(localpart: string): Promise<void> {
    if (await this.store.read(localpart)) return;
    if (!this.autoProvision) throw new AppError("account-not-found", `no account "${localpart}"`);
    reachable(localpart, "body.account");
  }

  async create(localpart: string, field = "body.localpart"): Promise<string> {
    const row = await this.store.create(reachable(localpart, field));
    return this.jid(row.localpart);
  }

  async list(cursor: number, limit: number): Promise<Page<AccountView>> {
    const rows = await this.store.list(cursor, limit + 1);
    return pageOf(rows, limit, (r) => ({ jid: this.jid(r.localpart), createdAt: r.createdAt.toISOString() }), (r) => String(r.id));
  }

  /** DELETE /v1/accounts/{localpart}. */
  async delete(localpart: string): Promise<void> {
    // Not the cached row: its id may be that of an account deleted and created again elsewhere.
    const account = await this.store.read(localpart);
    if (!account) throw new AppError("account-not-found", `no account "${localpart}"`);
    const jid = this.jid(localpart);
    // The goodbye stanzas are recorded with the deletion and outlive the account (the outbox has no
    // foreign key), behind its messages still queued, which become outbox stanzas (API.md "Every
    // outbound stanza is durable": a message that got its 202 goes out, in order).
    await this.delivery.transaction(async (tx, send) => {
      await this.store.holdQueue(tx, account.id);
      // A concurrent deletion of the same account got here first.
      if (!(await lockAccount(tx, account.id))) throw new AppError("account-not-found", `no account "${localpart}"`);
      const out: Stanza[] = Presence.goodbye(jid, await availableSessions(tx, account.id), await presenceSubscribers(tx, account.id));
      // Its rooms see the occupant leave (XEP-0045 §7.14), as a DELETE /v1/rooms/{room} would show them.
      for (const r of await listRooms(tx, account.id)) out.push(exitRoom(jid, r.room, r.nick));
      // A stranger's pending request is not a roster item, but it still deserves its answer. So
      // does a blocked contact (unlike a roster removal, XEP-0191 §3.3): her server ends the
      // subscription, as a server's own account deletion does (Prosody's mod_roster); left, it
      // would hand her presence to the next account of the name. Her presence went when blocked.
      for (const item of await allItems(tx, account.id)) {
        for (const e of transition({ ...item, inRoster: true }, { kind: "remove" }).effects) if (e.kind === "send") out.push(subscription(jid, item.jid, e.type));
      }
      await send(account.id, out);
      await this.store.delete(tx, account.id, localpart);
    });
  }
}
