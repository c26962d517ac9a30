-- CreateEnum
CREATE TYPE "Direction" AS ENUM ('out', 'in');

-- CreateEnum
CREATE TYPE "MessageStatus" AS ENUM ('queued', 'sent', 'delivered', 'failed', 'received');

-- CreateTable
CREATE TABLE "account" (
    "id" SERIAL NOT NULL,
    "localpart" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seq" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "account_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "session" (
    "account_id" INTEGER NOT NULL,
    "resource" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "streams" INTEGER NOT NULL DEFAULT 0,
    "stream_closed_at" TIMESTAMP(3),
    "last_seen_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_seq" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "session_pkey" PRIMARY KEY ("account_id","resource")
);

-- CreateTable
CREATE TABLE "message" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "account_id" INTEGER NOT NULL,
    "direction" "Direction" NOT NULL,
    "peer" TEXT NOT NULL,
    "to" TEXT NOT NULL,
    "from" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "body" JSONB,
    "subject" JSONB,
    "thread" TEXT,
    "lang" TEXT,
    "receipt" BOOLEAN NOT NULL DEFAULT false,
    "state" TEXT,
    "stanza_id" TEXT,
    "status" "MessageStatus" NOT NULL,
    "error" JSONB,
    "idempotency_key" TEXT,
    "request_hash" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "message_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "event" (
    "account_id" INTEGER NOT NULL,
    "seq" BIGINT NOT NULL,
    "type" TEXT NOT NULL,
    "resource" TEXT,
    "data" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "receipt_to" TEXT,
    "receipt_id" TEXT,
    "receipt_sent" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "event_pkey" PRIMARY KEY ("account_id","seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "account_localpart_key" ON "account"("localpart");

-- CreateIndex
CREATE INDEX "message_account_id_peer_seq_idx" ON "message"("account_id", "peer", "seq");

-- CreateIndex
CREATE INDEX "message_status_seq_idx" ON "message"("status", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "message_account_id_idempotency_key_key" ON "message"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "event_created_at_idx" ON "event"("created_at");

-- AddForeignKey
ALTER TABLE "session" ADD CONSTRAINT "session_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message" ADD CONSTRAINT "message_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "event" ADD CONSTRAINT "event_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
