-- At most 100 sessions kept per account (src/domain/session-limits.ts MAX_SESSIONS). New sessions'
-- rows make room by removing the least recently seen gone ones (unavailable, no stream open): all
-- a gone session keeps is where its last stream left off, and a stream that names it again starts
-- where the account's other sessions got to, as a new session does. Live sessions are never
-- removed here: the available ones are bounded by PUT /v1/presence (409 too-many-sessions,
-- src/services/presence.ts), those with a stream open by MAX_STREAMS_PER_ACCOUNT.
-- Once a statement, after it, for the accounts of the rows it inserted (its transition table): a
-- stream reopening its session (the INSERT ... ON CONFLICT DO UPDATE of src/db/sessions.ts, a
-- mass reconnect's 10,000 of them) inserts none, and pays one empty statement.
-- No lock: two new sessions at once may leave a row more or fewer than 100, which the next one mends.
-- The liveness test is repeated on the row deleted: a gone row that another transaction reopens
-- while this one waits for it is checked again in its new version, and kept.
CREATE FUNCTION session_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM session s USING (
    SELECT g.account_id, g.resource,
           row_number() OVER (PARTITION BY g.account_id ORDER BY g.last_seen_at DESC, g.resource) AS n,
           (SELECT count(*) FROM session l WHERE l.account_id = g.account_id AND (l.available OR l.streams > 0)) AS live
    FROM session g
    WHERE g.account_id IN (SELECT account_id FROM inserted) AND NOT g.available AND g.streams = 0
  ) gone
  WHERE s.account_id = gone.account_id AND s.resource = gone.resource AND gone.n > 100 - gone.live AND NOT s.available AND s.streams = 0;
  RETURN NULL;
END $$;

CREATE TRIGGER session_room AFTER INSERT ON session REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION session_room();
