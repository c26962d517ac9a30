-- The link's queue of outbound messages moves out of the message table into a small table of its
-- own: a row per queued message, inserted with the message, deleted when the XMPP server
-- confirmed it (or the drain found it no longer sendable). `message.status` still says `queued`
-- until then, for every reader.
--
-- Why: the queue used to be the `queued` range of the index message(status, seq). Every message
-- marked sent left a dead `queued` entry at the head of that range, and only VACUUM removes them;
-- autovacuum comes after 20% of the table has changed (a 10M-message table: 2M sent messages), so
-- every insert's check of what is queued ahead, every drain's claim and every sweep walked them
-- all. Measured (the insert statement, one message each, PostgreSQL's CPU per statement, after
-- 35k / 70k / 140k messages sent with no VACUUM of `message`): 420-435 / 545-560 / 840-905 us,
-- growing without bound; with this queue (vacuumed by the holder, src/db/outbox.ts tidyQueue):
-- 385-395 / 310-385 / 375-420 us.
--
-- With status no longer indexed, recording a message as sent is a HOT update (no new index
-- entries) when its page has room: message pages are filled to 90% on insert, leaving room for it.
-- No foreign key: a queued message of a deleted account leaves a row that the drain discards.
CREATE TABLE "message_queue" (
    "seq" BIGINT NOT NULL,
    "message_id" UUID NOT NULL,

    CONSTRAINT "message_queue_pkey" PRIMARY KEY ("seq")
);

INSERT INTO "message_queue" ("seq", "message_id") SELECT "seq", "id" FROM "message" WHERE "status" = 'queued' AND "direction" = 'out';

DROP INDEX "message_status_seq_idx";

ALTER TABLE "message" SET (fillfactor = 90);
