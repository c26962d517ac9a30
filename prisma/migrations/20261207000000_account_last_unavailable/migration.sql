-- The account's last unavailable presence (src/services/presence.ts): its status (a language map
-- or a string, as a session's status) and when its last available session went unavailable.
-- A probe from a subscriber while no session is available is answered with it (RFC 6121 §4.3.2,
-- XEP-0203 delay). Nullable without a default: adding them rewrites no row.
ALTER TABLE "account" ADD COLUMN "last_unavailable_status" JSONB,
ADD COLUMN "last_unavailable_at" TIMESTAMPTZ(3);
