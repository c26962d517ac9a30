// The undo a correction keeps with its wire id (src/db/message-undo.ts): taken once, and gone with
// the text when the message is retracted (a tombstone keeps no text, nor the text it replaced).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Accounts } from "../../src/db/accounts.js";
import { markRetracted } from "../../src/db/message-state.js";
import { recordUndo, takeUndo } from "../../src/db/message-undo.js";
import { autocommit } from "../../src/db/client.js";
import { suiteDatabase } from "../helpers/database.js";

describe("a correction's undo", () => {
  const db = suiteDatabase();

  async function corrected(localpart: string) {
    const account = (await new Accounts(db().prisma).create(localpart))!;
    const id = randomUUID();
    await db().pool.query(
      `INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, status) VALUES ($1, $2, 'out', 'juliet@localhost', 'juliet@localhost', 'romeo@gw', 'chat', '"new"', 'sent')`,
      [id, account.id],
    );
    const wire = randomUUID();
    await recordUndo(autocommit(db().pool), account.id, "juliet@localhost", id, wire, { kind: "replace", before: { body: "old", editedAt: null }, after: "new" });
    return { account, id, wire };
  }

  it("is taken once, with the message as it is now", async () => {
    const { account, id, wire } = await corrected("romeo");
    const first = await takeUndo(autocommit(db().pool), account.id, "juliet@localhost", wire);
    assert.deepEqual(first, { id, undo: { kind: "replace", before: { body: "old", editedAt: null }, after: "new" }, message: { body: "new", reactions: null, retractedAt: null } });
    assert.equal(await takeUndo(autocommit(db().pool), account.id, "juliet@localhost", wire), null, "a second error under the id finds none");
  });

  it("goes with the text when the message is retracted", async () => {
    const { account, id, wire } = await corrected("mercutio");
    await markRetracted(autocommit(db().pool), id);
    const { rows } = await db().pool.query("SELECT undo FROM message_alias WHERE message_id = $1", [id]);
    assert.deepEqual(rows, [{ undo: null }], "the alias stays (references name it), its undo does not");
    assert.equal(await takeUndo(autocommit(db().pool), account.id, "juliet@localhost", wire), null);
  });
});
