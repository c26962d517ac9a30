-- Message features (API.md "Message features (1.1)"): one model of a message's state, in either
-- direction. The extensions a message was sent or received with (XEP-0461 reply, XEP-0066/0446/0447
-- attachments, XEP-0333 markable) are `ext`; what happened to it since is the other columns.
ALTER TABLE "message" ADD COLUMN "ext" JSON;
-- The last correction (XEP-0308) and the retraction (XEP-0424: the row stays as a tombstone).
ALTER TABLE "message" ADD COLUMN "edited_at" TIMESTAMP(3);
ALTER TABLE "message" ADD COLUMN "retracted_at" TIMESTAMP(3);
-- XEP-0444: each reacting party's current set, {"<bare jid>": ["<emoji>", ...]}.
ALTER TABLE "message" ADD COLUMN "reactions" JSONB;
-- XEP-0333: the best marker the peer sent for an outbound message (received < displayed < acknowledged).
ALTER TABLE "message" ADD COLUMN "marker" TEXT;
