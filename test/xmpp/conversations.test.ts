// Conversations (API.md "Message features (1.1)") end to end on Prosody and ejabberd:
// GET /v1/conversations lists one item per peer bare JID, newest activity first, each with its
// last message (the same view as GET /v1/messages/{id}), the unread count (inbound messages after
// the read position) and the read position; POST /v1/messages/{id}/displayed moves the read
// position forward only. Outbound messages are activity but never unread; a chat state alone is
// no message. Pages follow nextCursor; every account sees only its own conversations.
//
// Peers: Juliet and the nurse, real XMPP users, and other hosted accounts, whose messages to the
// account travel through the XMPP server. "It was handled" is proven by the account's log (the
// event of the stanza) or by the stored history, never by sleeping.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type View } from "../helpers/account-driver.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { isFrom } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 30_000;
const JULIET = "juliet@localhost";
const NURSE = "nurse@localhost";
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface Conversation {
  with: string;
  lastMessage: View;
  unread: number;
  lastReadId: string | null;
  updatedAt: string;
}
interface Page {
  items: Conversation[];
  nextCursor: string | null;
}

/** What a list is, for comparing lists in one assertion: [with, unread, lastReadId, lastMessage.id]. */
const summary = (items: Conversation[]) => items.map((c) => [c.with, c.unread, c.lastReadId, c.lastMessage?.id]);

