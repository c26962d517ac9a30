-- A group message the XMPP server took but the room has not reflected yet (API.md: a group message
-- is `sent` when the room reflects it back, XEP-0045 §7.4). Read as `queued` by the API; not
-- claimed by the outbox (which claims `queued` rows only).
ALTER TYPE "MessageStatus" ADD VALUE 'written' AFTER 'queued';
