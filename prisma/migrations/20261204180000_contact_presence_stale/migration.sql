-- Contact presence to confirm after the component link comes back (src/services/presence.ts
-- republish): marked stale when the account probes its contacts again, cleared by every presence
-- that comes in; what no answer confirmed is forgotten a few seconds later. A contact who stayed
-- online is never shown going offline and back.
ALTER TABLE "contact_presence" ADD COLUMN "stale" BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX "contact_presence_stale_idx" ON "contact_presence"("account_id") WHERE "stale";
