-- XMPP_LINK_MODE=all: when an instance whose component link came up last published the accounts'
-- presence again and rejoined their rooms, for every instance (src/db/link-republish.ts). One row.
-- An instance whose link comes up after that moment's outage leaves it to that one: after an XMPP
-- server restart every instance's link comes up, and each had sent the same stanzas again.
CREATE TABLE "link_republish" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "link_republish_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "link_republish_one_row" CHECK ("id" = 1)
);
