// A token names its account by localpart only (`sub`), and stays valid until it expires: after
// DELETE /v1/accounts/{localpart} the old account's tokens must not become the tokens of an
// account created later under the same localpart (by an admin, or by AUTO_PROVISION from the old
// token itself), on this instance or on another one that had the account cached. API.md: "An
// account can never read or change another account's data." With DELETION_REVOKES_TOKENS (off by
// default: API.md names an account by its localpart) such a token is refused with 401; one issued
// after the deletion works.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, uniq, waitFor, type HttpResult, type TestGateway } from "../helpers/gateway.js";

/** A token of the account as it is before its deletion: its iat (whole seconds) from the second before now, so the deletion made after it is certainly later. */
const oldToken = (gw: TestGateway, localpart: string) => gw.token(localpart, { iat: Math.floor(Date.now() / 1000) - 1 });

describe("tokens of a deleted account", () => {
  let server: XmppServer;
  let db: TestDatabase;
  let a: TestGateway;
  let b: TestGateway;
  let sql: pg.Client;

  before(async () => {
    server = await startXmppServer();
    db = await createTestDatabase();
    // Two instances on one database (one holds the link). AUTO_PROVISION on: an unknown account a
    // token names is created, which the old account's token must not do.
    const env = { XMPP_LINK_MODE: "single", AUTO_PROVISION: "true", DELETION_REVOKES_TOKENS: "true" };
    a = await startTestGateway(server, env, db);
    b = await startTestGateway(server, env, db);
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });
  after(async () => {
    await sql?.end();
    await b?.stop();
    await a?.stop();
    await db?.drop();
    await server?.stop();
  });

  const accountId = async (localpart: string): Promise<number | null> => (await sql.query<{ id: number }>("SELECT id FROM account WHERE localpart = $1", [localpart])).rows[0]?.id ?? null;
  const count = async (query: string, values: unknown[]): Promise<number> => (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${query}`, values)).rows[0]!.n;
  const refused = (r: HttpResult, what: string) => {
    assert.equal(r.status, 401, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
    assert.equal(r.body.code, "unauthorized", what);
    assert.match(r.headers.get("content-type") ?? "", /^application\/problem\+json/, what);
    assert.ok(r.headers.get("www-authenticate"), `${what}: the challenge`);
  };

  /** Every kind of request the old token might make: reads, writes, a ticket, a stream. */
  async function allRefused(gw: TestGateway, token: string): Promise<void> {
    const requests: [string, string, unknown?][] = [
      ["GET", "/v1/roster"],
      ["PUT", "/v1/roster/intruder@example.net", { name: "old" }],
      ["POST", "/v1/messages", { to: "juliet@example.net", body: "from the old account" }],
      ["GET", "/v1/messages?with=juliet@example.net"],
      ["PUT", "/v1/presence?resource=old", {}],
      ["GET", "/v1/events"],
      ["POST", "/v1/events/tickets", {}],
      ["GET", "/v1/sessions"],
      ["GET", "/v1/webhooks"],
      ["PUT", "/v1/blocklist/blocked@example.net"],
    ];
    for (const [method, path, body] of requests) refused(await gw.request(method, path, { token, ...(body === undefined ? {} : { body }) }), `${method} ${path}`);
    const stream = await gw.sse("/v1/events?resource=old-stream", token);
    try {
      assert.equal(stream.status, 401, "the event stream");
    } finally {
      await stream.close();
    }
  }

  /** The new account's data is only what the new account made. */
  async function untouched(localpart: string, newContact: string): Promise<void> {
    const id = (await accountId(localpart))!;
    assert.deepEqual((await sql.query("SELECT jid FROM roster_item WHERE account_id = $1", [id])).rows, [{ jid: newContact }], "its roster");
    assert.equal(await count("message WHERE account_id = $1", [id]), 0, "no message");
    assert.equal(await count("session WHERE account_id = $1", [id]), 0, "no session");
    assert.equal(await count("stream_ticket WHERE account_id = $1", [id]), 0, "no ticket");
    assert.equal(await count("block WHERE account_id = $1", [id]), 0, "no block");
  }

  it("deleted and created again: the old token is refused everywhere, the new account's data untouched; tokens issued after work", async () => {
    const lp = uniq("recreated");
    await a.createAccount(lp);
    const old = oldToken(a, lp);
    assert.equal((await a.request("PUT", "/v1/roster/old-contact@example.net", { token: old, body: {} })).status, 201, "the old token works before the deletion");
    assert.equal((await a.request("DELETE", `/v1/accounts/${lp}`)).status, 204);
    await a.createAccount(lp);
    const fresh = a.token(lp);
    assert.equal((await a.request("PUT", "/v1/roster/new-contact@example.net", { token: fresh, body: {} })).status, 201, "a token issued after the re-creation works");

    await allRefused(a, old);
    await untouched(lp, "new-contact@example.net");

    const roster = await a.request("GET", "/v1/roster", { token: fresh });
    assert.equal(roster.status, 200, roster.text);
    assert.deepEqual(roster.body.items.map((i: { jid: string }) => i.jid), ["new-contact@example.net"]);
    const minted = await a.request("POST", "/v1/tokens", { body: { account: lp } });
    assert.equal(minted.status, 201, minted.text);
    assert.equal((await a.request("GET", "/v1/roster", { token: minted.body.token })).status, 200, "a token from POST /v1/tokens works");
  });

  it("AUTO_PROVISION: the old token does not create the account again; a token issued after the deletion does", async () => {
    const lp = uniq("provisioned");
    const old = oldToken(a, lp);
    assert.equal((await a.request("GET", "/v1/roster", { token: old })).status, 200, "provisioned by its first request");
    const oldId = (await accountId(lp))!;
    assert.ok(oldId);
    assert.equal((await a.request("DELETE", `/v1/accounts/${lp}`)).status, 204);
    for (const [method, path, body] of [
      ["GET", "/v1/roster"],
      ["PUT", "/v1/presence", {}],
      ["POST", "/v1/messages", { to: "juliet@example.net", body: "hi" }],
    ] as const) {
      refused(await a.request(method, path, { token: old, ...(body === undefined ? {} : { body }) }), `${method} ${path}`);
      refused(await b.request(method, path, { token: old, ...(body === undefined ? {} : { body }) }), `on the other instance: ${method} ${path}`);
    }
    assert.equal(await accountId(lp), null, "not created again");
    const fresh = b.token(lp);
    const r = await b.request("GET", "/v1/roster", { token: fresh });
    assert.equal(r.status, 200, r.text);
    const now = await accountId(lp);
    assert.ok(now !== null && now !== oldId, `provisioned anew (${oldId} before, ${now} now)`);
  });

  it("another instance that had the account cached refuses the old token once the account is deleted and created again", async () => {
    const lp = uniq("elsewhere");
    await a.createAccount(lp);
    const old = oldToken(a, lp);
    assert.equal((await b.request("PUT", "/v1/roster/old-contact@example.net", { token: old, body: {} })).status, 201, "B has the account cached");
    // A stream of the account's on B: it ends when B hears of the deletion, from the notifications
    // the deletion's transaction sends together (the cache's among them).
    const stream = await b.sse("/v1/events?resource=tab", old);
    assert.equal(stream.status, 200);
    assert.equal((await a.request("DELETE", `/v1/accounts/${lp}`)).status, 204);
    await waitFor(() => stream.closed, 5000, "B hears of the deletion (its stream ends)");
    await a.createAccount(lp);
    const fresh = a.token(lp);
    assert.equal((await a.request("PUT", "/v1/roster/new-contact@example.net", { token: fresh, body: {} })).status, 201);

    // B reads the account again, with its deletion: the old token is refused...
    refused(await b.request("GET", "/v1/roster", { token: old }), "B, first request after the re-creation");
    // ...a new one is the new account's (and B caches it)...
    const roster = await b.request("GET", "/v1/roster", { token: fresh });
    assert.equal(roster.status, 200, roster.text);
    assert.deepEqual(roster.body.items.map((i: { jid: string }) => i.jid), ["new-contact@example.net"]);
    // ...and the old one is refused from that cached entry too, for every request.
    await allRefused(b, old);
    await untouched(lp, "new-contact@example.net");
  });
});
