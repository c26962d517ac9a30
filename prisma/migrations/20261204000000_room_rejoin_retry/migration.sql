-- API.md Group chat: a join lasts until the account leaves, and survives restarts and link loss.
-- The gateway's own rejoin (after a reconnect, or when a room removed the account by no one's
-- decision) that the room's service refuses for now (an error of type "wait", e.g. Prosody's
-- "Component unavailable" for a MUC component that is not connected) is sent again later instead
-- of failing the join for good: rejoin_attempts counts those refusals (null: no rejoin waiting),
-- rejoin_at is when the next attempt goes out.
ALTER TABLE "room" ADD COLUMN "rejoin_attempts" INTEGER,
ADD COLUMN "rejoin_at" TIMESTAMP(3);

-- Partial: only rooms waiting to rejoin are in it, so a room's other updates (its last message
-- time, at every group message) stay HOT.
CREATE INDEX "room_rejoin_at_idx" ON "room"("rejoin_at") WHERE "rejoin_at" IS NOT NULL;
