// The blocklist's SQL matching (src/db/blocklist.ts `blocks`), which the statements that decide
// for good use, against the in-memory one every cached check uses (src/domain/blocking.ts
// isBlocked): XEP-0191 §3 "JID Matching", the same answer for every item and address below.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { blocks } from "../../src/db/blocklist.js";
import { isBlocked } from "../../src/domain/blocking.js";
import { parseJid } from "../../src/domain/jid.js";
import { suiteDatabase } from "../helpers/database.js";

const ITEMS = ["juliet@example.net/phone", "nurse@example.net", "example.org", "example.com/bot", "sub.example.edu", "capulet.it"];
const ADDRESSES = [
  "juliet@example.net/phone", "juliet@example.net/laptop", "juliet@example.net", // a full JID item: that resource only
  "nurse@example.net", "nurse@example.net/any", "tybalt@example.net", // a bare JID item: any resource
  "x@example.org", "x@example.org/r", "example.org", "example.org/r", "x@deep.sub.example.org", "x@badexample.org", // a domain and its subdomains
  "example.com/bot", "example.com/other", "example.com", "x@example.com/bot", // domain/resource: that address only
  "x@example.edu", "x@sub.example.edu", "x@a.sub.example.edu", // a subdomain item does not cover its parent
  "romeo@verona.capulet.it/a/b@c", // a resource with '/' and '@'
];

describe("blocklist matching in SQL", () => {
  const db = suiteDatabase(1);

  it("answers as isBlocked does for every item and address (XEP-0191 §3)", async () => {
    const { rows: [account] } = await db().pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('romeo') RETURNING id");
    for (const jid of ITEMS) await db().pool.query("INSERT INTO block (account_id, jid) VALUES ($1, $2)", [account!.id, jid]);
    const items = new Set(ITEMS);
    const disagree: string[] = [];
    let covered = 0;
    for (const address of ADDRESSES) {
      const expected = isBlocked(items, parseJid(address)!);
      const { rows } = await db().pool.query<{ b: boolean }>(`SELECT ${blocks("$1::int", "$2::text")} AS b`, [account!.id, address]);
      if (rows[0]!.b !== expected) disagree.push(`${address}: SQL ${rows[0]!.b}, isBlocked ${expected}`);
      if (expected) covered++;
    }
    assert.deepEqual(disagree, []);
    // Both answers occur: the comparison is not of two constant functions.
    assert.ok(covered >= 8 && covered <= ADDRESSES.length - 6, `${covered} of ${ADDRESSES.length} covered`);
    // And another account's list covers nothing of this one's.
    const { rows } = await db().pool.query<{ b: boolean }>(`SELECT ${blocks("$1::int", "$2::text")} AS b`, [account!.id + 1, "nurse@example.net"]);
    assert.equal(rows[0]!.b, false);
  });
});
