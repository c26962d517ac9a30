// Which instance publishes presence and rejoins the rooms after its link came up, with
// XMPP_LINK_MODE=all (src/db/link-republish.ts): the first one whose link came up after an
// outage; one whose link went down before that claim leaves it to it; one whose link went down
// after it (a later outage) claims again. Concurrent claims: one wins, the others wait for it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { claimRepublish } from "../../src/db/link-republish.js";
import { suiteDatabase } from "../helpers/database.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("claiming the republish after a link came up", () => {
  const database = suiteDatabase(4);
  const claim = (downForMs: number) => database().sqlTransaction((tx) => claimRepublish(tx, downForMs));

  it("the first claim wins; a link down for longer than the time since leaves it; a link down for less claims again", async () => {
    assert.equal(await claim(60_000), true, "nobody has claimed yet");
    assert.equal(await claim(60_000), false, "its link went down a minute ago, before that claim");
    await sleep(300);
    assert.equal(await claim(100), true, "its link went down 100 ms ago, after that claim (300 ms ago)");
    assert.equal(await claim(5000), false, "and that claim covers a link down for 5 s");
  });

  it("of three concurrent claims for one outage, one wins; the others wait for it to commit", async () => {
    await sleep(200);
    const db = database();
    // The first claim holds its transaction open (as a rejoin's records would) while the others start.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = db.sqlTransaction(async (tx) => {
      const won = await claimRepublish(tx, 100);
      await held;
      return won;
    });
    await sleep(100);
    const others = [claim(5000), claim(5000)];
    await sleep(300);
    release();
    assert.deepEqual([await first, ...(await Promise.all(others))], [true, false, false]);
  });
});
