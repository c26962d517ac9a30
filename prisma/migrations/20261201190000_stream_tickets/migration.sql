-- Stream tickets (README "Event streams from a browser"): EventSource cannot send an Authorization
-- header, so a browser trades its bearer token for a short-lived ticket and opens
-- GET /v1/events?ticket=... with it. Only the SHA-256 of the ticket is stored, so the table's
-- contents cannot open a stream. Kept in Postgres so any instance behind the load balancer can
-- accept a ticket another minted.
CREATE TABLE "stream_ticket" (
    "hash" TEXT NOT NULL,
    "account_id" INTEGER NOT NULL,
    "resource" TEXT,
    "expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "stream_ticket_pkey" PRIMARY KEY ("hash"),
    CONSTRAINT "stream_ticket_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE INDEX "stream_ticket_expires_at_idx" ON "stream_ticket"("expires_at");
