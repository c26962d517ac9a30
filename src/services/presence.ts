// The account's presence (RFC 6121 §4) from its sessions: initial presence with probes,
// broadcasts to subscribers, unavailable on session end or after the grace period, and
// republishing after the component link comes back. Every stanza goes only to contacts whose
// subscription allows it (§4.2.2, §11).
import { cadence } from "../cadence.js";
import { recordLastUnavailable } from "../db/account-presence.js";
import type { Database, Tx } from "../db/client.js";
import { appendEvents, type NewEvent } from "../db/events.js";
import { availableSessions, lockAccount, lockLiveAccount, presenceSources, presenceSubscribers, type SessionPresence } from "../db/roster.js";
import { accountsWithPresence, accountsWithStalePresence, clearStaleContactPresence, contactPresence, markContactPresenceStale, type ContactResource } from "../db/contact-presence.js";
import type { Sessions } from "../db/sessions.js";
import { accountJid, type AccountRef } from "../domain/account.js";
import { AppError } from "../domain/errors.js";
import { event } from "../domain/events.js";
import type { LangText } from "../domain/message.js";
import { MAX_SESSIONS, sessionsDetail } from "../domain/session-limits.js";
import { presence, type Stanza } from "../domain/stanza.js";
import type { Delivery } from "./delivery.js";
import type { ServiceLog } from "./ports.js";

export interface PresenceInput {
  type: "available" | "unavailable";
  show: string | null;
  status: LangText | null;
  priority: number;
}

export interface ContactPresenceView {
  jid: string;
  resources: { resource: string; show: string | null; status: LangText | null; priority: number; updatedAt: string }[];
}

type Send = (accountId: number | null, stanzas: readonly Stanza[]) => Promise<void>;

export interface PresenceTiming {
  /** SESSION_GRACE_SECONDS; what counts as a dead instance's stream is Sessions' own (deadSeconds). */
  graceSeconds: number;
  /** After republishing, how long the probes' answers have before unconfirmed contact presence is forgotten (default 5 s). */
  confirmMs?: number;
  /** Accounts whose sessions one transaction of the expiry sweep claims (Presence.expire; default 100). */
  expireAccounts?: number;
}

/** Each available session's presence to each subscriber (§4.2.2), or its unavailable. */
export const broadcast = (jid: string, sessions: SessionPresence[], to: string[], type: "unavailable" | null): Stanza[] =>
  sessions.flatMap((s) => to.map((c) => presence(`${jid}/${s.resource}`, c, type, type ? {} : s)));

/**
 * Unavailable `presence` events for stored contact resources that were just cleared (GET
 * /v1/presence no longer lists them), shaped as a contact's own unavailable from that resource:
 * the account's streams must stop showing them too (RFC 6121 §3.2.2, §4.3.2). `p` is what the
 * stanza that cleared them said, if one did.
 */
export function contactsGone(accountId: number, gone: ContactResource[], p: { status?: LangText | null } = {}): NewEvent[] {
  return gone.map(({ jid, resource }) => ({
    accountId,
    ...event("presence", { jid, from: resource ? `${jid}/${resource}` : jid, resource: resource || null, type: "unavailable", show: null, status: p.status ?? null, priority: 0 }),
  }));
}

/**
 * The presence of one of the account's own sessions (`resource`), as events for its other available
 * sessions (`to`: one event each, for that session only): the home server sends a resource's
 * presence to the user's available resources (RFC 6121 §4.2.2 initial, §4.4.2 subsequent, §4.5.2
 * unavailable). The session that set it has its PUT's answer, and is not sent its own presence back.
 */
export function ownPresence(accountId: number, jid: string, resource: string, p: PresenceInput | { type: "unavailable"; status?: LangText | null }, to: readonly string[], itself = false): NewEvent[] {
  const available = p.type === "available" ? p : null;
  return (itself ? [...to.filter((r) => r !== resource), resource] : to.filter((r) => r !== resource))
    .map((r) => ({
      accountId,
      resource: r,
      ...event("presence", {
        jid,
        from: `${jid}/${resource}`,
        resource,
        type: p.type,
        show: (available?.show ?? null) as "away" | "chat" | "dnd" | "xa" | null,
        status: p.status ?? null,
        priority: available?.priority ?? 0,
        to: `${jid}/${r}`,
        self: true,
      }),
    }));
}

