-- Until when the endpoint's failure streak holds without another failed attempt: each failure
-- holds it for the retry schedule's longest gap (or the retry it scheduled, if later) and a lease
-- more. A failure after that starts a new streak: the endpoint had nothing to send meanwhile, so
-- WEBHOOK_DISABLE_AFTER does not count that quiet spell as failing. A streak under way now has
-- none and goes on as before (src/db/webhook-settle.ts). Nullable without a default: adding it
-- rewrites no row.
ALTER TABLE "webhook" ADD COLUMN "failing_until" TIMESTAMP(3);
