-- XEP-0359 §3: the origin-id a peer's message came with, where it differs from the message's
-- stanza id. Peers may name their own messages by either: XEP-0424 retracts by the origin-id (its
-- example: message 'wrong-recipient-1', origin-id 'origin-id-1', <retract id='origin-id-1'/>),
-- XEP-0444 §Using the correct ID reacts by it when present. Most clients send an origin-id equal to
-- the stanza id; those rows leave this NULL, so the partial index (the shape of the stanza-id one,
-- 20261201200000_message_partial_indexes) holds only the few messages that differ.
ALTER TABLE "message" ADD COLUMN "origin_id" TEXT;
CREATE INDEX "message_account_id_peer_origin_id_idx" ON "message"("account_id", "peer", "origin_id") WHERE "origin_id" IS NOT NULL;
