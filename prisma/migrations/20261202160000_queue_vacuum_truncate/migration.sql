-- The link holder vacuums the two queue tables at its 5 s sweep (src/db/outbox.ts tidyQueue). By
-- default VACUUM ends by giving the empty pages at a table's end back to the file system, which
-- needs an ACCESS EXCLUSIVE lock on the table: while messages are being sent an insert nearly
-- always holds the queue, so VACUUM waited for the lock in 50 ms steps (up to 5 s), and while it
-- held it, any insert had to wait. At 500 msg/s PostgreSQL logged that VACUUM at 51-55 ms (the
-- three sweeps logged); without the truncation it takes 1-5 ms. A queue refills at once, so its
-- free pages are reused, not worth giving back. Autovacuum, where it runs, follows the same setting.
ALTER TABLE "message_queue" SET (vacuum_truncate = false);
ALTER TABLE "outbox" SET (vacuum_truncate = false);
