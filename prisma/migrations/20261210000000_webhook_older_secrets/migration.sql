-- The secrets before the previous one whose overlap has not ended, when an endpoint's secret is
-- rotated again within the overlap: [{"secret": "whsec_…", "until": <ms since the epoch>}], the
-- latest 3. Deliveries are signed with each of them too, so a receiver still on the first secret
-- (a client that retried a rotation whose answer it lost) keeps verifying until its time is up.
ALTER TABLE "webhook" ADD COLUMN "older_secrets" JSONB NOT NULL DEFAULT '[]';
