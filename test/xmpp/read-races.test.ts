// The read position and the unread count under concurrency (found by the conversations audit of stop 64).
// markRead computed the read position (GREATEST(last_read_seq, m.seq)) and the unread recount on
// its statement's snapshot, then wrote them when it got the conversation row's lock:
//  1. two displayed of one account (two sessions, phone and desktop, or two instances) at once:
//     the older one, committing last, moved the read position back;
//  2. a displayed while a contact's message was being stored: the recount did not see the new
//     message and overwrote the insert's + 1: unread 0 with an unread message after lastReadId.
// The held row lock only stands in for a concurrent transaction that is a little slower.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { xml, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver } from "../helpers/account-driver.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { holdLock } from "../helpers/held-lock.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";

interface Conversation {
  with: string;
  lastMessage: { id: string };
  unread: number;
  lastReadId: string | null;
}

for (const kind of KINDS) {
  describe(`read position races (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let gw: TestGateway;
    let juliet: XmppUser;
    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" });
      gw = world.gw;
      ({ juliet } = world.users);
    });
    after(() => world?.stop());

    async function accountId(r: AccountDriver): Promise<number> {
      const c = new pg.Client({ connectionString: gw.db.url });
      await c.connect();
      try {
        return (await c.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [r.lp])).rows[0]!.id;
      } finally {
        await c.end();
      }
    }
    const say = async (r: AccountDriver, body: string) => {
      const id = uniq("m-");
      await juliet.send(xml("message", { to: r.jid, type: "chat", id }, xml("body", {}, body)));
      return id;
    };
    const stored = async (r: AccountDriver, n: number) => {
      let items: { id: string; body: unknown }[] = [];
      await waitFor(async () => (items = await r.history(JULIET)).length >= n, WAIT, `${n} stored`);
      return [...items].reverse();
    };
    const item = async (r: AccountDriver) => {
      const p = await r.call("GET", "/v1/conversations");
      assert.equal(p.status, 200, p.text);
      const c = (p.body.items as Conversation[]).find((x) => x.with === JULIET)!;
      return { unread: c.unread, lastReadId: c.lastReadId, last: c.lastMessage.id };
    };
    const lockConversation = async (id: number) =>
      holdLock(gw.db.url, (c) => c.query("SELECT 1 FROM conversation WHERE account_id = $1 AND peer = $2 FOR UPDATE", [id, JULIET]));

    it("two displayed at once (two sessions of the account): the read position never moves back", async () => {
      const r = await accountDriver(gw, { waitMs: WAIT });
      const desk = gw.token(r.lp, { resource: "desk" });
      for (let i = 1; i <= 3; i++) await say(r, `juliet ${i}`);
      const [h1, , h3] = await stored(r, 3);
      const held = await lockConversation(await accountId(r));
      // The phone reads up to her 3rd, the desktop (a moment later) up to her 1st.
      const phone = r.call("POST", `/v1/messages/${h3!.id}/displayed`);
      await held.until(1, "the phone's displayed waits for the conversation row");
      const desktop = gw.request("POST", `/v1/messages/${h1!.id}/displayed`, { token: desk });
      await held.until(2, "the desktop's displayed waits too");
      await held.release();
      assert.equal((await phone).status, 204);
      assert.equal((await desktop).status, 204);
      assert.deepEqual(await item(r), { unread: 0, lastReadId: h3!.id, last: h3!.id }, "read up to her 3rd: an older displayed does not move the position back");
    });

    it("a displayed while her next message is stored: that message stays unread", async () => {
      const r = await accountDriver(gw, { waitMs: WAIT });
      await say(r, "first");
      const [h1] = await stored(r, 1);
      const held = await lockConversation(await accountId(r));
      await say(r, "second");
      await held.until(1, "her second message's insert waits for the conversation row");
      const d = r.call("POST", `/v1/messages/${h1!.id}/displayed`);
      await held.until(2, "the displayed waits too");
      await held.release();
      assert.equal((await d).status, 204);
      const [, h2] = await stored(r, 2);
      assert.deepEqual(await item(r), { unread: 1, lastReadId: h1!.id, last: h2!.id }, "read up to her first: her second is unread");
    });
  });
}
