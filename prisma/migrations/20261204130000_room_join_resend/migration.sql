-- API.md Group chat: a join lasts until the account leaves. A join the room never answers (its
-- presence or error lost: the room's server restarting, a hung server-to-server link) was left
-- joining until the next reconnect. Now rejoin_at is also when a join in flight (a request's, or
-- a rejoin) is sent again unless the room answered by then, and join_resends counts those resends
-- (each waits twice as long as the one before).
ALTER TABLE "room" ADD COLUMN "join_resends" INTEGER NOT NULL DEFAULT 0;
