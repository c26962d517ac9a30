-- A replay must also reach the events a delivery has in flight. A replay moves back every lane
-- past `since`, and a move in flight from the old position is void (settle matches the lane's
-- position). But a lane at or before `since` whose attempt is in flight would then move past
-- `since` when that attempt settles, and what the replay asked for would not be sent again (the
-- receiver may already have it, and asked for it again because it lost it).
--
-- `epoch` counts the lane's replays: a page reads it with the lane and settles with it, and a move
-- read before a replay (another epoch) goes no further than `replay_cap`: the lowest `since` of the
-- replays since a move read in the lane's current epoch last settled (which clears it).
ALTER TABLE "webhook_lane" ADD COLUMN "epoch" INTEGER NOT NULL DEFAULT 0, ADD COLUMN "replay_cap" BIGINT;
