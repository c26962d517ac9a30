-- Contact presence to confirm after the component link comes back (src/services/presence.ts
-- republish): the account probes its contacts again and marks what it stored with the time
-- (stale_since); any presence that comes in from the contact confirms it, and what is still
-- unconfirmed a few seconds after the mark is forgotten. A contact who stayed online is never
-- shown going offline and back.
ALTER TABLE "contact_presence" ADD COLUMN "stale_since" TIMESTAMP(3);
CREATE INDEX "contact_presence_stale_idx" ON "contact_presence"("account_id") WHERE "stale_since" IS NOT NULL;

-- The confirmation is a trigger, not the upsert's own doing, so that an instance of the earlier
-- version (a rolling deploy), whose upserts know no stale_since, confirms too: every upsert of a
-- contact's presence sets updated_at (Prisma's @updatedAt), and the mark itself leaves it alone.
CREATE FUNCTION contact_presence_confirm() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.stale_since := NULL; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER contact_presence_confirm BEFORE UPDATE ON "contact_presence"
  FOR EACH ROW EXECUTE FUNCTION contact_presence_confirm();
