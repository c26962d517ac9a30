-- XEP-0308 corrections each go under a wire id of their own, and markers, reactions and later
-- changes may name a correction instead of the message it corrected (XEP-0444 §Business Rules:
-- "SHOULD handle such element as if it was using the message id of the original message"). Those
-- ids are kept here, per conversation. They go with their account, as messages do (none is deleted
-- alone), so deleting a message fires no trigger for them.
CREATE TABLE "message_alias" (
    "message_id" UUID NOT NULL,
    "account_id" INTEGER NOT NULL,
    "peer" TEXT NOT NULL,
    "alias" TEXT NOT NULL,

    CONSTRAINT "message_alias_pkey" PRIMARY KEY ("message_id","alias")
);

CREATE INDEX "message_alias_account_id_peer_alias_idx" ON "message_alias"("account_id", "peer", "alias");

ALTER TABLE "message_alias" ADD CONSTRAINT "message_alias_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
