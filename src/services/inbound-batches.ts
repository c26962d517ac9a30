// How the Inbound use case (src/services/inbound.ts) cuts what arrived into transactions: which
// stanzas run statements of their own ("slow") and which need Prisma's transaction.
import { toRooms, type InboundStanza } from "../domain/inbound.js";
import { ROOM_RESOURCE } from "../domain/muc.js";
import { changesEarlier } from "./inbound-features.js";
import { plainRoomMessage } from "./inbound-room.js";

/**
 * Stanzas per transaction. Plain messages cost two statements per transaction whatever their
 * number (src/services/inbound-message.ts), so they come in large batches; anything else costs
 * statements of its own, and once one of them has appended to an account's log that account's
 * row stays locked until commit, so at most MAX_SLOW of them share a transaction (HTTP requests
 * for the account wait on that lock).
 */
export const MAX_BATCH = 250;
const MAX_SLOW = 50;

/** To an account's room occupancy (XEP-0045): from a room, or an invitation to one. */
const forRooms = (s: InboundStanza) => s.to?.resource === ROOM_RESOURCE || (s.kind === "message" && s.invitation !== null);

/**
 * Presence, error bounces, receipts and room stanzas run statements of their own; plain messages,
 * from rooms too (their facts are read for the whole batch first), only the batched writes.
 */
export const slowStanza = (s: InboundStanza) =>
  s.kind === "presence" || s.type === "error" || s.receivedId !== null || (forRooms(s) && !plainRoomMessage(s)) || (s.kind === "message" && !!s.features && (changesEarlier(s.features) || !!s.features.reply));

/**
 * What needs Prisma's transaction: the presence use case (src/services/inbound-presence.ts).
 * Everything else, rooms' stanzas and the message status updates of error bounces and receipts
 * included (src/db/rooms.ts, src/db/messages.ts), runs raw SQL, which a raw pg transaction runs
 * for less than half the CPU and round-trip time.
 */
export const needsPrisma = (s: InboundStanza) => s.kind === "presence" && !toRooms(s);

/** Cuts a batch, in order, into transactions of at most MAX_BATCH stanzas and MAX_SLOW slow ones. */
export function transactions(batch: InboundStanza[]): InboundStanza[][] {
  const out: InboundStanza[][] = [];
  let current: InboundStanza[] = [];
  let slow = 0;
  for (const s of batch) {
    const isSlow = slowStanza(s);
    if (current.length === MAX_BATCH || (isSlow && slow === MAX_SLOW)) {
      out.push(current);
      current = [];
      slow = 0;
    }
    current.push(s);
    if (isSlow) slow++;
  }
  if (current.length) out.push(current);
  return out;
}
