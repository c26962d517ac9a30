-- A stream opened with a ticket ends when the token the ticket was minted with expires, as one
-- opened with the token itself does (README "Event streams from a browser"). Nullable: tickets
-- minted before this column (or by an instance of the earlier version during a rolling upgrade)
-- do not know their token's expiry, and their streams run on as they did.
ALTER TABLE "stream_ticket" ADD COLUMN "token_expires_at" TIMESTAMP(3);
