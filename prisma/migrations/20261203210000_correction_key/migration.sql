-- API.md Messages: an Idempotency-Key sent again with the same payload within 24 h returns the
-- first response and sends nothing again; with a different payload it is 422. A new message keeps
-- its key in its own row (message.idempotency_key); a correction (replace, XEP-0308) makes no row,
-- so its key is kept here with the request's fingerprint, the message it corrected and the status
-- the first answer gave (a replay answers the same, whatever became of the message since). A key
-- older than 24 h is free again (the next correction with it takes the row over).
CREATE TABLE "correction_key" (
    "account_id" INTEGER NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "message_id" UUID NOT NULL,
    "status" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "correction_key_pkey" PRIMARY KEY ("account_id","key")
);

ALTER TABLE "correction_key" ADD CONSTRAINT "correction_key_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
