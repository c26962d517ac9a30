// Contact presence marked to be confirmed after a link-up (src/services/presence.ts republish):
// any update of a contact's presence confirms it, through the table's trigger, whether it comes
// from this version's upsert or from an earlier version's, which knows nothing of stale_since (a
// rolling deploy); the mark itself does not; and only what is still unconfirmed once the wait
// has passed is forgotten, a later mark waiting again.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Database } from "../../src/db/client.js";
import { accountsWithStalePresence, clearStaleContactPresence, markContactPresenceStale, setContactPresence } from "../../src/db/contact-presence.js";
import { suiteDatabase } from "../helpers/database.js";

describe("contact presence to confirm", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let id = 0;

  before(async () => {
    db = database();
    id = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('romeo') RETURNING id")).rows[0]!.id;
  });

  const stale = async () => (await db.pool.query<{ jid: string }>("SELECT jid FROM contact_presence WHERE stale_since IS NOT NULL ORDER BY jid")).rows.map((r) => r.jid);
  const available = { show: null, status: null, priority: 0 };

  it("is confirmed by this version's upsert and by an earlier version's, not by the mark; the rest is forgotten after the wait", async () => {
    for (const jid of ["juliet@localhost", "nurse@localhost", "tybalt@localhost"]) await setContactPresence(db.prisma, id, jid, "phone", available);
    await markContactPresenceStale(db.prisma, id);
    assert.deepEqual(await stale(), ["juliet@localhost", "nurse@localhost", "tybalt@localhost"]);
    // This version: the upsert. An earlier one: Prisma's upsert of show, status, priority and updated_at alone.
    await setContactPresence(db.prisma, id, "juliet@localhost", "phone", { ...available, show: "away" });
    await db.prisma.contactPresence.update({ where: { accountId_jid_resource: { accountId: id, jid: "tybalt@localhost", resource: "phone" } }, data: { show: "dnd", updatedAt: new Date() } });
    assert.deepEqual(await stale(), ["nurse@localhost"]);
    // Not forgotten before the wait has passed; after it, only the nurse.
    assert.deepEqual(await accountsWithStalePresence(db.prisma, 60_000), []);
    assert.deepEqual(await clearStaleContactPresence(db.prisma, id, 60_000), []);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await accountsWithStalePresence(db.prisma, 200), [id]);
    assert.deepEqual(await clearStaleContactPresence(db.prisma, id, 200), [{ jid: "nurse@localhost", resource: "phone" }]);
    const left = (await db.pool.query<{ jid: string }>("SELECT jid FROM contact_presence WHERE account_id = $1 ORDER BY jid", [id])).rows.map((r) => r.jid);
    assert.deepEqual(left, ["juliet@localhost", "tybalt@localhost"]);
  });
});
