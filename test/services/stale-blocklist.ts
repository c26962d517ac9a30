// What the stale-blocklist tests share (inbound-stale-blocks.test.ts, inbound-stale-unblocks.test.ts):
// an Inbound whose cached blocklists (src/db/blocklist.ts) miss what another instance committed,
// that other instance's Blocking with a cache of its own, and where a stanza can end up besides
// the outbound port (env.sent(): a bounce): the account's event log, the stored messages. The
// NOTIFY that would make the cache forget is never delivered here (the test database has no
// listener).
import { Blocklists } from "../../src/db/blocklist.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { Blocking } from "../../src/services/blocking.js";
import type { Inbound } from "../../src/services/inbound.js";
import { inboundOf, type Env, type TestAccount } from "./setup.js";

export const JULIET = "juliet@example.net/balcony";
export const NURSE = "nurse@other.example/garden";
export const PIAZZA = "piazza@conference.example.net";

export interface StaleBlocklistKit {
  /** The other instance: it blocks and unblocks, with a cache of its own. */
  elsewhere: Blocking;
  /** This instance's Inbound and the cache it checks stanzas against (empty until read). */
  inboundWithCache(): { inbound: Inbound; lists: Blocklists };
  /** The log after `seen`: each event's type, and a message's body, a presence's sender and status, or else the sender. */
  logged(a: TestAccount, seen: number): Promise<string[]>;
  /** The bodies of the account's stored inbound messages, in order. */
  storedBodies(a: TestAccount): Promise<string[]>;
  /** The service-unavailable a blocked message gets (the account-not-found condition: as if there were no such account). */
  bounced(a: TestAccount, from: string, id: string): Stanza;
}

export function staleBlocklistKit(env: Env): StaleBlocklistKit {
  return {
    elsewhere: new Blocking(env.db, new Blocklists(env.db.prisma), env.delivery),
    inboundWithCache() {
      const lists = new Blocklists(env.db.prisma);
      return { inbound: inboundOf(env, { blocks: lists }), lists };
    },
    logged: async (a, seen) =>
      (await env.events(a.id, seen)).map((e) => {
        const d = e.data as { body?: unknown; jid?: string; status?: unknown };
        return `${e.type}: ${e.type === "message" ? String(d.body) : e.type === "presence" ? `${d.jid} ${String(d.status)}` : String(d.jid)}`;
      }),
    storedBodies: async (a) =>
      (await env.db.pool.query<{ body: string }>("SELECT body FROM message WHERE account_id = $1 AND direction = 'in' ORDER BY seq", [a.id])).rows.map((r) => String(r.body)),
    bounced: (a, from, id) => ({ kind: "error", from: a.jid, replyTo: { name: "message", from, id }, code: "account-not-found" }),
  };
}
