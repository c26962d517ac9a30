-- At most 100 resources of one contact's presence kept per account (src/domain/roster-limits.ts
-- MAX_CONTACT_RESOURCES): a new resource's row makes room by removing the least recently updated
-- of that contact's. A contact's server says which resources are available, and a server that
-- never says one went away (or makes up resources) would otherwise grow the table, and the list
-- GET /v1/presence answers, without end. Once a statement, after it, for the contacts of the
-- rows it inserted (a transition table): an update of a resource already kept inserts none.
CREATE FUNCTION contact_presence_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM contact_presence c USING (
    SELECT g.account_id, g.jid, g.resource,
           row_number() OVER (PARTITION BY g.account_id, g.jid ORDER BY g.updated_at DESC, g.resource) AS n
    FROM contact_presence g
    WHERE (g.account_id, g.jid) IN (SELECT account_id, jid FROM inserted)
  ) extra
  WHERE c.account_id = extra.account_id AND c.jid = extra.jid AND c.resource = extra.resource AND extra.n > 100;
  RETURN NULL;
END $$;

CREATE TRIGGER contact_presence_room AFTER INSERT ON contact_presence REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION contact_presence_room();
