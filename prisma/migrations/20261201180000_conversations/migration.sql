-- Conversations (API.md "Message features (1.1)": GET /v1/conversations): one row per account and
-- peer (bare JID or room), maintained by the statements that insert messages, so listing them is
-- an index range scan however many an account has (10,000 and more).
CREATE TABLE "conversation" (
    "account_id" INTEGER NOT NULL,
    "peer" TEXT NOT NULL,
    -- message.seq of the latest message: the activity order (seq only grows) and the page cursor.
    "last_seq" BIGINT NOT NULL,
    -- Inbound messages after the read position.
    "unread" INTEGER NOT NULL DEFAULT 0,
    -- message.seq of the message read up to (POST /v1/messages/{id}/displayed).
    "last_read_seq" BIGINT,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "conversation_pkey" PRIMARY KEY ("account_id", "peer"),
    CONSTRAINT "conversation_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "conversation_account_id_last_seq_idx" ON "conversation"("account_id", "last_seq" DESC);

-- The conversations of messages stored before this release.
INSERT INTO "conversation" ("account_id", "peer", "last_seq", "unread", "updated_at")
SELECT "account_id", "peer", max("seq"), count(*) FILTER (WHERE "direction" = 'in'), max("created_at") FROM "message" GROUP BY "account_id", "peer";
