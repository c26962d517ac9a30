// Request parsing and the field named by its errors (API.md "Errors": validation failures are 400
// with the offending field named): bodies are JSON only (RFC 9110 §15.5.16: 415 otherwise), an
// empty application/json body is no body, a body that does not parse names `body`; the account
// routes take localparts only (RFC 7622 §3.3.1); path parameters are named `params.…`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, type HttpResult, type TestGateway } from "../helpers/gateway.js";

describe("request bodies and error fields", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let token: string;
  const contact = "juliet@localhost";

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw");
    gw = await startTestGateway(server);
    await gw.createAccount("romeo");
    token = gw.token("romeo");
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  /** A request whose body is exactly `raw`, with Content-Type `type` (fetch sends Content-Length: 0 for ""). */
  const send = (method: string, path: string, type: string, raw: string, tok: string = token): Promise<HttpResult> =>
    gw.request(method, path, { token: tok, raw, headers: { "content-type": type } });

  function problem(r: HttpResult, status: number, code: string, field: string, what: string): void {
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.match(r.headers.get("content-type") ?? "", /application\/problem\+json/, what);
    assert.equal(r.body.code, code, `${what}: ${r.text}`);
    assert.equal(r.body.field, field, `${what}: ${r.text}`);
  }

  it("takes JSON bodies only: text/plain is 415 naming the Content-Type, not a string that fails validation", async () => {
    const message = JSON.stringify({ to: contact, body: "hi" });
    for (const type of ["text/plain", "text/plain; charset=utf-8"]) {
      problem(await send("POST", "/v1/messages", type, message), 415, "unsupported-media-type", "headers.content-type", `POST /v1/messages as ${type}`);
      problem(await send("PUT", "/v1/presence", type, "{}"), 415, "unsupported-media-type", "headers.content-type", `PUT /v1/presence as ${type}`);
    }
    // The same body as JSON is taken: the 415 is the media type's.
    assert.equal((await send("POST", "/v1/messages", "application/json", message)).status, 202);
  });

  it("an empty application/json body is no body: routes without one, or with only optional fields, take it", async () => {
    const json = (method: string, path: string) => send(method, path, "application/json", "");
    const steps: [method: string, path: string, status: number][] = [
      ["PUT", `/v1/roster/${contact}`, 201],
      ["PUT", `/v1/roster/${contact}`, 200],
      ["POST", `/v1/roster/${contact}/subscribe`, 202],
      ["POST", `/v1/roster/${contact}/approve`, 200],
      ["POST", `/v1/roster/${contact}/deny`, 200],
      ["POST", `/v1/roster/${contact}/unsubscribe`, 200],
      ["DELETE", `/v1/roster/${contact}`, 204],
      ["PUT", "/v1/presence", 200],
      ["POST", "/v1/events/tickets", 201],
      ["PUT", "/v1/blocklist/iago@localhost", 204],
      ["DELETE", "/v1/blocklist/iago@localhost", 204],
    ];
    for (const [method, path, status] of steps) {
      const r = await json(method, path);
      assert.equal(r.status, status, `${method} ${path} with an empty JSON body: ${r.text}`);
    }
    // A route that needs a body: a validation failure of `body`, not a parse error.
    problem(await json("POST", "/v1/messages"), 400, "validation-failed", "body", "POST /v1/messages with an empty JSON body");
    problem(await send("POST", "/v1/accounts", "application/json", "", gw.adminToken), 400, "validation-failed", "body", "POST /v1/accounts with an empty JSON body");
  });

  it("a body in a content coding is 415 naming headers.content-encoding, with Accept-Encoding: identity (RFC 9110 §15.5.16)", async () => {
    const message = JSON.stringify({ to: contact, body: "coded" });
    for (const coding of ["gzip", "br", "GZIP"]) {
      const body = coding === "br" ? brotliCompressSync(message) : gzipSync(message);
      const r = await fetch(`${gw.url}/v1/messages`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-encoding": coding }, body });
      const doc = (await r.json()) as { code: string; field: string };
      assert.deepEqual([r.status, doc.code, doc.field, r.headers.get("accept-encoding")], [415, "unsupported-media-type", "headers.content-encoding", "identity"], coding);
    }
    // Plain JSON labelled gzip is refused too; labelled identity it is taken.
    problem(await gw.request("POST", "/v1/messages", { token, raw: message, headers: { "content-type": "application/json", "content-encoding": "gzip" } }), 415, "unsupported-media-type", "headers.content-encoding", "plain JSON labelled gzip");
    assert.equal((await gw.request("POST", "/v1/messages", { token, raw: message, headers: { "content-type": "application/json", "content-encoding": "identity" } })).status, 202);
    // Without a body there is nothing in a coding: taken as it is.
    assert.equal((await gw.request("GET", "/v1/roster", { token, headers: { "content-encoding": "gzip" } })).status, 200);
  });

  it("a GET's body is never read, so its content coding is not refused either: the OpenAPI document lists no 415 there", async () => {
    const openapi = (await gw.request("GET", "/openapi.json", { token: null })).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const path of ["/v1/roster", "/v1/sessions", "/healthz"]) {
      assert.equal(openapi.paths[path]!.get!.responses["415"], undefined, `GET ${path} documents a 415`);
      // fetch sends no body with a GET: a raw request does, labelled gzip (and plain text, read neither).
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${gw.url}${path}`, { method: "GET", headers: { authorization: `Bearer ${token}`, "content-type": "text/plain", "content-encoding": "gzip", "content-length": "4" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.end("xxxx");
      });
      assert.equal(status, 200, `GET ${path} with a gzip-labelled body`);
    }
  });

  it("a JSON null body is a value, not no body: 400 naming `body`, on routes whose body is optional too", async () => {
    for (const [method, path] of [["PUT", `/v1/roster/${contact}`], ["PUT", "/v1/presence"], ["POST", "/v1/events/tickets"], ["POST", "/v1/messages"]] as const) {
      problem(await send(method, path, "application/json", "null"), 400, "validation-failed", "body", `${method} ${path} with the body null`);
    }
  });

  it("PUT /v1/roster/{jid} with no body at all adds the item ({name?, groups?} are both optional), and keeps what it had", async () => {
    const jid = "nurse@localhost";
    const added = await gw.request("PUT", `/v1/roster/${jid}`, { token });
    assert.equal(added.status, 201, added.text);
    assert.deepEqual([added.body.jid, added.body.name, added.body.groups], [jid, null, []]);
    assert.equal((await gw.request("PUT", `/v1/roster/${jid}`, { token, body: { name: "Nurse", groups: ["Capulets"] } })).status, 200);
    const again = await gw.request("PUT", `/v1/roster/${jid}`, { token });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual([again.body.name, again.body.groups], ["Nurse", ["Capulets"]]);
  });

  it("a body that does not parse is 400 validation-failed naming `body`, prototype poisoning included", async () => {
    for (const raw of ["{bad", '{"to":', '{"__proto__":{"admin":true},"to":"juliet@localhost","body":"x"}', '{"constructor":{"prototype":{"admin":true}},"to":"juliet@localhost","body":"x"}']) {
      problem(await send("POST", "/v1/messages", "application/json", raw), 400, "validation-failed", "body", `POST /v1/messages ${raw}`);
    }
    problem(await send("PUT", `/v1/roster/${contact}`, "application/json", "{bad"), 400, "validation-failed", "body", "PUT /v1/roster {bad");
  });

  it("a body that is not UTF-8 (RFC 8259 §8.1) is 400 validation-failed naming `body`: nothing stored or sent, no byte taken as U+FFFD", async () => {
    const peer = "tybalt@localhost";
    const bad: [string, number[]][] = [
      ["a lone surrogate's bytes", [0xed, 0xa0, 0x80]],
      ["Latin-1", [0xe9]],
      ["an overlong encoding", [0xc0, 0xaf]],
      ["a truncated sequence", [0xe2, 0x82]],
    ];
    for (const [what, bytes] of bad) {
      const raw = Buffer.concat([Buffer.from(`{"to":"${peer}","body":"x `), Buffer.from(bytes), Buffer.from('"}')]);
      const res = await fetch(`${gw.url}/v1/messages`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: raw });
      const problem = (await res.json()) as { code?: string; field?: string };
      assert.deepEqual([res.status, problem.code, problem.field], [400, "validation-failed", "body"], what);
    }
    // The same text in UTF-8 is taken: the only message of the conversation.
    const taken = await send("POST", "/v1/messages", "application/json", JSON.stringify({ to: peer, body: "x é €" }));
    assert.equal(taken.status, 202, taken.text);
    const history = await gw.request("GET", `/v1/messages?with=${peer}`, { token });
    assert.deepEqual(history.body.items.map((m: { body: unknown }) => m.body), ["x é €"]);
  });

  it("names a bad blocklist JID and a blocked contact by the path parameter, params.jid", async () => {
    for (const method of ["PUT", "DELETE"]) {
      problem(await gw.request(method, "/v1/blocklist/a@@localhost", { token }), 400, "invalid-jid", "params.jid", `${method} /v1/blocklist/a@@localhost`);
    }
    const blocked = "tybalt@localhost";
    assert.equal((await gw.request("PUT", `/v1/blocklist/${blocked}`, { token })).status, 204);
    for (const action of ["subscribe", "approve"]) {
      problem(await gw.request("POST", `/v1/roster/${blocked}/${action}`, { token }), 400, "blocked", "params.jid", `${action} a blocked contact`);
    }
    assert.equal((await gw.request("DELETE", `/v1/blocklist/${blocked}`, { token })).status, 204);
  });

  it("POST and DELETE /v1/accounts take a localpart, not a bare JID (RFC 7622 §3.3.1); tokens still take either", async () => {
    const bare = `benvolio@${gw.domain}`;
    problem(await gw.request("POST", "/v1/accounts", { body: { localpart: bare } }), 400, "invalid-jid", "body.localpart", "POST /v1/accounts with a bare JID");
    // Not created under the localpart either: creating it now is a 201, not a 409.
    const created = await gw.request("POST", "/v1/accounts", { body: { localpart: "benvolio" } });
    assert.deepEqual([created.status, created.body.jid], [201, bare], created.text);
    assert.equal(created.headers.get("location"), "/v1/accounts/benvolio", "RFC 9110 §15.3.2: the 201 names what it created");
    const again = await gw.request("POST", "/v1/accounts", { body: { localpart: "benvolio" } });
    assert.deepEqual([again.status, again.body.code, again.headers.get("location")], [409, "account-exists", null], "a 409 created nothing to name");
    // API.md: POST /v1/tokens {account} is a localpart or a bare JID on XMPP_DOMAIN.
    const minted = await gw.request("POST", "/v1/tokens", { body: { account: bare } });
    assert.equal(minted.status, 201, minted.text);
    problem(await gw.request("DELETE", `/v1/accounts/${bare}`), 400, "invalid-jid", "params.localpart", "DELETE /v1/accounts/{bare JID}");
    // Still there after the refused DELETE: this one deletes it.
    assert.equal((await gw.request("DELETE", "/v1/accounts/benvolio")).status, 204);
  });
});
