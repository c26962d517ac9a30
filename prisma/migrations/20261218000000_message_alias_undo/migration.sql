-- What a correction or a reaction change of the account's own puts back if it is refused under its
-- wire id (src/domain/change-undo.ts); null once taken, and for the aliases of received changes.
ALTER TABLE "message_alias" ADD COLUMN "undo" JSONB;
