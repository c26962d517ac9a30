-- Blocking (API.md "Blocking (1.1, XEP-0191)"): the JIDs an account blocked, as the home server
-- enforces them. An item is a normalised JID of any of XEP-0191 §3's forms: user@domain/resource,
-- user@domain, domain/resource or domain.
CREATE TABLE "block" (
    "account_id" INTEGER NOT NULL,
    "jid" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "block_pkey" PRIMARY KEY ("account_id", "jid"),
    CONSTRAINT "block_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
