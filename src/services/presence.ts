// The account's presence (RFC 6121 §4) from its sessions: initial presence with probes,
// broadcasts to subscribers, unavailable on session end or after the grace period, and
// republishing after the component link comes back. Every stanza goes only to contacts whose
// subscription allows it (§4.2.2, §11).
import type { Element } from "@xmpp/xml";
import type { Database } from "../db/client.js";
import { Prisma } from "../db/generated/client.js";
import { availableSessions, lockAccount, presenceSources, presenceSubscribers } from "../db/roster.js";
import type { LangText } from "../domain/message.js";
import type { XmppLink } from "../xmpp/link.js";
import { presenceStanza } from "../xmpp/stanzas.js";
import type { AccountRef } from "./roster.js";

export interface PresenceInput {
  type: "available" | "unavailable";
  show: string | null;
  status: LangText | null;
  priority: number;
}

export interface PresenceLog {
  warn(o: object, m: string): void;
  info(o: object, m: string): void;
}

export class Presence {
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly link: XmppLink,
    private readonly domain: string,
    private readonly graceSeconds: number,
    private readonly heartbeatMs: number,
    private readonly log: PresenceLog,
  ) {}

  start(): void {
    this.link.on("online", () => void this.republish().catch((err: unknown) => this.log.warn({ err: String(err) }, "republishing presence failed")));
    const every = Math.max(1000, Math.min(15_000, (this.graceSeconds * 1000) / 4));
    this.sweeper = setInterval(() => void this.expire().catch((err: unknown) => this.log.warn({ err: String(err) }, "session expiry failed")), every);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  private send(stanzas: Element[]): void {
    if (stanzas.length) this.link.write(stanzas.map((s) => s.toString()));
  }

  /** PUT /v1/presence for one session. */
  async set(account: AccountRef, resource: string, p: PresenceInput): Promise<void> {
    const full = `${account.jid}/${resource}`;
    const stanzas = await this.db.prisma.$transaction(async (tx) => {
      await lockAccount(tx, account.id);
      const before = await availableSessions(tx, account.id);
      const wasAvailable = before.some((s) => s.resource === resource);
      const available = p.type === "available";
      const fields = available
        ? { available, show: p.show, status: p.status ?? Prisma.DbNull, priority: p.priority }
        : { available, show: null, status: Prisma.DbNull, priority: 0 };
      await tx.session.upsert({
        where: { accountId_resource: { accountId: account.id, resource } },
        create: { accountId: account.id, resource, ...fields },
        update: { ...fields, lastSeenAt: new Date() },
      });
      const out: Element[] = [];
      if (!available && !wasAvailable) return out;
      const subscribers = await presenceSubscribers(tx, account.id);
      for (const c of subscribers) out.push(available ? presenceStanza(full, c, null, p) : presenceStanza(full, c, "unavailable", { status: p.status }));
      // §4.2.1: the first available presence of the account probes the contacts it is subscribed to.
      if (available && before.length === 0) for (const c of await presenceSources(tx, account.id)) out.push(presenceStanza(account.jid, c, "probe"));
      return out;
    });
    this.send(stanzas);
  }

  /** Makes sessions unavailable and returns the broadcast (caller's transaction decides when). */
  private async goUnavailable(accountId: number, jid: string, resources: string[]): Promise<Element[]> {
    if (resources.length === 0) return [];
    const subscribers = await presenceSubscribers(this.db.prisma, accountId);
    return resources.flatMap((r) => subscribers.map((c) => presenceStanza(`${jid}/${r}`, c, "unavailable")));
  }

  /** DELETE /v1/sessions/{resource}. */
  async endSession(account: AccountRef, resource: string): Promise<boolean> {
    const rows = await this.db.prisma.$queryRaw<{ available: boolean }[]>`
      DELETE FROM session WHERE account_id = ${account.id} AND resource = ${resource} RETURNING available`;
    if (rows.length === 0) return false;
    if (rows[0]!.available) this.send(await this.goUnavailable(account.id, account.jid, [resource]));
    return true;
  }

  /**
   * Sessions without a stream for longer than the grace period go unavailable. A session whose
   * streams were counted on an instance that died stops being touched by heartbeats, so it expires
   * too. The UPDATE claims each session once, whichever instance runs it.
   */
  async expire(): Promise<number> {
    const grace = this.graceSeconds;
    const dead = Math.max(grace, Math.ceil((3 * this.heartbeatMs) / 1000));
    const rows = await this.db.prisma.$queryRaw<{ account_id: number; resource: string; localpart: string }[]>`
      UPDATE session s SET available = false, show = NULL, status = NULL
      FROM account a
      WHERE a.id = s.account_id AND s.available
        AND ((s.streams = 0 AND s.last_seen_at < now() - make_interval(secs => ${grace}))
          OR s.last_seen_at < now() - make_interval(secs => ${dead}))
      RETURNING s.account_id, s.resource, a.localpart`;
    const byAccount = new Map<number, { jid: string; resources: string[] }>();
    for (const r of rows) {
      const e = byAccount.get(r.account_id) ?? { jid: `${r.localpart}@${this.domain}`, resources: [] };
      e.resources.push(r.resource);
      byAccount.set(r.account_id, e);
    }
    for (const [id, e] of byAccount) this.send(await this.goUnavailable(id, e.jid, e.resources));
    if (rows.length) this.log.info({ sessions: rows.length }, "sessions went unavailable after the grace period");
    return rows.length;
  }

  /** After the link comes back, the network has forgotten our presence: publish it again and probe. */
  async republish(): Promise<void> {
    const accounts = await this.db.prisma.session.findMany({ where: { available: true }, distinct: ["accountId"], select: { accountId: true, account: { select: { localpart: true } } } });
    for (const a of accounts) {
      const jid = `${a.account.localpart}@${this.domain}`;
      const stanzas: Element[] = [];
      const sessions = await availableSessions(this.db.prisma, a.accountId);
      for (const c of await presenceSubscribers(this.db.prisma, a.accountId)) for (const s of sessions) stanzas.push(presenceStanza(`${jid}/${s.resource}`, c, null, s));
      for (const c of await presenceSources(this.db.prisma, a.accountId)) stanzas.push(presenceStanza(jid, c, "probe"));
      this.send(stanzas);
    }
  }

  /** GET /v1/presence: the latest presence of each contact the account is subscribed to. */
  async contacts(accountId: number) {
    const rows = await this.db.prisma.contactPresence.findMany({ where: { accountId }, orderBy: [{ jid: "asc" }, { resource: "asc" }] });
    const sources = new Set(await presenceSources(this.db.prisma, accountId));
    const byJid = new Map<string, { resource: string; show: string | null; status: LangText | null; priority: number; updatedAt: string }[]>();
    for (const r of rows) {
      if (!sources.has(r.jid)) continue;
      const list = byJid.get(r.jid) ?? [];
      list.push({ resource: r.resource, show: r.show, status: r.status as LangText | null, priority: r.priority, updatedAt: r.updatedAt.toISOString() });
      byJid.set(r.jid, list);
    }
    return [...byJid].map(([jid, resources]) => ({ jid, resources }));
  }
}
