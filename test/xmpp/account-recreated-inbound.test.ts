// Stanzas from the XMPP network to an account that another instance deleted (or deleted and
// created again under a new id) before the instance holding the component link read the NOTIFY
// that drops its cached entry: the holder routes with the old id, and what it writes under that
// id fails. Two gateways on one database, the holder (A) deaf to NOTIFYs while B deletes and
// creates (test/helpers/deaf-pair.ts), and a real user on a real XMPP server. A message, a chat
// state and a subscription request to the account created again are the new account's (its log
// and its subscription requests on B), and nobody is bounced; to an account only deleted, a
// message is bounced as to one that never existed (service-unavailable, RFC 6121 §8.5.1) and a
// subscription request vanishes. An iq to the bare JID is answered for the account as it is now
// (service-unavailable for one deleted, or one created again that blocks the asker). A receipt and
// an error bounce for the new account's messages, sent through B, mark them; a receipt for the
// old account's message is dropped. "Nothing came back" is proven by a gateway sentinel
// (test/helpers/sentinel.ts) behind them on the same ordered path.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml, type XmlElement } from "../../scripts/harness/xmpp-user.js";
import { deafLinkWorld } from "../helpers/deaf-pair.js";
import { uniq } from "../helpers/gateway.js";
import { gatewaySentinel } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CHAT_STATES = "http://jabber.org/protocol/chatstates";

/** An error stanza's type and defined condition (RFC 6120 §8.3), e.g. "cancel service-unavailable". */
const errorOf = (s: XmlElement) => {
  const e = s.getChild("error");
  const condition = e?.children.find((c): c is XmlElement => typeof c !== "string" && c.attrs.xmlns === STANZAS)?.name;
  return `${e?.attrs.type} ${condition}`;
};

