// Two instances on one database, B caching an account that A deletes (and creates again) before B
// has read the NOTIFY that drops its cache entry (the multi-instance audit: 404 account-not-found
// on B once in 30 tries). Made deterministic: B's listening connection runs through a relay that
// holds what PostgreSQL sends it, so A's NOTIFY waits there while B is asked. B must answer as for
// the account as it is now: the one created again (never the old one's data, never 404), 404 for
// one deleted, and with AUTO_PROVISION one created anew; and with DELETION_REVOKES_TOKENS the old account's tokens (issued
// before the deletion) are refused with 401 for the account created again, or provisioned.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startDeafPair, type DeafPair } from "../helpers/deaf-pair.js";
import { uniq } from "../helpers/gateway.js";

type Pair = DeafPair;
/** A holds the link and is told first; B (deaf on demand) is the instance that has not heard yet. */
const startPair = (server: XmppServer, env: Record<string, string>): Promise<Pair> => startDeafPair(server, env, "b");

describe("an account deleted (and created again) on one instance, asked for on another that has not heard yet", () => {
  let server: XmppServer;
  before(async () => {
    server = await startXmppServer();
  });
  after(async () => {
    await server?.stop();
  });

  const accountId = async (p: Pair, localpart: string): Promise<number | null> => (await p.sql.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [localpart])).rows[0]?.id ?? null;
  const count = async (p: Pair, query: string, values: unknown[]): Promise<number> => (await p.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${query}`, values)).rows[0]!.n;

  /**
   * Accounts created on A, each cached on B (with a roster item of the old account's), and a token
   * of the old account's: its iat (whole seconds) from the second before, so that the deletion is
   * certainly later (a token from the deletion's own second is taken as the new account's).
   */
  async function cachedOnB(p: Pair, names: string[]): Promise<Map<string, { localpart: string; token: string; oldId: number }>> {
    const out = new Map<string, { localpart: string; token: string; oldId: number }>();
    for (const name of names) {
      const localpart = uniq(name);
      await p.a.createAccount(localpart);
      const token = p.a.token(localpart, { iat: Math.floor(Date.now() / 1000) - 1 });
      const put = await p.b.request("PUT", "/v1/roster/old-contact@example.net", { token, body: {} });
      assert.equal(put.status, 201, `${name}: B before: ${put.text}`);
      out.set(name, { localpart, token, oldId: (await accountId(p, localpart))! });
    }
    return out;
  }

  describe("AUTO_PROVISION off", () => {
    let p: Pair;
    before(async () => {
      p = await startPair(server, { XMPP_LINK_MODE: "single" });
    });
    after(async () => {
      await p?.stop();
    });

    it("created again on A: every request on B is the new account's", async () => {
      const accounts = await cachedOnB(p, ["roster", "events", "send", "presence", "item", "stream", "get", "end", "admin"]);
      await p.deaf(async () => {
        for (const [name, acc] of accounts) {
          assert.equal((await p.a.request("DELETE", `/v1/accounts/${acc.localpart}`)).status, 204, `${name}: delete on A`);
          await p.a.createAccount(acc.localpart);
          const put = await p.a.request("PUT", "/v1/roster/new-contact@example.net", { token: acc.token, body: {} });
          assert.equal(put.status, 201, `${name}: the new account's roster item, on A: ${put.text}`);
        }
        // The new account's message and session, made on A.
        const written = await p.a.request("POST", "/v1/messages", { token: accounts.get("get")!.token, body: { to: "juliet@example.net", body: "from A" } });
        assert.equal(written.status, 202, written.text);
        assert.equal((await p.a.request("PUT", "/v1/presence?resource=phone", { token: accounts.get("end")!.token, body: {} })).status, 200);
        const newId = async (name: string) => (await accountId(p, accounts.get(name)!.localpart))!;
        const on = (name: string) => accounts.get(name)!.token;

        const roster = await p.b.request("GET", "/v1/roster", { token: on("roster") });
        assert.equal(roster.status, 200, `GET /v1/roster: ${roster.text}`);
        assert.deepEqual(roster.body.items.map((i: { jid: string }) => i.jid), ["new-contact@example.net"], "the new account's roster, not the old one's, nor an empty one");

        const events = await p.b.request("GET", "/v1/events", { token: on("events") });
        assert.equal(events.status, 200, `GET /v1/events: ${events.text}`);
        assert.match(events.text, /new-contact@example\.net/, "the new account's log");
        assert.doesNotMatch(events.text, /old-contact/, "nothing of the old account's log");

        const sent = await p.b.request("POST", "/v1/messages", { token: on("send"), body: { to: "juliet@example.net", body: "hi" } });
        assert.equal(sent.status, 202, `POST /v1/messages: ${sent.text}`);
        assert.equal((await p.sql.query("SELECT account_id FROM message WHERE id = $1", [sent.body.id])).rows[0]?.account_id, await newId("send"), "written for the new account");

        const presence = await p.b.request("PUT", "/v1/presence?resource=phone", { token: on("presence"), body: {} });
        assert.equal(presence.status, 200, `PUT /v1/presence: ${presence.text}`);
        assert.equal(await count(p, "session WHERE account_id = $1 AND resource = 'phone' AND available", [await newId("presence")]), 1, "the new account's session");

        const item = await p.b.request("PUT", "/v1/roster/b-contact@example.net", { token: on("item"), body: { name: "B" } });
        assert.equal(item.status, 201, `PUT /v1/roster/{jid}: ${item.text}`);
        assert.equal(await count(p, "roster_item WHERE account_id = $1 AND jid = 'b-contact@example.net'", [await newId("item")]), 1, "the new account's item");

        // Refusals under the stale id (no such message, no such session): asked again as the new account.
        const got = await p.b.request("GET", `/v1/messages/${written.body.id}`, { token: on("get") });
        assert.equal(got.status, 200, `GET /v1/messages/{id}: ${got.text}`);
        const ended = await p.b.request("DELETE", "/v1/sessions/phone", { token: on("end") });
        assert.equal(ended.status, 204, `DELETE /v1/sessions/{resource}: ${ended.text}`);

        // An admin's delete on B: of the account as it is now, not 404 for the id B cached.
        const removed = await p.b.request("DELETE", `/v1/accounts/${accounts.get("admin")!.localpart}`);
        assert.equal(removed.status, 204, `DELETE /v1/accounts/{localpart}: ${removed.text}`);
        assert.equal(await accountId(p, accounts.get("admin")!.localpart), null, "the new account deleted");
        accounts.delete("admin");

        const stream = await p.b.sse("/v1/events?resource=tab", on("stream"));
        try {
          assert.equal(stream.status, 200, "the stream opens");
          assert.equal(await count(p, "session WHERE account_id = $1 AND resource = 'tab' AND streams > 0", [await newId("stream")]), 1, "on the new account's session");
        } finally {
          await stream.close();
        }
      });
      for (const [name, acc] of accounts) assert.notEqual(await accountId(p, acc.localpart), acc.oldId, `${name}: created again under a new id`);
    });

    it("deleted on A: B answers 404 at once, reads included", async () => {
      // Each request with an account of its own: the first answer about an account may refresh B's entry.
      const requests: [string, string, unknown?][] = [
        ["GET", "/v1/roster"],
        ["GET", "/v1/events"],
        ["POST", "/v1/messages", { to: "juliet@example.net", body: "hi" }],
        ["PUT", "/v1/presence", {}],
        // Reads that would find nothing under the stale id rather than fail.
        ["GET", "/v1/sessions"],
        ["GET", "/v1/blocklist"],
        ["GET", "/v1/conversations"],
        ["GET", "/v1/subscription-requests"],
        ["GET", "/v1/presence"],
        ["GET", "/v1/messages?with=juliet@example.net"],
        ["GET", "/v1/rooms"],
        ["GET", "/v1/webhooks"],
        ["POST", "/v1/messages/batch", { messages: [{ to: "juliet@example.net", body: "hi" }] }],
      ];
      const accounts = await cachedOnB(p, requests.map((_, i) => `d${i}-`));
      await p.deaf(async () => {
        for (const acc of accounts.values()) assert.equal((await p.a.request("DELETE", `/v1/accounts/${acc.localpart}`)).status, 204);
        const wrong: string[] = [];
        for (const [i, [method, path, body]] of requests.entries()) {
          const r = await p.b.request(method, path, { token: accounts.get(`d${i}-`)!.token, ...(body === undefined ? {} : { body }) });
          if (r.status !== 404 || r.body?.code !== "account-not-found") wrong.push(`${method} ${path}: ${r.status} ${r.text.slice(0, 200)}`);
        }
        assert.deepEqual(wrong, [], "every request for the deleted account is 404 account-not-found");
      });
      for (const acc of accounts.values()) assert.equal(await accountId(p, acc.localpart), null, "nothing created");
    });
  });

  describe("AUTO_PROVISION on", () => {
    let p: Pair;
    before(async () => {
      p = await startPair(server, { XMPP_LINK_MODE: "single", AUTO_PROVISION: "true" });
    });
    after(async () => {
      await p?.stop();
    });

    it("deleted on A: a request on B provisions the account anew, as for an unknown one", async () => {
      const accounts = await cachedOnB(p, ["roster", "send", "presence"]);
      await p.deaf(async () => {
        for (const acc of accounts.values()) assert.equal((await p.a.request("DELETE", `/v1/accounts/${acc.localpart}`)).status, 204);
        // The old account's token: by default an account is its localpart (API.md), whichever was deleted.
        const on = (name: string) => accounts.get(name)!.token;
        const roster = await p.b.request("GET", "/v1/roster", { token: on("roster") });
        assert.equal(roster.status, 200, `GET /v1/roster: ${roster.text}`);
        assert.deepEqual(roster.body.items, [], "a new account's empty roster");
        const sent = await p.b.request("POST", "/v1/messages", { token: on("send"), body: { to: "juliet@example.net", body: "hi" } });
        assert.equal(sent.status, 202, `POST /v1/messages: ${sent.text}`);
        assert.equal((await p.sql.query("SELECT account_id FROM message WHERE id = $1", [sent.body.id])).rows[0]?.account_id, await accountId(p, accounts.get("send")!.localpart));
        const presence = await p.b.request("PUT", "/v1/presence", { token: on("presence"), body: {} });
        assert.equal(presence.status, 200, `PUT /v1/presence: ${presence.text}`);
      });
      for (const [name, acc] of accounts) {
        const now = await accountId(p, acc.localpart);
        assert.ok(now !== null && now !== acc.oldId, `${name}: provisioned anew (${acc.oldId} before, ${now} now)`);
      }
    });
  });

  describe("DELETION_REVOKES_TOKENS on (AUTO_PROVISION on)", () => {
    let p: Pair;
    before(async () => {
      p = await startPair(server, { XMPP_LINK_MODE: "single", AUTO_PROVISION: "true", DELETION_REVOKES_TOKENS: "true" });
    });
    after(async () => {
      await p?.stop();
    });

    it("created again on A: B refuses the old account's token for every request, and the new account's data stays its own", async () => {
      const requests: [string, string, unknown?][] = [
        ["GET", "/v1/roster"],
        ["PUT", "/v1/roster/intruder@example.net", { name: "old" }],
        ["GET", "/v1/events"],
        ["POST", "/v1/messages", { to: "juliet@example.net", body: "from the old account" }],
        ["PUT", "/v1/presence?resource=old", {}],
        ["POST", "/v1/events/tickets", {}],
        ["GET", "/v1/sessions"],
        ["GET", "/v1/blocklist"],
        ["GET", "/v1/webhooks"],
      ];
      // Each request with an account of its own: the first answer about an account may refresh B's entry.
      const accounts = await cachedOnB(p, requests.map((_, i) => `r${i}-`));
      await p.deaf(async () => {
        for (const acc of accounts.values()) {
          assert.equal((await p.a.request("DELETE", `/v1/accounts/${acc.localpart}`)).status, 204);
          await p.a.createAccount(acc.localpart);
          assert.equal((await p.a.request("PUT", "/v1/roster/new-contact@example.net", { token: p.a.token(acc.localpart), body: {} })).status, 201);
        }
        const wrong: string[] = [];
        for (const [i, [method, path, body]] of requests.entries()) {
          const r = await p.b.request(method, path, { token: accounts.get(`r${i}-`)!.token, ...(body === undefined ? {} : { body }) });
          if (r.status !== 401 || r.body?.code !== "unauthorized") wrong.push(`${method} ${path}: ${r.status} ${r.text.slice(0, 200)}`);
        }
        assert.deepEqual(wrong, [], "every request with the old account's token is 401 unauthorized");
      });
      for (const [name, acc] of accounts) {
        const id = await accountId(p, acc.localpart);
        assert.ok(id !== null && id !== acc.oldId, `${name}: created again under a new id`);
        assert.deepEqual((await p.sql.query("SELECT jid FROM roster_item WHERE account_id = $1", [id])).rows, [{ jid: "new-contact@example.net" }], `${name}: the new account's roster`);
        assert.equal(await count(p, "message WHERE account_id = $1", [id]), 0, `${name}: no message`);
        assert.equal(await count(p, "session WHERE account_id = $1", [id]), 0, `${name}: no session`);
        assert.equal(await count(p, "stream_ticket WHERE account_id = $1", [id]), 0, `${name}: no ticket`);
      }
    });

    it("deleted on A: the old account's token provisions nothing on B, it is refused", async () => {
      const accounts = await cachedOnB(p, ["roster", "send", "presence"]);
      const requests: Record<string, [string, string, unknown?]> = {
        roster: ["GET", "/v1/roster"],
        send: ["POST", "/v1/messages", { to: "juliet@example.net", body: "hi" }],
        presence: ["PUT", "/v1/presence", {}],
      };
      await p.deaf(async () => {
        for (const acc of accounts.values()) assert.equal((await p.a.request("DELETE", `/v1/accounts/${acc.localpart}`)).status, 204);
        for (const [name, acc] of accounts) {
          const [method, path, body] = requests[name]!;
          const r = await p.b.request(method, path, { token: acc.token, ...(body === undefined ? {} : { body }) });
          assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
          assert.equal(r.body.code, "unauthorized");
        }
      });
      for (const [name, acc] of accounts) assert.equal(await accountId(p, acc.localpart), null, `${name}: not provisioned`);
    });
  });
});
