// What an inbound batch reads before its transaction begins (src/services/inbound.ts), each on a
// pool connection of its own while the batch holds no lock.
import type { Accounts } from "../db/accounts.js";
import { autocommit, type Database } from "../db/client.js";
import { lookupRoomMessages, type RoomMessageKey } from "../db/room-lookups.js";
import type { BlockLookup } from "../domain/blocking.js";
import type { InboundStanza } from "../domain/inbound.js";
import { ROOM_RESOURCE } from "../domain/muc.js";
import { roomFactsKey, type RoomFactsMap } from "./inbound-message.js";
import { plainRoomMessage, roomMessageKey } from "./inbound-room.js";

/**
 * The facts of the batch's plain room messages (src/db/room-lookups.ts), in one statement before
 * the batch is routed: without them each costs two statements of its own. Empty when there are
 * none, or when the read fails (each is then read as it is routed, and fails there as it would).
 */
export async function batchRoomFacts(db: Database, accounts: Pick<Accounts, "find">, domain: string, stanzas: InboundStanza[]): Promise<RoomFactsMap> {
  const keys: RoomMessageKey[] = [];
  for (const s of stanzas) {
    if (s.kind !== "message" || s.to?.resource !== ROOM_RESOURCE || s.to.domain !== domain || !s.to.local || !s.from || !s.fromRaw || !plainRoomMessage(s)) continue;
    const account = await accounts.find(s.to.local).catch(() => null);
    if (account) keys.push(roomMessageKey({ ...s, from: s.from, fromRaw: s.fromRaw }, account.id));
  }
  if (keys.length === 0) return new Map();
  try {
    const facts = await lookupRoomMessages(autocommit(db.pool), keys);
    return new Map(keys.map((k, i) => [roomFactsKey(k), facts[i]!]));
  } catch {
    return new Map();
  }
}

/**
 * The batch's accounts and their blocklists, in the caches before its transaction begins: a miss
 * inside it reads on a connection of its own, waiting for the pool while the transaction holds
 * its locks, and the requests holding the pool's connections may be waiting on those locks (the
 * concurrency audit: every request of the account stalled 5 s, then 503). Failures are left to
 * the routing, which reads again and fails as it would.
 */
export async function warmCaches(accounts: Pick<Accounts, "find">, blocks: BlockLookup, domain: string, stanzas: InboundStanza[]): Promise<void> {
  const locals = new Set<string>();
  for (const s of stanzas) if (s.to?.local && s.to.domain === domain) locals.add(s.to.local);
  await Promise.all([...locals].map((l) => accounts.find(l).then((a) => a && blocks.of(a.id)).catch(() => null)));
}