for (const kind of KINDS) {
  describe(`inbound stanzas to an account deleted (and created again) on B, at the link holder A that has not heard yet (${kind})`, () => {
    const w = deafLinkWorld(kind, { juliet: "balcony" });

    const accountId = async (localpart: string): Promise<number | null> => (await w.p.sql.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [localpart])).rows[0]?.id ?? null;

    type Named = (name: string) => string;
    /**
     * Accounts created on A, which caches them as it creates them (`prep` then runs, with A still
     * hearing); then, while A is deaf, deleted on B (and with `again` created anew) and `fn` run.
     */
    async function staleOnA(names: string[], again: boolean, fn: (jid: Named, localpart: Named) => Promise<void>, prep?: (jid: Named, localpart: Named) => Promise<void>): Promise<void> {
      const localparts = new Map(names.map((n) => [n, uniq(n)]));
      const old = new Map<string, number>();
      for (const [name, lp] of localparts) {
        await w.p.a.createAccount(lp);
        old.set(name, (await accountId(lp))!);
      }
      await prep?.((n) => `${localparts.get(n)!}@${w.p.a.domain}`, (n) => localparts.get(n)!);
      await w.p.deaf(async () => {
        for (const [name, lp] of localparts) {
          assert.equal((await w.p.b.request("DELETE", `/v1/accounts/${lp}`)).status, 204, `${name}: deleted on B`);
          if (again) await w.p.b.createAccount(lp);
        }
        await fn((n) => `${localparts.get(n)!}@${w.p.a.domain}`, (n) => localparts.get(n)!);
      });
      for (const [name, lp] of localparts) {
        const now = await accountId(lp);
        assert.ok(again ? now !== null && now !== old.get(name) : now === null, `${name}: ${again ? "created again under a new id" : "still deleted"} (${old.get(name)} before, ${now} now)`);
      }
    }

    it("created again: a message, a chat state and a subscription request are the new account's, and none is bounced", async () => {
      await staleOnA(["msg", "state", "sub"], true, async (jid, localpart) => {
        const mark = w.juliet.stanzas.length;
        await w.juliet.send(xml("message", { to: jid("msg"), type: "chat", id: "r1" }, xml("body", {}, "to the new account")));
        await w.juliet.send(xml("message", { to: jid("state"), type: "chat", id: "r2" }, xml("composing", { xmlns: CHAT_STATES })));
        await w.juliet.send(xml("presence", { to: jid("sub"), type: "subscribe" }));
        const end = await gatewaySentinel(w.juliet, w.p.a.domain);
        const errors = w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error");
        assert.deepEqual(errors.map((s) => s.toString()), [], "nothing bounced before the sentinel's answer");

        const events = async (name: string) => {
          const r = await w.p.b.request("GET", "/v1/events", { token: w.p.b.token(localpart(name)) });
          assert.equal(r.status, 200, r.text);
          return (r.body.items as { event: string; data: { body?: unknown; state?: unknown; jid?: string } }[]).map((e) => `${e.event}: ${String(e.data.body ?? e.data.state ?? e.data.jid)}`);
        };
        assert.deepEqual(await events("msg"), ["message: to the new account"], "in the new account's log");
        assert.deepEqual(await events("state"), ["message: composing"]);
        assert.deepEqual(await events("sub"), ["subscription: juliet@localhost"]);
        const requests = await w.p.b.request("GET", "/v1/subscription-requests", { token: w.p.b.token(localpart("sub")) });
        assert.deepEqual(requests.body.items.map((i: { jid: string }) => i.jid), ["juliet@localhost"], requests.text);
        const stored = await w.p.sql.query("SELECT account_id FROM message WHERE stanza_id = 'r1'");
        assert.deepEqual(stored.rows, [{ account_id: await accountId(localpart("msg")) }], "stored once, for the new account");
      });
    });

    it("created again: an iq ping (XEP-0199) and a headline message to the new account's available session's full JID are that session's, not refused (RFC 6121 §8.5.3.1)", async () => {
      await staleOnA(["ping", "headline"], true, async (jid, localpart) => {
        for (const name of ["ping", "headline"]) {
          const put = await w.p.b.request("PUT", "/v1/presence", { token: w.p.b.token(localpart(name), { resource: "phone" }), body: { type: "available" } });
          assert.ok(put.status < 300, `${name}: ${put.status} ${put.text}`);
        }
        const id = uniq("ping-");
        await w.juliet.send(xml("iq", { to: `${jid("ping")}/phone`, type: "get", id }, xml("ping", { xmlns: "urn:xmpp:ping" })));
        const pong = await w.juliet.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), 5000);
        assert.equal(pong.attrs.type, "result", `the session answers: ${pong.toString()}`);

        const mark = w.juliet.stanzas.length;
        await w.juliet.send(xml("message", { to: `${jid("headline")}/phone`, type: "headline", id: "h1" }, xml("body", {}, "to the phone")));
        const end = await gatewaySentinel(w.juliet, w.p.a.domain);
        const errors = w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error");
        assert.deepEqual(errors.map((s) => s.toString()), [], "nothing bounced before the sentinel's answer");
        const r = await w.p.b.request("GET", "/v1/events", { token: w.p.b.token(localpart("headline"), { resource: "phone" }) });
        assert.equal(r.status, 200, r.text);
        const bodies = (r.body.items as { event: string; data: { body?: unknown } }[]).filter((e) => e.event === "message").map((e) => e.data.body);
        assert.deepEqual(bodies, ["to the phone"], "in the new account's log");
      });
    });

    it("deleted only: a message is bounced as to an account that never existed, a subscription request vanishes", async () => {
      await staleOnA(["msg", "sub"], false, async (jid) => {
        const mark = w.juliet.stanzas.length;
        await w.juliet.send(xml("message", { to: jid("msg"), type: "chat", id: "d1" }, xml("body", {}, "anyone?")));
        await w.juliet.send(xml("presence", { to: jid("sub"), type: "subscribe" }));
        const end = await gatewaySentinel(w.juliet, w.p.a.domain);
        const sentinel = w.juliet.stanzas[end]!;
        const answers = w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error");
        assert.deepEqual(
          answers.map((s) => `${s.name} ${s.attrs.id} from ${s.attrs.from}: ${errorOf(s)}`),
          [`message d1 from ${jid("msg")}: ${errorOf(sentinel)}`],
          "the message's bounce, as the sentinel's to no account; nothing for the subscription request",
        );
        assert.equal(errorOf(sentinel), "cancel service-unavailable");
        assert.deepEqual((await w.p.sql.query("SELECT 1 FROM message WHERE stanza_id = 'd1'")).rows, [], "nothing stored");
      });
    });

    /** Juliet's iq get to `to`, and its answer: "result", or the error's type and condition. */
    const ask = async (to: string, child: XmlElement): Promise<string> => {
      const id = uniq("iq-");
      await w.juliet.send(xml("iq", { to, type: "get", id }, child));
      const answer = await w.juliet.waitFor((s) => s.is("iq") && s.attrs.id === id && (s.attrs.type === "result" || s.attrs.type === "error"), 5000);
      return answer.attrs.type === "result" ? "result" : errorOf(answer);
    };
    /** Each query's name (a localpart prefix too) and element. */
    const QUERIES: [string, () => XmlElement][] = [
      ["info", () => xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })],
      ["items", () => xml("query", { xmlns: "http://jabber.org/protocol/disco#items" })],
      ["ping", () => xml("ping", { xmlns: "urn:xmpp:ping" })],
    ];

    it("deleted only: disco#info, disco#items and a ping to its bare JID are answered as for an account that never existed (service-unavailable, RFC 6121 §8.5.1)", async () => {
      const ghost = `${uniq("ghost-")}@${w.p.a.domain}`;
      const never: string[] = [];
      for (const [q, child] of QUERIES) never.push(`${q}: ${await ask(ghost, child())}`);
      assert.deepEqual(never, QUERIES.map(([q]) => `${q}: cancel service-unavailable`), "an account that never existed");
      // An account of its own for each query: the first answer about an account may refresh A's entry.
      await staleOnA(QUERIES.map(([q]) => q), false, async (jid) => {
        const got: string[] = [];
        for (const [q, child] of QUERIES) got.push(`${q}: ${await ask(jid(q), child())}`);
        assert.deepEqual(got, never, "the deleted account's bare JID, asked at A");
      });
    });

    it("created again: an iq to its bare JID is answered for the new account: refused when the new account blocked the asker (XEP-0191 §3.3)", async () => {
      await staleOnA(["blocks", "open"], true, async (jid, localpart) => {
        const put = await w.p.b.request("PUT", "/v1/blocklist/juliet@localhost", { token: w.p.b.token(localpart("blocks")) });
        assert.equal(put.status, 204, put.text);
        // A ping: disco#info answers only who may see the account's presence (XEP-0030 §8), which Juliet may not.
        const [, ping] = QUERIES[2]!;
        assert.equal(await ask(jid("blocks"), ping()), "cancel service-unavailable", "the new account blocks Juliet");
        assert.equal(await ask(jid("open"), ping()), "result", "the new account is there");
      });
    });

    it("created again: a receipt (XEP-0184) and an error bounce for the new account's messages (sent from B) mark them; a receipt for the old account's message is dropped (its message went with it)", async () => {
      const RECEIPTS = "urn:xmpp:receipts";
      /** An outbound message of the account's as Juliet's client got it, the next one with that id. */
      const arrived = (id: string, timeoutMs = 5000) => w.juliet.waitFor((s) => s.is("message") && s.attrs.id === id && s.attrs.type !== "error", timeoutMs);
      const send = async (gw: typeof w.p.a, localpart: string, body: string): Promise<string> => {
        const r = await gw.request("POST", "/v1/messages", { token: gw.token(localpart), body: { to: "juliet@localhost", body } });
        assert.equal(r.status, 202, r.text);
        return r.body.id as string;
      };
      let oldId = "";
      await staleOnA(
        ["receipt", "bounce"],
        true,
        async (jid, localpart) => {
          const ours = { receipt: await send(w.p.b, localpart("receipt"), "to be received"), bounce: await send(w.p.b, localpart("bounce"), "to be bounced") };
          // A drains B's queue: B's NOTIFY waits at the relay, so A's sweep (every 5 s) finds them.
          const got = { receipt: await arrived(ours.receipt, 15_000), bounce: await arrived(ours.bounce, 15_000) };
          const mark = w.juliet.stanzas.length;
          await w.juliet.send(xml("message", { to: got.receipt.attrs.from!, id: uniq("r-") }, xml("received", { xmlns: RECEIPTS, id: oldId })));
          await w.juliet.send(xml("message", { to: got.receipt.attrs.from!, id: uniq("r-") }, xml("received", { xmlns: RECEIPTS, id: ours.receipt })));
          await w.juliet.send(xml("message", { to: got.bounce.attrs.from!, id: ours.bounce, type: "error" }, xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: STANZAS }))));
          const end = await gatewaySentinel(w.juliet, w.p.a.domain);
          assert.deepEqual(w.juliet.stanzas.slice(mark, end).filter((s) => s.attrs.type === "error").map((s) => s.toString()), [], "nothing bounced before the sentinel's answer");

          const view = async (name: "receipt" | "bounce") => {
            const r = await w.p.b.request("GET", `/v1/messages/${ours[name]}`, { token: w.p.b.token(localpart(name)) });
            assert.equal(r.status, 200, r.text);
            return r.body.status as string;
          };
          assert.equal(await view("receipt"), "delivered", "the new account's message, received");
          assert.equal(await view("bounce"), "failed", "the new account's message, bounced");
          const events = async (name: string) => {
            const r = await w.p.b.request("GET", "/v1/events", { token: w.p.b.token(localpart(name)) });
            assert.equal(r.status, 200, r.text);
            return (r.body.items as { event: string; data: { id?: string; status?: string } }[]).filter((e) => e.event !== "message").map((e) => `${e.event}: ${e.data.id} ${e.data.status}`);
          };
          assert.deepEqual(await events("receipt"), [`receipt: ${ours.receipt} delivered`], "the new message's receipt, and nothing of the old message's");
          assert.deepEqual(await events("bounce"), [`message-status: ${ours.bounce} failed`]);
          assert.deepEqual((await w.p.sql.query("SELECT 1 FROM message WHERE id = $1", [oldId])).rows, [], "the old account's message went with it");
        },
        async (_jid, localpart) => {
          oldId = await send(w.p.a, localpart("receipt"), "from the old account");
          await arrived(oldId);
        },
      );
    });
  });
}
