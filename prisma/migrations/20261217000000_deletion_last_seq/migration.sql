-- The event sequence an account deleted under this localpart had reached: an account created again
-- under it numbers its events after it, with one number left out, so a stream's cursor from the
-- deleted account's log (a Last-Event-ID, a ?since=) is never a position in the new log: it gets a
-- resync and then every event of the new log, none skipped (API.md Events).
ALTER TABLE "account_deletion" ADD COLUMN "last_seq" BIGINT NOT NULL DEFAULT 0;
