-- The roster version an account deleted under this localpart had reached: an account created again
-- under it starts after it, so no roster version (ETag) of the new account names one of the old's
-- (RFC 6121 §2.6, RFC 9110 §8.8.3: a client's cached roster at "1" got 304 for the new roster at "1").
ALTER TABLE "account_deletion" ADD COLUMN "roster_ver" BIGINT NOT NULL DEFAULT 0;
