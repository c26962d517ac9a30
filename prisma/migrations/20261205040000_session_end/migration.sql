-- Sessions ended by DELETE /v1/sessions/{resource} a short while ago (src/db/session-ends.ts): a
-- client that follows the SSE spec reconnects when its stream ends, with Last-Event-ID, and that
-- reconnect must not open the session again: it is answered 204, which makes an EventSource give
-- up for good (HTML "Server-sent events", processing model). Kept apart from "session" so that
-- nothing that reads sessions (listing, presence, probes, routing, the sweep, the purge) has to
-- tell an ended one from a live one. ended_at is PostgreSQL's clock, so every instance agrees.
-- The janitor deletes rows older than the window; no index on ended_at: a handful of rows.
CREATE TABLE "session_end" (
    "account_id" INTEGER NOT NULL,
    "resource" TEXT NOT NULL,
    "ended_at" TIMESTAMPTZ(3) NOT NULL DEFAULT now(),

    CONSTRAINT "session_end_pkey" PRIMARY KEY ("account_id","resource"),
    CONSTRAINT "session_end_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
