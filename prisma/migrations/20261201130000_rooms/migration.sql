-- Group chat (API.md "Group chat (1.1, XEP-0045)"): the rooms an account joined, as state the
-- gateway keeps (it rejoins them after a restart or link loss), and the occupants it was told of.

CREATE TABLE "room" (
    "account_id" INTEGER NOT NULL,
    -- The room's bare JID.
    "room" TEXT NOT NULL,
    "nick" TEXT NOT NULL,
    "password" TEXT,
    -- joining (join sent, not confirmed), joined (self-presence seen), failed (the room refused).
    "status" TEXT NOT NULL,
    "role" TEXT,
    "affiliation" TEXT,
    -- The room was created by this account's join (XEP-0045 status 201).
    "created" BOOLEAN NOT NULL DEFAULT false,
    "subject" JSON,
    -- The room's refusal (RFC 6120 §8.3 type/condition/text) when status is failed.
    "error" JSON,
    -- The last room message seen: a rejoin asks only for history since then (XEP-0045 §7.2.15).
    "last_message_at" TIMESTAMP(3),
    "history" JSON,
    "joined_at" TIMESTAMP(3),
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "room_pkey" PRIMARY KEY ("account_id", "room"),
    CONSTRAINT "room_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE "room_occupant" (
    "account_id" INTEGER NOT NULL,
    "room" TEXT NOT NULL,
    "nick" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "affiliation" TEXT NOT NULL,
    "jid" TEXT,

    CONSTRAINT "room_occupant_pkey" PRIMARY KEY ("account_id", "room", "nick"),
    CONSTRAINT "room_occupant_room_fkey" FOREIGN KEY ("account_id", "room") REFERENCES "room"("account_id", "room") ON DELETE CASCADE ON UPDATE CASCADE
);

-- Room messages are told apart by their sender's stanza id (a rejoin's history repeats some).
CREATE INDEX "message_account_id_peer_stanza_id_idx" ON "message"("account_id", "peer", "stanza_id");
