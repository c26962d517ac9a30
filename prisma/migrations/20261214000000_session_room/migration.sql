-- At most 100 sessions kept per account (src/domain/session-limits.ts MAX_SESSIONS). A new
-- session's row makes room by removing the least recently seen gone ones (unavailable, no stream
-- open): all a gone session keeps is where its last stream left off, and a stream that names it
-- again starts where the account's other sessions got to, as a new session does. Live sessions
-- are never removed here: the available ones are bounded by PUT /v1/presence (409
-- too-many-sessions, src/services/presence.ts), those with a stream open by
-- MAX_STREAMS_PER_ACCOUNT. A BEFORE INSERT trigger fires for the proposed row of an INSERT ... ON
-- CONFLICT too (a stream reopening its session): a row already there is left alone.
-- No lock: two new sessions at once may leave a row more or fewer than 100, which the next one mends.
-- The liveness test is repeated outside the IN list: a gone row that another transaction reopens
-- while this one waits for it is checked again in its new version, and kept.
CREATE FUNCTION session_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM session WHERE account_id = NEW.account_id AND resource = NEW.resource) THEN
    RETURN NEW;
  END IF;
  DELETE FROM session s
  WHERE s.account_id = NEW.account_id AND NOT s.available AND s.streams = 0 AND s.resource IN (
    SELECT g.resource FROM session g
    WHERE g.account_id = NEW.account_id AND NOT g.available AND g.streams = 0
    ORDER BY g.last_seen_at DESC, g.resource
    OFFSET greatest(0, 99 - (SELECT count(*) FROM session l WHERE l.account_id = NEW.account_id AND (l.available OR l.streams > 0))));
  RETURN NEW;
END $$;

CREATE TRIGGER session_room BEFORE INSERT ON session FOR EACH ROW EXECUTE FUNCTION session_room();