export class Presence {
  private stopSweeper: (() => void) | null = null;
  private unconfirmed: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly sessions: Sessions,
    private readonly delivery: Delivery,
    private readonly domain: string,
    private readonly timing: PresenceTiming,
    private readonly log: ServiceLog,
  ) {}

  /**
   * Expires sessions past their grace period every few seconds, and forgets contact presence a
   * republish left unconfirmed (what the republishing instance's own timer missed: it stopped or
   * died first).
   */
  start(): void {
    // In whole seconds, so the sweep shares its wake-ups with the other periodic work (src/cadence.ts).
    const every = Math.floor(Math.max(1000, Math.min(15_000, (this.timing.graceSeconds * 1000) / 4)) / 1000) * 1000;
    const sweep = async () => {
      await this.expire().catch((err: unknown) => this.log.warn({ err: String(err) }, "session expiry failed"));
      await this.forgetUnconfirmedLogged();
    };
    this.stopSweeper = cadence.every(every, () => void sweep());
  }

  stop(): void {
    this.stopSweeper?.();
    if (this.unconfirmed) clearTimeout(this.unconfirmed);
  }

  /**
   * PUT /v1/presence for one session; returns what it stored. Unavailable presence carries a
   * status only (RFC 6121 §4.5.1; show and priority are about an available resource, §4.7.2.1,
   * §4.7.2.3): it is stored with no show and priority 0, and sent with its status alone.
   */
  async set(account: AccountRef, resource: string, given: PresenceInput): Promise<PresenceInput> {
    const p: PresenceInput = given.type === "available" ? given : { type: "unavailable", show: null, status: given.status, priority: 0 };
    const full = `${account.jid}/${resource}`;
    await this.delivery.transaction(async (tx, send) => {
      await lockLiveAccount(tx, account);
      const before = await availableSessions(tx, account.id);
      const wasAvailable = before.some((s) => s.resource === resource);
      const available = p.type === "available";
      if (available && !wasAvailable && before.length >= MAX_SESSIONS) throw new AppError("too-many-sessions", sessionsDetail);
      await this.sessions.setPresence(tx, account.id, resource, available ? { available, show: p.show, status: p.status, priority: p.priority } : { available, show: null, status: null, priority: 0 });
      const out: Stanza[] = [];
      if (!available && !wasAvailable) return;
      // Its last available session gone: what a probe is answered with from now on (§4.3.2).
      if (!available && before.length === 1) await recordLastUnavailable(tx, account.id, p.status);
      for (const c of await presenceSubscribers(tx, account.id)) out.push(available ? presence(full, c, null, p) : presence(full, c, "unavailable", { status: p.status }));
      // §4.2.1: the first available presence of the account probes the contacts it is subscribed to.
      if (available && before.length === 0) for (const c of await presenceSources(tx, account.id)) out.push(presence(account.jid, c, "probe"));
      await send(account.id, out);
      const others = before.map((s) => s.resource);
      await appendEvents(tx, ownPresence(account.id, account.jid, resource, available ? p : { type: "unavailable", status: p.status }, others));
    });
    return p;
  }

  /**
   * Sessions that just went unavailable (in the caller's transaction): tell their subscribers and
   * the account's other sessions; with `itself`, each session too (its grace ran out: a client
   * that resumes its stream learns that it now appears offline, and sets its presence again).
   */
  private async wentUnavailable(tx: Tx, send: Send, accountId: number, jid: string, resources: string[], itself = false): Promise<void> {
    if (resources.length === 0) return;
    const subscribers = await presenceSubscribers(tx, accountId);
    await send(accountId, resources.flatMap((r) => subscribers.map((c) => presence(`${jid}/${r}`, c, "unavailable"))));
    const others = (await availableSessions(tx, accountId)).map((s) => s.resource);
    if (others.length === 0) await recordLastUnavailable(tx, accountId, null); // as set() does
    await appendEvents(tx, resources.flatMap((r) => ownPresence(accountId, jid, r, { type: "unavailable" }, others, itself)));
  }

  /**
   * DELETE /v1/sessions/{resource}: false when there is no such session. Under the account lock, as
   * set() and the subscription use cases: a contact approved meanwhile (who gets the available
   * sessions' presence, RFC 6121 §3.1.5) is among the subscribers told of the end, or saw it ended.
   */
  async endSession(account: AccountRef, resource: string): Promise<boolean> {
    return this.delivery.transaction(async (tx, send) => {
      await lockLiveAccount(tx, account);
      const ended = await this.sessions.end(tx, account.id, resource);
      if (ended?.available) await this.wentUnavailable(tx, send, account.id, account.jid, [resource]);
      return ended !== null;
    });
  }

  /**
   * Sessions without a stream for longer than the grace period go unavailable; so do sessions whose
   * streams died with their instance, and those streams are no longer counted (Sessions.expire,
   * which takes their accounts' locks first, as endSession does). Returns how many went unavailable.
   */
  async expire(): Promise<number> {
    // A transaction per `expireAccounts` accounts: each holds its accounts' locks until its broadcast
    // commits, and requests of theirs that take the lock wait that long (after an instance with
    // many clients died, the sweep has many to do). The next chunk follows while one locked as many
    // as it may: the accounts it claimed fewer of (sessions set between its two statements) are no
    // longer due, but more past them may be.
    const limit = this.timing.expireAccounts ?? 100;
    let gone = 0;
    for (;;) {
      const { went, locked } = await this.expireSome(limit);
      gone += went;
      if (locked < limit) return gone;
    }
  }

  private async expireSome(limit: number): Promise<{ went: number; locked: number }> {
    const grace = this.timing.graceSeconds;
    const { locked, claimed } = await this.delivery.transaction(async (tx, send) => {
      const expired = await this.sessions.expire(tx, grace, limit);
      const byAccount = new Map<number, { jid: string; resources: string[] }>();
      for (const r of expired.claimed.filter((e) => e.available)) {
        const e = byAccount.get(r.account_id) ?? { jid: accountJid(r.localpart, this.domain), resources: [] };
        e.resources.push(r.resource);
        byAccount.set(r.account_id, e);
      }
      for (const [id, e] of byAccount) await this.wentUnavailable(tx, send, id, e.jid, e.resources, true);
      return expired;
    });
    const gone = claimed.filter((r) => r.available).length;
    if (gone) this.log.info({ sessions: gone }, "sessions went unavailable after the grace period");
    if (claimed.length > gone) this.log.info({ sessions: claimed.length - gone }, "unavailable sessions' streams counted on an instance that died are no longer counted");
    return { went: gone, locked };
  }

  /**
   * After the link comes back the network has forgotten our presence: publish it again and probe.
   * What we stored of contacts' presence may be stale too: a contact who went offline while the
   * link was down told nobody we could hear, and a server need not answer a probe for a user with
   * no available resource (ejabberd does not; Prosody sends unavailable, RFC 6121 §4.3.2); and a
   * contact who came online meanwhile sent her presence to no one (it bounced). So every account
   * that has an available session, stored contact presence or a contact it is subscribed to marks
   * its contact presence as to be confirmed and probes its contacts (§4.2.1 / §4.3.1); any presence from a contact
   * confirms her, and what is still unconfirmed `confirmMs` later is forgotten, each resource with
   * its unavailable event (forgetUnconfirmed). A contact who stayed online is never shown going
   * offline and back. An account without sessions probes as well, since GET /v1/presence serves it
   * (§4.3.2: the contact's server answers per its subscription, not per our sessions). Sessions
   * whose grace ran out while no gateway ran (or the link was down) are expired first: they are
   * not announced again only to go unavailable at the next sweep (RFC 6121 §4.5.2).
   */
  async republish(): Promise<void> {
    await this.expire().catch((err: unknown) => this.log.warn({ err: String(err) }, "session expiry failed"));
    for (const a of await accountsWithPresence(this.db.prisma)) {
      const jid = accountJid(a.localpart, this.domain);
      await this.delivery.transaction(async (tx, send) => {
        if (!(await lockAccount(tx, a.id))) return; // deleted meanwhile
        await markContactPresenceStale(tx, a.id);
        const stanzas = broadcast(jid, await availableSessions(tx, a.id), await presenceSubscribers(tx, a.id), null);
        for (const c of await presenceSources(tx, a.id)) stanzas.push(presence(jid, c, "probe"));
        await send(a.id, stanzas);
      });
    }
    // Counted from the last republishing: a link that comes back twice gives the later probes their time.
    if (this.unconfirmed) clearTimeout(this.unconfirmed);
    this.unconfirmed = setTimeout(() => {
      this.unconfirmed = null;
      void this.forgetUnconfirmedLogged();
      // A little past confirmMs: the marks carry their transactions' start, before this timer's.
    }, this.confirmMs + 100);
    this.unconfirmed.unref();
  }

  private get confirmMs(): number {
    return this.timing.confirmMs ?? 5000;
  }

  /** forgetUnconfirmed for a timer: a failure is logged, and the next sweep tries again. */
  private async forgetUnconfirmedLogged(): Promise<void> {
    await this.forgetUnconfirmed().catch((err: unknown) => this.log.warn({ err: String(err) }, "forgetting unconfirmed contact presence failed"));
  }

  /**
   * Forgets the contact presence no presence confirmed within `confirmMs` of a republish marking
   * it (on any instance: a later mark, here or elsewhere, gives the later probes their time).
   */
  async forgetUnconfirmed(): Promise<void> {
    const ms = this.confirmMs;
    for (const id of await accountsWithStalePresence(this.db.prisma, ms)) {
      await this.delivery.transaction(async (tx) => {
        if (!(await lockAccount(tx, id))) return;
        await appendEvents(tx, contactsGone(id, await clearStaleContactPresence(tx, id, ms)));
      });
    }
  }

  /** GET /v1/presence: the latest presence of each contact the account is subscribed to. */
  async contacts(accountId: number): Promise<ContactPresenceView[]> {
    const rows = await contactPresence(this.db.prisma, accountId);
    const sources = new Set(await presenceSources(this.db.prisma, accountId));
    const byJid = new Map<string, ContactPresenceView["resources"]>();
    for (const r of rows) {
      if (!sources.has(r.jid)) continue;
      const list = byJid.get(r.jid) ?? [];
      list.push({ resource: r.resource, show: r.show, status: r.status as LangText | null, priority: r.priority, updatedAt: r.updatedAt.toISOString() });
      byJid.set(r.jid, list);
    }
    return [...byJid].map(([jid, resources]) => ({ jid, resources }));
  }

  /** Every stanza that tells the network an account's sessions are gone (account deletion). */
  static goodbye(jid: string, sessions: SessionPresence[], subscribers: string[]): Stanza[] {
    return broadcast(jid, sessions, subscribers, "unavailable");
  }
}