for (const kind of KINDS) {
  describe(`conversations (${kind})`, () => {
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;

    let world: XmppWorld<"juliet" | "nurse"> | undefined;

    before(async () => {
      world = await startWorld(kind, { juliet: "balcony", nurse: "garden" });
      gw = world.gw;
      ({ juliet, nurse } = world.users);
    });
    after(() => world?.stop());

    /** A fresh account per test (session "phone"), so tests do not depend on each other. */
    async function account() {
      const driver = await accountDriver(gw, { waitMs: WAIT });
      const { call, history } = driver;
      /** POST /v1/messages, asserting the 202; resolves with the message's id. */
      const send = async (to: string, body: string): Promise<string> => {
        const r = await call("POST", "/v1/messages", { to, body });
        assert.equal(r.status, 202, `send to ${to}: ${r.text}`);
        return r.body.id as string;
      };
      /** Waits until the history with `peer` holds `count` messages; resolves with it, oldest first. */
      const stored = async (peer: string, count: number): Promise<View[]> => {
        let items: View[] = [];
        await waitFor(async () => (items = await history(peer)).length >= count, WAIT, `${count} messages with ${peer} stored`);
        assert.equal(items.length, count, `exactly ${count} messages with ${peer}`);
        return [...items].reverse();
      };
      /** One page of GET /v1/conversations, asserting the 200. */
      const page = async (query = ""): Promise<Page> => {
        const r = await call("GET", `/v1/conversations${query}`);
        assert.equal(r.status, 200, `GET /v1/conversations${query}: ${r.text}`);
        const body = r.body as Page;
        assert.ok(Array.isArray(body?.items), `items: ${r.text}`);
        assert.ok(body.nextCursor === null || typeof body.nextCursor === "string", `nextCursor: ${r.text}`);
        return body;
      };
      /** The whole list (fewer than the default 50: one page, no next cursor), shape-checked. */
      const conversations = async (): Promise<Conversation[]> => {
        const p = await page();
        assert.equal(p.nextCursor, null, "fewer conversations than the default limit: no next page");
        for (const c of p.items) {
          assert.equal(typeof c.with, "string", JSON.stringify(c));
          assert.ok(Number.isInteger(c.unread) && c.unread >= 0, `unread: ${JSON.stringify(c)}`);
          assert.ok(c.lastReadId === null || typeof c.lastReadId === "string", `lastReadId: ${JSON.stringify(c)}`);
          assert.ok(typeof c.updatedAt === "string" && ISO.test(c.updatedAt), `updatedAt: ${JSON.stringify(c)}`);
          assert.equal(typeof c.lastMessage?.id, "string", `lastMessage: ${JSON.stringify(c)}`);
        }
        assert.equal(new Set(p.items.map((c) => c.with)).size, p.items.length, `one item per peer: ${JSON.stringify(summary(p.items))}`);
        return p.items;
      };
      /** POST /v1/messages/{id}/displayed. */
      const displayed = (id: string) => call("POST", `/v1/messages/${id}/displayed`);
      return { ...driver, send, stored, page, conversations, displayed };
    }
    type Account = Awaited<ReturnType<typeof account>>;

    /** `user` sends a chat message with a fresh id to `to`; resolves with the stanza id. */
    async function say(user: XmppUser, to: string, body: string): Promise<string> {
      const id = uniq("m-");
      await user.send(xml("message", { to, type: "chat", id }, xml("body", {}, body)));
      return id;
    }
    /** `user` sends a message to the account and it is in the log; resolves with its Balcony id. */
    async function inbound(user: XmppUser, r: Account, body: string): Promise<string> {
      const stanzaId = await say(user, r.jid, body);
      const e = await r.until(`the message ${stanzaId} as an event`, (x) => x.event === "message" && x.data.stanzaId === stanzaId);
      return String(e.data.id);
    }
    /** `user` sends a chat state alone (XEP-0085) to the account; resolves once the account's log shows it was handled. */
    async function chatState(user: XmppUser, r: Account, state: string): Promise<void> {
      const id = uniq("cs-");
      await user.send(xml("message", { to: r.jid, type: "chat", id }, xml(state, { xmlns: NS_CHATSTATES })));
      await r.until(`the chat state ${id} as an event`, (x) => x.event === "message" && x.data.stanzaId === id);
    }
    /** The account sends a message to `user` (bare `to`); resolves with its id once it arrived and is stored as sent. */
    async function outbound(r: Account, user: XmppUser, to: string, body: string): Promise<string> {
      const id = await r.send(to, body);
      await user.waitFor((s: XmlElement) => s.is("message") && s.attrs.id === id && isFrom(s, r.jid), WAIT);
      await waitFor(async () => (await r.view(id)).status === "sent", WAIT, `${id} sent`);
      return id;
    }
    /** Account `from` posts to account `to`'s JID (through the XMPP server); resolves with the ids in both accounts. */
    async function accountToAccount(from: Account, to: Account, body: string): Promise<{ sent: string; received: string }> {
      const sent = await from.send(to.jid, body);
      const e = await to.until(`${from.jid}'s message`, (x) => x.event === "message" && typeof x.data.from === "string" && x.data.from.startsWith(`${from.jid}/`) && x.data.body === body);
      await waitFor(async () => (await from.view(sent)).status === "sent", WAIT, `${sent} sent`);
      return { sent, received: String(e.data.id) };
    }
    /** Each item's lastMessage is exactly GET /v1/messages/{id} of it. */
    async function assertLastMessagesAreViews(r: Account, items: Conversation[]): Promise<void> {
      for (const c of items) assert.deepEqual(c.lastMessage, await r.view(c.lastMessage.id), `${c.with}: lastMessage is the message's view`);
    }
    /** Newest activity first: updatedAt does not increase down the list. */
    function assertNewestFirst(items: Conversation[]): void {
      for (let i = 1; i < items.length; i++) {
        assert.ok(Date.parse(items[i - 1]!.updatedAt) >= Date.parse(items[i]!.updatedAt), `updatedAt descends: ${JSON.stringify(items.map((c) => [c.with, c.updatedAt]))}`);
      }
    }

    it("counts unread inbound messages per peer over many messages; the account's own message is activity, not unread; a chat state is no message; a new message moves its peer to the top", async () => {
      const r = await account();
      const julietIds: string[] = [];
      for (let i = 1; i <= 40; i++) julietIds.push(await say(juliet, r.jid, `juliet ${i}`));
      const hers = await r.stored(JULIET, 40);
      assert.deepEqual(
        hers.map((m) => m.body),
        julietIds.map((_, i) => `juliet ${i + 1}`),
        "her 40 messages, in order",
      );
      // A chat state after her 40th: an event, but no message, no unread and no activity.
      await chatState(juliet, r, "composing");
      for (let i = 1; i <= 7; i++) await say(nurse, r.jid, `nurse ${i}`);
      const nurses = await r.stored(NURSE, 7);
      assert.deepEqual(
        nurses.map((m) => m.body),
        [1, 2, 3, 4, 5, 6, 7].map((i) => `nurse ${i}`),
      );
      // Before the account speaks: the nurse spoke last.
      const earlier = await r.conversations();
      assert.deepEqual(summary(earlier), [
        [NURSE, 7, null, nurses[6]!.id],
        [JULIET, 40, null, hers[39]!.id],
      ]);

      // The account's message to the nurse: her conversation stays on top, its last message is
      // the outbound one, and her unread count does not change.
      const out = await outbound(r, nurse, NURSE, "anon, good nurse");
      const list = await r.conversations();
      assert.deepEqual(summary(list), [
        [NURSE, 7, null, out],
        [JULIET, 40, null, hers[39]!.id],
      ]);
      assert.equal(list[0]!.lastMessage.direction, "out");
      assert.equal(list[0]!.lastMessage.body, "anon, good nurse");
      assert.equal(list[1]!.lastMessage.direction, "in");
      assert.equal(list[1]!.lastMessage.body, "juliet 40", "her 40th message, not her chat state");
      await assertLastMessagesAreViews(r, list);
      assertNewestFirst(list);
      assert.ok(Date.parse(list[0]!.updatedAt) >= Date.parse(earlier[0]!.updatedAt), "the outbound message is activity: updatedAt moves on");

      // The account writes to Juliet: she goes to the top, her unread count stays.
      const toJuliet = await outbound(r, juliet, JULIET, "what light through yonder window breaks");
      assert.deepEqual(summary(await r.conversations()), [
        [JULIET, 40, null, toJuliet],
        [NURSE, 7, null, out],
      ]);

      // The nurse writes again: she is back on top with 8 unread.
      const nurse8 = await inbound(nurse, r, "nurse 8");
      assert.deepEqual(summary(await r.conversations()), [
        [NURSE, 8, null, nurse8],
        [JULIET, 40, null, toJuliet],
      ]);
      // A new message from Juliet: she moves to the top with 41 unread.
      const juliet41 = await inbound(juliet, r, "juliet 41");
      const last = await r.conversations();
      assert.deepEqual(summary(last), [
        [JULIET, 41, null, juliet41],
        [NURSE, 8, null, nurse8],
      ]);
      assert.equal(last[0]!.lastMessage.body, "juliet 41");
      await assertLastMessagesAreViews(r, last);
      assertNewestFirst(last);
    });

    it("pages with limit and nextCursor: every conversation exactly once, in the unpaged order; 400 for a bad cursor or a limit outside 1..200", async () => {
      const r = await account();
      const b = await account();
      await inbound(nurse, r, "the nurse first");
      const fromB = await accountToAccount(b, r, "from another account on this gateway");
      const fromJuliet = await inbound(juliet, r, "then Juliet");
      const toNurse = await outbound(r, nurse, NURSE, "and the account to the nurse");
      const all = await r.conversations();
      assert.deepEqual(summary(all), [
        [NURSE, 1, null, toNurse],
        [JULIET, 1, null, fromJuliet],
        [b.jid, 1, null, fromB.received],
      ]);
      assert.equal(all[1]!.lastMessage.body, "then Juliet");
      assert.equal(all[2]!.lastMessage.body, "from another account on this gateway");
      assert.equal(all[2]!.lastMessage.direction, "in");
      await assertLastMessagesAreViews(r, all);
      // The sending account sees its side: one conversation, outbound only, nothing unread.
      const bs = await b.conversations();
      assert.deepEqual(summary(bs), [[r.jid, 0, null, fromB.sent]]);
      assert.equal(bs[0]!.lastMessage.direction, "out");

      /** Walks the pages with `limits` (the last repeated), following nextCursor; resolves with the items in page order. */
      async function walk(limits: number[]): Promise<Conversation[]> {
        const seen: Conversation[] = [];
        let cursor: string | null = null;
        for (let n = 0; ; n++) {
          assert.ok(n <= all.length + 1, `the walk with limits ${JSON.stringify(limits)} ends: ${JSON.stringify(summary(seen))}`);
          const limit = limits[Math.min(n, limits.length - 1)]!;
          const p: Page = await r.page(`?limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`);
          assert.ok(p.items.length <= limit, `page ${n} with limit ${limit}: ${JSON.stringify(summary(p.items))}`);
          if (p.nextCursor !== null) assert.equal(p.items.length, limit, `page ${n}: a page with a next cursor is full`);
          // The last full page says it is the last: no walk ends on an empty page.
          assert.ok(p.items.length > 0, `page ${n} with limit ${limit} is empty`);
          seen.push(...p.items);
          if (p.nextCursor === null) break;
          assert.notEqual(p.nextCursor, cursor, "the cursor moves on");
          cursor = p.nextCursor;
        }
        return seen;
      }
      for (const limits of [[1], [2], [3], [200], [1, 200], [2, 1]]) {
        assert.deepEqual(summary(await walk(limits)), summary(all), `limits ${JSON.stringify(limits)}: every conversation once, in order`);
      }
      // The pages of limit=1 are the items themselves, one by one.
      const first = await r.page("?limit=1");
      assert.deepEqual(first.items, [all[0]]);
      assert.equal(typeof first.nextCursor, "string", "more to come");
      const second = await r.page(`?limit=1&cursor=${encodeURIComponent(first.nextCursor!)}`);
      assert.deepEqual(second.items, [all[1]]);

      for (const query of ["?cursor=abc", "?cursor=abc&limit=1", "?limit=0", "?limit=201", "?limit=-1", "?limit=abc"]) {
        const refused = await r.call("GET", `/v1/conversations${query}`);
        assert.equal(refused.status, 400, `GET /v1/conversations${query}: ${refused.text}`);
      }
      // The boundaries are accepted.
      assert.equal((await r.page("?limit=200")).items.length, 3);
      assert.equal((await r.page("?limit=1")).items.length, 1);
    });

    it("moves the read position forward only on displayed (lastReadId, unread recounted); an outbound message or another account's cannot be displayed; another account sees none of it", async () => {
      const r = await account();
      for (let i = 1; i <= 40; i++) await say(juliet, r.jid, `juliet ${i}`);
      const hers = await r.stored(JULIET, 40);
      assert.deepEqual(
        hers.map((m) => m.body),
        Array.from({ length: 40 }, (_, i) => `juliet ${i + 1}`),
      );
      const out = await outbound(r, juliet, JULIET, "speak again, bright angel");
      const h = (n: number) => hers[n - 1]!.id;
      const julietItem = async () => {
        const items = await r.conversations();
        assert.deepEqual(
          items.map((c) => c.with),
          [JULIET],
          "the one conversation",
        );
        return items[0]!;
      };
      const state = async () => {
        const c = await julietItem();
        return [c.unread, c.lastReadId, c.lastMessage.id];
      };
      assert.deepEqual(await state(), [40, null, out], "nothing read yet");

      const d30 = await r.displayed(h(30));
      assert.equal(d30.status, 204, d30.text);
      assert.deepEqual(await state(), [10, h(30), out], "read up to her 30th: 10 of 40 unread");

      const d10 = await r.displayed(h(10));
      assert.equal(d10.status, 204, d10.text);
      assert.deepEqual(await state(), [10, h(30), out], "an older message does not move the position back");

      // The account's own message cannot be displayed: 404, and nothing changes.
      const snapshot = await r.conversations();
      const onOut = await r.displayed(out);
      assert.equal(onOut.status, 404, onOut.text);
      const unknown = await r.displayed(randomUUID());
      assert.equal(unknown.status, 404, unknown.text);
      // Nor can another account display this account's message.
      const other = await account();
      const foreign = await other.displayed(h(40));
      assert.equal(foreign.status, 404, foreign.text);
      assert.deepEqual(await r.conversations(), snapshot, "nothing changed");
      assert.deepEqual(await state(), [10, h(30), out]);

      const d40 = await r.displayed(h(40));
      assert.equal(d40.status, 204, d40.text);
      assert.deepEqual(await state(), [0, h(40), out], "read up to her last message");
      const again = await r.displayed(h(40));
      assert.equal(again.status, 204, again.text);
      assert.deepEqual(await state(), [0, h(40), out], "displayed twice: the same");

      const next = await inbound(juliet, r, "juliet 41");
      assert.deepEqual(await state(), [1, h(40), next], "a new message after the read position");
      const now = await julietItem();
      assert.equal(now.lastMessage.body, "juliet 41");
      await assertLastMessagesAreViews(r, [now]);

      // The other account sees none of this account's conversations, and Juliet's message to it
      // shows in its list only.
      assert.deepEqual(await other.page(), { items: [], nextCursor: null }, "the other account's list is empty");
      const toOther = await inbound(juliet, other, "to the other account");
      const theirs = await other.conversations();
      assert.deepEqual(summary(theirs), [[JULIET, 1, null, toOther]]);
      assert.equal(theirs[0]!.lastMessage.body, "to the other account");
      await assertLastMessagesAreViews(other, theirs);
      assert.deepEqual(await state(), [1, h(40), next], "this account's conversation with Juliet is untouched");
      // Its displayed moves its own read position, not this account's.
      const d = await other.displayed(toOther);
      assert.equal(d.status, 204, d.text);
      assert.deepEqual(summary(await other.conversations()), [[JULIET, 0, toOther, toOther]]);
      assert.deepEqual(await state(), [1, h(40), next]);
    });

    it("lists nothing for a new account, however others' conversations go and after a chat state alone; one item once a message arrives", async () => {
      // Another account has a conversation, with a message read and one not.
      const busy = await account();
      const read = await inbound(juliet, busy, "for the busy account");
      assert.equal((await busy.displayed(read)).status, 204);
      const unread = await inbound(nurse, busy, "for the busy account too");
      assert.deepEqual(summary(await busy.conversations()), [
        [NURSE, 1, null, unread],
        [JULIET, 0, read, read],
      ]);

      const r = await account();
      assert.deepEqual(await r.page(), { items: [], nextCursor: null }, "a new account has no conversations");
      assert.deepEqual(await r.page("?limit=1"), { items: [], nextCursor: null }, "nor a page of one");
      // A chat state alone is no message: still nothing.
      await chatState(nurse, r, "active");
      assert.deepEqual(await r.page(), { items: [], nextCursor: null }, "a chat state starts no conversation");

      // The control: one message, one conversation.
      const first = await inbound(juliet, r, "hello, stranger");
      const items = await r.conversations();
      assert.deepEqual(summary(items), [[JULIET, 1, null, first]]);
      assert.equal(items[0]!.lastMessage.body, "hello, stranger");
      await assertLastMessagesAreViews(r, items);
      // The busy account's list is as it was.
      assert.deepEqual(summary(await busy.conversations()), [
        [NURSE, 1, null, unread],
        [JULIET, 0, read, read],
      ]);
    });
  });
}
