// blockCovers (src/db/blocklist.ts), the SQL the inbound writes decide blocks by
// (src/db/inbound-writes.ts), matches as src/domain/blocking.ts isBlocked does (XEP-0191 §3): for
// every sender and list below, the database's answer is the in-process one.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blockCovers } from "../../src/db/blocklist.js";
import { isBlocked } from "../../src/domain/blocking.js";
import { jidToString, parseJid } from "../../src/domain/jid.js";
import { suiteDatabase } from "../helpers/database.js";

const ITEMS = [
  "juliet@example.net",
  "nurse@example.net/garden",
  "example.org",
  "montague.example/desk",
  "conference.example.com",
  "room@conference.example.net/tybalt",
  "net", // a top-level domain: everything under it
];
const SENDERS = [
  "juliet@example.net",
  "juliet@example.net/balcony",
  "nurse@example.net",
  "nurse@example.net/garden",
  "nurse@example.net/balcony",
  "romeo@example.org/a",
  "tybalt@sub.example.org/x",
  "mercutio@badexample.org/y",
  "example.org",
  "montague.example/desk",
  "montague.example/other",
  "someone@montague.example/desk",
  "room@conference.example.com/nick",
  "room@conference.example.net/tybalt",
  "room@conference.example.net/mercutio",
  "room@conference.example.net",
  "odd@example.com/res/with@and/slashes",
  "juliet@example.net/x@example.org",
];

describe("blockCovers", () => {
  const db = suiteDatabase();

  it("covers exactly the senders isBlocked does, for single items and a whole list", async () => {
    const { rows } = await db().pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('romeo') RETURNING id");
    const account = rows[0]!.id;
    const lists = [...ITEMS.map((i) => [i]), ITEMS.slice(2), []];
    for (const list of lists) {
      await db().pool.query("DELETE FROM block WHERE account_id = $1", [account]);
      for (const item of list) await db().pool.query("INSERT INTO block (account_id, jid) VALUES ($1, $2)", [account, item]);
      for (const raw of SENDERS) {
        const from = parseJid(raw)!;
        const { rows: r } = await db().pool.query<{ covered: boolean }>(`SELECT ${blockCovers("$1::int", "$2::text")} AS covered`, [account, jidToString(from)]);
        assert.equal(r[0]!.covered, isBlocked(new Set(list), from), `${raw} by [${list.join(", ")}]`);
      }
    }
  });
});
