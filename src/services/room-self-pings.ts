// Whether the accounts are still in the rooms they joined (XEP-0410, src/domain/muc-self-ping.ts;
// API.md Group chat: a join lasts until the account leaves). A room that lost the account without
// a word (its service restarted and forgot its occupants, say) looks merely quiet; the link holder
// pings each joined room that has been quiet for a while, and a room that answers that the
// account is not an occupant is entered again, as after a removal by an error (333).
import { randomUUID } from "node:crypto";
import { findRoom } from "../db/rooms.js";
import { rejoinNow } from "../db/room-rejoins.js";
import { takeQuietRooms } from "../db/room-self-pings.js";
import { accountJid } from "../domain/account.js";
import { bare, jidToString, parseJid } from "../domain/jid.js";
import { occupantLocalpart, rejoinRoom } from "../domain/muc.js";
import { selfPing, selfPingVerdict } from "../domain/muc-self-ping.js";
import type { Delivery } from "./delivery.js";

/** Rooms pinged in one transaction; a sweep takes as many such batches as there are quiet rooms. */
const BATCH = 500;

export class RoomSelfPings {
  constructor(
    private readonly delivery: Delivery,
    private readonly domain: string,
    /** How long a room is quiet before it is pinged (ROOM_SELF_PING; XEP-0410 §3.2 suggests 15 minutes). */
    private readonly idleMs: number,
  ) {}

  /** Pings every room quiet for idleMs (the pings are recorded with the rooms' check); the number pinged. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const taken = await this.delivery.sqlTransaction(async (tx, send) => {
        const rooms = await takeQuietRooms(tx, this.idleMs, BATCH);
        for (const r of rooms) await send(r.accountId, [selfPing(accountJid(r.localpart, this.domain), r.room, r.nick, randomUUID())]);
        return rooms.length;
      });
      total += taken;
      if (taken < BATCH) return total;
    }
  }

  /**
   * A self-ping's answer (`from`: room/nick, `to`: our occupant JID; `error`: null for a result).
   * "gone": the account enters the room again at once, if it is still joined there under that nick
   * (not when it left, was removed or renamed meanwhile). Whether it did.
   */
  async answered(from: string, to: string, error: { type: string; condition: string } | null): Promise<boolean> {
    // Read nothing for an answer that says "joined" whatever the row (a result, most of them).
    if (selfPingVerdict(error, true) !== "gone") return false;
    const occupant = parseJid(from);
    const localpart = occupantLocalpart(to, this.domain);
    if (!occupant?.resource || localpart === null) return false;
    const room = jidToString(bare(occupant));
    return this.delivery.sqlTransaction(async (tx) => {
      const row = await findRoom(tx, { localpart }, room, true);
      if (row?.status !== "joined" || row.nick !== occupant.resource) return false;
      // A joined row with no answer recorded since its last join or nick change (join_stage null,
      // src/db/rooms.ts beginNickChange) has a nick change of the account's own under way.
      if (selfPingVerdict(error, row.joinStage !== null) !== "gone") return false;
      await rejoinNow(tx, row.accountId, room, rejoinRoom(accountJid(localpart, this.domain), row));
      return true;
    });
  }
}
