-- At most 1,000 rooms an account is in or joining (src/domain/muc.ts MAX_ROOMS; a failed join is
-- none). Checked before a join's row is written: an INSERT, or the INSERT ... ON CONFLICT DO UPDATE
-- that joins again after a refusal (a BEFORE INSERT trigger fires for the proposed row either way,
-- so the room itself is left out of the count). The per-account advisory lock makes joins of one
-- account take turns; under READ COMMITTED the count, a statement of its own in this function,
-- then sees every join committed before, so two joins cannot both take the last place.
CREATE FUNCTION room_cap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(4366786, NEW.account_id); -- 0x42a1c2: the migrations' 0x42a1c0 and the webhook lanes' 0x42a1c1 beside it
  IF (SELECT count(*) FROM room WHERE account_id = NEW.account_id AND room <> NEW.room AND status <> 'failed') >= 1000 THEN
    RAISE EXCEPTION 'too-many-rooms' USING ERRCODE = 'P0001', DETAIL = 'an account is in at most 1000 rooms';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER room_cap BEFORE INSERT ON room FOR EACH ROW EXECUTE FUNCTION room_cap();
