// The rooms an account may be in (src/domain/muc.ts MAX_ROOMS, trigger room_cap), on a real MUC
// service. The cap is the gateway's own, whatever the server: Prosody alone. The rooms that fill
// the account's place are rows inserted straight into PostgreSQL (rooms that do not exist;
// ROOM_SELF_PING 0 keeps the gateway from asking them anything).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_ROOMS } from "../../src/domain/muc.js";
import { uniq } from "../helpers/gateway.js";
import { MUC, roomWorld } from "../helpers/muc.js";

describe("room cap (prosody)", () => {
  const w = roomWorld("prosody", { ROOM_SELF_PING: "0" });

  async function account() {
    const lp = uniq("capped");
    await w.gw.createAccount(lp);
    const token = w.gw.token(lp);
    const id = (await w.gw.running.db.pool.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [lp])).rows[0]!.id;
    const join = (room: string) => w.gw.request("PUT", `/v1/rooms/${room}`, { token, body: { nick: "romeo" } });
    const rooms = async () => (await w.gw.running.db.pool.query<{ room: string; status: string }>("SELECT room, status FROM room WHERE account_id = $1", [id])).rows;
    return { id, token, join, rooms };
  }
  /** `n` rooms the account is in (filler-<i>), and one join the room refused. */
  const fill = (accountId: number, n: number) =>
    w.gw.running.db.pool.query(
      `INSERT INTO room (account_id, room, nick, status) SELECT $1::int, 'filler-' || g || '@${MUC}', 'romeo', 'joined' FROM generate_series(1, $2) g
       UNION ALL SELECT $1::int, 'refused@${MUC}', 'romeo', 'failed'`,
      [accountId, n],
    );
  const refused = (r: { status: number; body: { code?: string } }, what: string) => {
    assert.equal(r.status, 409, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, "too-many-rooms", what);
  };

  it(`an account is in at most ${MAX_ROOMS} rooms: one more join is 409 too-many-rooms and records nothing; a join it holds still answers, and leaving makes room`, async () => {
    const a = await account();
    await fill(a.id, MAX_ROOMS - 1);
    const last = uniq("last-");
    const joined = await a.join(`${last}@${MUC}`);
    assert.equal(joined.status, 201, joined.text);
    const more = uniq("more-");
    refused(await a.join(`${more}@${MUC}`), "a new room");
    refused(await a.join(`refused@${MUC}`), "joining again a room that refused");
    const again = await a.join(`${last}@${MUC}`);
    assert.equal(again.status, 200, `the room it is in: ${again.text}`);
    const rows = await a.rooms();
    assert.equal(rows.filter((r) => r.status !== "failed").length, MAX_ROOMS);
    assert.ok(!rows.some((r) => r.room === `${more}@${MUC}`), "nothing recorded for the refused join");

    assert.equal((await w.gw.request("DELETE", `/v1/rooms/filler-1@${MUC}`, { token: a.token })).status, 204);
    const now = await a.join(`${more}@${MUC}`);
    assert.equal(now.status, 201, now.text);
  });

  it("two joins sent at once for the last place: one is taken, the other refused", async () => {
    const a = await account();
    await fill(a.id, MAX_ROOMS - 1);
    const [r1, r2] = [uniq("race-"), uniq("race-")];
    const answers = await Promise.all([a.join(`${r1}@${MUC}`), a.join(`${r2}@${MUC}`)]);
    assert.deepEqual(answers.map((r) => r.status).sort(), [201, 409], answers.map((r) => r.text).join(" | "));
    assert.equal((await a.rooms()).filter((r) => r.status !== "failed").length, MAX_ROOMS);
  });
});
