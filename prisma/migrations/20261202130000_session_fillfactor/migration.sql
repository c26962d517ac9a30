-- Session liveness (Events.heartbeat) updates every session with an open stream once per heartbeat
-- interval. Only the primary key is indexed, so with room on the page each update is HOT: the new
-- version stays on the page, no index entry is written, and the page prunes the old versions itself
-- without a VACUUM. At the default fillfactor (100) every such update moved its row to another
-- page (test/db/sessions.test.ts); at 50 a few still did at the second heartbeat, at 40 none did
-- in four.
ALTER TABLE "session" SET (fillfactor = 40);
