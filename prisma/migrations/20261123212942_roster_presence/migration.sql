-- AlterTable
ALTER TABLE "account" ADD COLUMN     "roster_ver" BIGINT NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "session" ADD COLUMN     "available" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "show" TEXT,
ADD COLUMN     "status" JSONB;

-- CreateTable
CREATE TABLE "roster_item" (
    "account_id" INTEGER NOT NULL,
    "jid" TEXT NOT NULL,
    "name" TEXT,
    "groups" TEXT[],
    "subscription" TEXT NOT NULL DEFAULT 'none',
    "ask_out" BOOLEAN NOT NULL DEFAULT false,
    "pending_in" BOOLEAN NOT NULL DEFAULT false,
    "pending_in_at" TIMESTAMP(3),
    "pending_status" TEXT,
    "approved" BOOLEAN NOT NULL DEFAULT false,
    "in_roster" BOOLEAN NOT NULL DEFAULT false,
    "ver" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "roster_item_pkey" PRIMARY KEY ("account_id","jid")
);

-- CreateTable
CREATE TABLE "contact_presence" (
    "account_id" INTEGER NOT NULL,
    "jid" TEXT NOT NULL,
    "resource" TEXT NOT NULL,
    "show" TEXT,
    "status" JSONB,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contact_presence_pkey" PRIMARY KEY ("account_id","jid","resource")
);

-- CreateIndex
CREATE INDEX "roster_item_account_id_subscription_idx" ON "roster_item"("account_id", "subscription");

-- AddForeignKey
ALTER TABLE "roster_item" ADD CONSTRAINT "roster_item_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contact_presence" ADD CONSTRAINT "contact_presence_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
