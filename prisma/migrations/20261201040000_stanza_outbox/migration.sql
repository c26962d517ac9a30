-- Every outbound stanza other than a message (subscriptions, presence, receipts, error replies) is
-- recorded here in the transaction of the state change that caused it, and deleted once the
-- XMPP server confirmed it. Its `seq` comes from the message sequence, so the link writes
-- messages and stanzas in one order. No foreign key: the unsubscribe/unavailable stanzas of a
-- deleted account must outlive the account.
CREATE TABLE "outbox" (
    "seq" BIGINT NOT NULL DEFAULT nextval('message_seq_seq'),
    "account_id" INTEGER,
    "stanza" JSON NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("seq")
);

-- Bodies and subjects keep the order of their language alternatives as the client gave them
-- (jsonb would sort the keys), so a message reads and goes out exactly as it was posted.
ALTER TABLE "message" ALTER COLUMN "body" TYPE JSON USING "body"::json, ALTER COLUMN "subject" TYPE JSON USING "subject"::json;
