-- The latest deletion of each localpart (src/db/accounts.ts): a token is the account's only
-- credential and names it by localpart (`sub`), so a token issued before a deletion would
-- otherwise be taken for an account created later under the same localpart, and read and write
-- its data. Such a token (its `iat` before deleted_at) is refused. No foreign key: the mark
-- outlives the account it is about, and stays across its re-creation. deleted_at is PostgreSQL's
-- clock, so every instance agrees. Kept (one small row per deleted localpart): tokens signed
-- outside the gateway have no upper bound on their lifetime, so no mark can be known useless.
CREATE TABLE "account_deletion" (
    "localpart" TEXT NOT NULL,
    "deleted_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "account_deletion_pkey" PRIMARY KEY ("localpart")
);
