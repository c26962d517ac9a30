-- Each attempt of a delivery, for GET /v1/webhooks/{id}/deliveries (API.md "Webhooks (1.1)"): a
-- receiver that answered 500 and then 200 showed only the 200. The attempts are a bounded JSON
-- array in the delivery's row (the last 10, oldest first; WebhookLanes.settle appends each one in
-- the statement that records its outcome), so recording one costs no row or statement more, and
-- the purge of old deliveries removes them with their row. Deliveries recorded before this keep
-- an empty history (their earlier attempts were not kept); the purge retires them with the
-- event retention.
ALTER TABLE "webhook_delivery" ADD COLUMN "history" JSONB NOT NULL DEFAULT '[]';
