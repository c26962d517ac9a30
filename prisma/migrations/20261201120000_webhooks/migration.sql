-- Webhooks (API.md "Webhooks (1.1)"). Deliveries are read from the event log itself: a lane keeps,
-- per endpoint and account, how far the log has been settled (delivered, failed for good, or not
-- of a subscribed type), and the retry state of the event after it. A delivery row records what
-- happened to one event at one endpoint, for GET /v1/webhooks/{id}/deliveries.

CREATE TABLE "webhook" (
    "id" UUID NOT NULL,
    -- NULL: every account (an admin's subscription).
    "account_id" INTEGER,
    "url" TEXT NOT NULL,
    -- NULL: every event type, including types added later.
    "events" TEXT[],
    "description" TEXT,
    "secret" TEXT NOT NULL,
    -- The secret before the last rotation: deliveries carry both signatures until it expires.
    "previous_secret" TEXT,
    "previous_secret_until" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Set by the first failed attempt after a success; an endpoint failing long enough is disabled.
    "failing_since" TIMESTAMP(3),
    "disabled_at" TIMESTAMP(3),
    "disabled_reason" TEXT,
    -- The instance delivering to this endpoint, until when: one instance at a time.
    "lease_owner" TEXT,
    "lease_until" TIMESTAMP(3),

    CONSTRAINT "webhook_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "webhook_account_id_idx" ON "webhook"("account_id");

CREATE TABLE "webhook_lane" (
    "webhook_id" UUID NOT NULL,
    "account_id" INTEGER NOT NULL,
    -- Every event of the account up to here is settled for this endpoint.
    "seq" BIGINT NOT NULL,
    -- Failed attempts of the next event, and when to try it again.
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_lane_pkey" PRIMARY KEY ("webhook_id", "account_id"),
    CONSTRAINT "webhook_lane_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhook"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "webhook_lane_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "webhook_lane_account_id_idx" ON "webhook_lane"("account_id");

CREATE TABLE "webhook_delivery" (
    "id" BIGSERIAL NOT NULL,
    "webhook_id" UUID NOT NULL,
    "account_id" INTEGER NOT NULL,
    "seq" BIGINT NOT NULL,
    "type" TEXT NOT NULL,
    -- pending (retrying), delivered, failed (the schedule ran out, or the endpoint was disabled).
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "response_status" INTEGER,
    "response_excerpt" TEXT,
    "error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_attempt_at" TIMESTAMP(3) NOT NULL,
    "next_attempt_at" TIMESTAMP(3),

    CONSTRAINT "webhook_delivery_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_delivery_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhook"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "webhook_delivery_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "webhook_delivery_webhook_id_account_id_seq_key" ON "webhook_delivery"("webhook_id", "account_id", "seq");
CREATE INDEX "webhook_delivery_webhook_id_id_idx" ON "webhook_delivery"("webhook_id", "id");
CREATE INDEX "webhook_delivery_created_at_idx" ON "webhook_delivery"("created_at");
