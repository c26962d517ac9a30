-- An occupant known from before a rejoin, not yet presented again by the room. A rejoin's answer
-- lists every occupant (XEP-0045 §7.2.3); those still stale when it completes left while the
-- gateway was away: they are removed, each with an occupant-left event.
ALTER TABLE "room_occupant" ADD COLUMN "stale" BOOLEAN NOT NULL DEFAULT false;
