// A message's status as read (src/db/message-status.ts): the stored column, or, while it says
// `queued`, what the message queue says. GET /v1/messages reads the row and then resolves its
// status in a second statement; a failure recorded between the two must not show as `failed`
// without the error that came with it.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Database } from "../../src/db/client.js";
import { resolveStatuses } from "../../src/db/message-status.js";
import { suiteDatabase } from "../helpers/database.js";

describe("a message's status as read", () => {
  const database = suiteDatabase(2);
  let db: Database;
  let accountId: number;

  before(async () => {
    db = database();
    accountId = (await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('romeo') RETURNING id")).rows[0]!.id;
  });

  const insert = async (queued: boolean) => {
    const id = randomUUID();
    const { rows } = await db.pool.query<{ seq: number }>(
      `INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, status) VALUES ($1, $2, 'out', 'juliet@localhost', 'juliet@localhost', 'romeo@gw', 'chat', '"hi"', 'queued') RETURNING seq`,
      [id, accountId],
    );
    if (queued) await db.pool.query("INSERT INTO message_queue (seq, message_id) VALUES ($1, $2)", [rows[0]!.seq, id]);
    return id;
  };

  it("reads queued while the queue holds it and sent once it left, from rows read as queued", async () => {
    const [waiting, gone] = [await insert(true), await insert(false)];
    const read = await resolveStatuses(db.pool, [waiting, gone].map((id) => ({ id, status: "queued", error: null })));
    assert.deepEqual(read.map((r) => r.status), ["queued", "sent"]);
  });

  it("a failure recorded after the row was read comes with its error", async () => {
    const id = await insert(true);
    const stale = { id, status: "queued", error: null as unknown };
    // What the drain records when the server refuses the message, between the two reads.
    const error = { type: "cancel", condition: "not-acceptable", text: "not an occupant" };
    await db.pool.query("UPDATE message SET status = 'failed', error = $2 WHERE id = $1", [id, JSON.stringify(error)]);
    await db.pool.query("DELETE FROM message_queue WHERE message_id = $1", [id]);
    const [r] = await resolveStatuses(db.pool, [stale]);
    assert.deepEqual({ status: r!.status, error: r!.error }, { status: "failed", error });
  });
});
