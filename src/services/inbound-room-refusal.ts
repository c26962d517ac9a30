// A room's error answer to what the account asked of it other than a join: a subject change
// (XEP-0045 §8.1) or a mediated invitation (§7.8.2). Only its id says what it answers.
import type { AnyTx } from "../db/client.js";
import { findRoom } from "../db/rooms.js";
import type { Account } from "../domain/account.js";
import { event } from "../domain/events.js";
import type { InboundMessage } from "../domain/inbound.js";
import { bare, jidToString, type Jid } from "../domain/jid.js";
import { refusedRoomRequest } from "../domain/muc.js";
import type { PendingWrites } from "./inbound-message.js";

/**
 * An error message from a room the account is in, answering what the account asked of it (a
 * subject change, an invitation: src/domain/muc.ts refusedRoomRequest): a `room` event with the
 * room's error, as nothing else records the request. False when it is no such answer; one to a
 * room the account is not in pays pending.absent (src/services/inbound-stale.ts).
 */
export async function roomRefusal(tx: AnyTx, m: InboundMessage & { from: Jid }, account: Account, pending: PendingWrites): Promise<boolean> {
  const kind = refusedRoomRequest(m.id);
  if (!kind) return false; // no answer to a request of ours: nothing to look up
  const room = jidToString(bare(m.from));
  // In no room of ours under the account's id: as under a cached id whose account is gone, which
  // throws AccountMoved and the answer is decided again for the account now (pending.absent).
  if (!(await findRoom(tx, account.id, room))) return (await pending.absent(account), false);
  pending.add({ accountId: account.id, ...event("room", { room, kind, error: m.error ?? { type: "cancel", condition: "undefined-condition" } }) });
  return true;
}
