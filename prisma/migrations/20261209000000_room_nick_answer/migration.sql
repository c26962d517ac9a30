-- How the account's latest nick change in a room ended other than renamed (XEP-0045 §7.6), kept
-- apart from `error`: a rejoin's refusal for now (deferRejoin) overwrote a nick change's answer
-- kept there (the conflict a rejoin under the nick asked for fell back from), and the rejoin's
-- success then cleared it. {refused: <the room's error>} or {cutShort: true}; see schema.prisma.
ALTER TABLE "room" ADD COLUMN "nick_answer" JSON;

-- An answer kept in `error` so far moves: a joined row's error is a refused nick change's, and so
-- is that of a rejoin not refused for now (rejoin_attempts 0: src/db/room-rejoins.ts markRejoining).
UPDATE "room" SET "nick_answer" = json_build_object('refused', "error"), "error" = NULL
WHERE "error" IS NOT NULL AND ("status" = 'joined' OR ("status" = 'joining' AND "rejoin_attempts" = 0));
