// Reads a transaction makes while it may hold locks go through that transaction, never through a
// second pool connection (the concurrency audit): with a pool of one connection, held by the
// transaction, a read on the pool would wait for the pool's connect timeout (5 s) and fail. The
// caches' misses (an account, a blocklist) are read in the transaction and not cached; hits
// still come from the cache.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Accounts } from "../../src/db/accounts.js";
import { Blocklists } from "../../src/db/blocklist.js";
import { Sessions } from "../../src/db/sessions.js";
import { suiteDatabase } from "../helpers/database.js";

describe("reads inside a transaction on a pool of one connection", () => {
  const db = suiteDatabase(1);

  it("an account, a blocklist and a session are read in the transaction, within well under the pool's timeout", async () => {
    const accounts = new Accounts(db().prisma);
    const blocklists = new Blocklists(db().prisma);
    const sessions = new Sessions(db().prisma, db().pool, 60);
    const romeo = await accounts.create("romeo");
    assert.ok(romeo);
    const started = Date.now();
    const seen = await db().sqlTransaction(async (tx) => {
      await tx.query("SELECT id FROM account WHERE id = $1 FOR UPDATE", [romeo.id]);
      return {
        romeo: await accounts.find("romeo", tx),
        nobody: await accounts.find("nobody", tx),
        confirmed: await accounts.read("romeo", tx),
        blocks: [...(await blocklists.of(romeo.id, tx))],
        reachable: await sessions.reachable(romeo.id, "phone", tx),
      };
    });
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms`);
    assert.deepEqual(seen, { romeo, nobody: null, confirmed: romeo, blocks: [], reachable: false });
  });

  it("what a transaction read of its own uncommitted change is not cached", async () => {
    const accounts = new Accounts(db().prisma);
    const blocklists = new Blocklists(db().prisma);
    const juliet = (await accounts.create("juliet"))!;
    const inside = await db()
      .sqlTransaction(async (tx) => {
        await tx.query("INSERT INTO block (account_id, jid) VALUES ($1, 'tybalt@localhost')", [juliet.id]);
        const seen = [...(await blocklists.of(juliet.id, tx))];
        throw Object.assign(new Error("rolled back"), { seen });
      })
      .catch((err: { seen?: string[] }) => err.seen);
    assert.deepEqual(inside, ["tybalt@localhost"], "the transaction reads its own change");
    assert.deepEqual([...(await blocklists.of(juliet.id))], [], "rolled back: the committed list, not the transaction's");
  });
});
