-- How far the room answered the account's latest join or nick change (XEP-0045 §7.2): NULL until
-- it presented the account itself (self-presence, status 110, §7.2.2), 'presence' after that, and
-- 'subject' once its subject message came after the self-presence: the room sends the subject
-- last, even an empty one, and that marks the end of the join (§7.2.16). The waiting request
-- reads it from any instance; a new join or nick change starts it again at NULL, so a subject
-- from an earlier join never completes a later one.
ALTER TABLE "room" ADD COLUMN "join_stage" TEXT;

-- An empty <subject/> is a room without a subject (XEP-0045 §8.1): null, as the gateway now stores it.
UPDATE "room" SET "subject" = NULL WHERE "subject"::text = '""';
