-- API.md Group chat: a join lasts until the account leaves. A room can lose its occupants without a
-- word (its service or server restarting, a lost s2s link); XEP-0410 self-pings find that out.
-- checked_at: when the account was last known to be in the room (the room confirmed a join) or
-- last asked whether it still is (a self-ping sent). A room quiet since then, with no message
-- either, is pinged. Not indexed, so every update of a room stays HOT; the link holder scans the
-- joined rooms once a minute at most.
ALTER TABLE "room" ADD COLUMN "checked_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
