// A burst of inbound XMPP messages to one account while PostgreSQL cannot keep up (the account's
// row is locked by another transaction, so every inbound write waits): the link stops reading the
// component socket once INBOUND_HIGH stanzas wait (src/xmpp/inbound.ts), and the XMPP server holds
// the rest, instead of the gateway parsing and holding the whole burst in memory (the load audit:
// 6,000 read, 55 MiB). Nothing is lost or reordered, and the link stays up meanwhile.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { waitFor } from "../helpers/gateway.js";
import { holdLock } from "../helpers/held-lock.js";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { INBOUND_HIGH } from "../../src/xmpp/inbound.js";

const N = 6000;
const BODY = 8 * 1024;

describe("inbound flood while the database is stuck", () => {
  let w: XmppWorld<"juliet">;
  before(async () => {
    w = await startWorld("prosody", { juliet: "flood" }, { env: { DB_POOL_MAX: "5" } });
  });
  after(async () => {
    await w?.stop();
  });

  it("holds a bounded amount of inbound stanzas in memory (back-pressure), then stores all in order", async () => {
    const { gw, users } = w;
    await gw.createAccount("romeo");
    const romeo = `romeo@${gw.domain}`;
    const token = gw.token("romeo");
    // one message first so the account's caches are warm
    await users.juliet.sendMessage(romeo, "warm");
    await waitFor(async () => ((await gw.request("GET", "/v1/events?limit=10", { token, headers: { accept: "application/json" } })).body.items as unknown[]).length === 1, 10_000, "warm-up message");

    let reached = 0;
    gw.running.link.on("stanza", (el) => {
      if (el.name === "message" && String(el.attrs.to).startsWith("romeo@")) reached++;
    });
    const lock = await holdLock(gw.db.url, (c) => c.query("SELECT id FROM account WHERE localpart = 'romeo' FOR UPDATE"));
    const pad = "x".repeat(BODY - 12);
    for (let i = 0; i < N; i++) await users.juliet.send(xml("message", { to: romeo, type: "chat", id: `f${i}` }, xml("body", {}, `${String(i).padStart(8, "0")} ${pad}`)));
    // let the server route everything it will route
    let last = -1;
    for (let t = 0; t < 60 && reached !== last; t++) {
      last = reached;
      await sleep(500);
    }
    const readWhileStuck = reached;
    const linkUp = gw.running.link.online;
    await lock.release();

    // correctness: every message stored, once, in order
    const bodies: string[] = [];
    let since = 0;
    await waitFor(
      async () => {
        for (;;) {
          const r = await gw.request("GET", `/v1/events?since=${since}&limit=1000`, { token, headers: { accept: "application/json" } });
          const items = r.body.items as { id: number; event: string; data: { body?: string | Record<string, string> } }[];
          for (const it of items) if (it.event === "message") {
            const b = it.data.body;
            const s = typeof b === "string" ? b : b ? Object.values(b)[0]! : "";
            if (s !== "warm") bodies.push(s.slice(0, 8));
          }
          since = r.body.nextSince;
          if (items.length < 1000) break;
        }
        return bodies.length >= N;
      },
      120_000,
      "all flood messages stored",
    );
    const expected = Array.from({ length: N }, (_, i) => String(i).padStart(8, "0"));
    assert.deepEqual(bodies, expected, "every message once, in order");
    // The bound: what was read off the link while nothing could be stored (one socket read's worth over it).
    assert.ok(readWhileStuck <= INBOUND_HIGH + 100, `${readWhileStuck} of ${N} stanzas read while none could be stored`);
    assert.ok(linkUp, "the link stayed up while it did not read");
  });
});
