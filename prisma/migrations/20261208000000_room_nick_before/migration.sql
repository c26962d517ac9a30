-- The nick an account was in a room under before a nick change the room answered item-not-found
-- (it had lost the account: src/services/inbound-room-refusal.ts), kept while the gateway enters
-- the room again under the nick asked for: if that nick is taken there (XEP-0045 §7.2.9,
-- conflict), the account enters under this one instead. Nullable without a default: adding it
-- rewrites no row.
ALTER TABLE "room" ADD COLUMN "nick_before" TEXT;
