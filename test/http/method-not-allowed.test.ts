// RFC 9110 §15.5.6 against the real app: a method a served path does not support is 405 with an
// Allow header (and a problem document in the API's vocabulary), before authentication; an
// unknown path stays 404.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HttpResult, TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

type Paths = Record<string, Record<string, unknown>>;

describe("405 Method Not Allowed", () => {
  let world: XmppWorld<never> | undefined;
  let gw: TestGateway;

  before(async () => {
    world = await startWorld("prosody", {});
    gw = world.gw;
  });
  after(() => world?.stop());

  /** A 405 problem document whose Allow header (and `allow` member) is exactly `allow`. */
  function assert405(r: HttpResult, allow: string[], what: string, method: string, path: string): void {
    assert.equal(r.status, 405, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.headers.get("allow"), allow.join(", "), `${what}: Allow`);
    assert.match(r.headers.get("content-type") ?? "", /^application\/problem\+json/, what);
    assert.equal(r.headers.get("www-authenticate"), null, `${what}: no authentication challenge`);
    if (method === "HEAD") return assert.equal(r.text, "", `${what}: no body for HEAD`);
    assert.equal(r.body.type, "urn:balcony:problem:method-not-allowed", what);
    assert.equal(r.body.title, "Method not allowed", what);
    assert.equal(r.body.status, 405, what);
    assert.equal(r.body.code, "method-not-allowed", what);
    assert.deepEqual(r.body.allow, allow, `${what}: allow member`);
    assert.ok(r.body.detail.includes(method) && r.body.detail.includes(path.split("?")[0]!), `${what}: detail names the method and path: ${r.body.detail}`);
  }

  it("answers a wrong method on routes with path parameters with 405 and the path's methods", async () => {
    const cases: [method: string, path: string, allow: string[]][] = [
      ["PATCH", "/v1/roster/x@y", ["DELETE", "PUT"]],
      ["GET", "/v1/roster/juliet%40localhost", ["DELETE", "PUT"]],
      ["POST", "/v1/webhooks/0b8e5c1e-8f57-4a39-9d3b-3f1f7d3c9a11", ["DELETE", "GET", "HEAD", "PATCH"]],
      ["GET", "/v1/roster/x@y/subscribe", ["POST"]],
      ["PUT", "/v1/accounts/romeo", ["DELETE"]],
      ["POST", "/v1/sessions/phone", ["DELETE"]],
      ["PATCH", "/v1/blocklist/spam@example.net", ["DELETE", "PUT"]],
    ];
    for (const [method, path, allow] of cases) assert405(await gw.request(method, path), allow, `${method} ${path}`, method, path);
  });

  it("answers a wrong method on collections, with the query string and percent-encoding as the router takes them", async () => {
    assert405(await gw.request("DELETE", "/v1/accounts"), ["GET", "HEAD", "POST"], "DELETE /v1/accounts", "DELETE", "/v1/accounts");
    assert405(await gw.request("DELETE", "/v1/accounts?limit=2"), ["GET", "HEAD", "POST"], "with a query", "DELETE", "/v1/accounts");
    assert405(await gw.request("PATCH", "/%761/roster/x@y"), ["DELETE", "PUT"], "encoded path", "PATCH", "/%761/roster/x@y");
    const put = await gw.request("PUT", "/v1/messages", { body: { to: "juliet@localhost", body: "hi" } });
    assert.equal(put.status, 405, put.text);
    const allow = put.headers.get("allow")?.split(", ") ?? [];
    for (const m of ["GET", "HEAD", "POST"]) assert.ok(allow.includes(m), `PUT /v1/messages: Allow ${allow.join(", ")} has ${m}`);
    assert.ok(!allow.includes("PUT"), "the refused method is not allowed");
    assert.equal(put.body.code, "method-not-allowed");
    // A route with a GET gets HEAD from Fastify (exposeHeadRoutes); a POST-only one does not.
    assert405(await gw.request("GET", "/v1/tokens"), ["POST"], "GET /v1/tokens", "GET", "/v1/tokens");
    assert405(await gw.request("HEAD", "/v1/tokens"), ["POST"], "HEAD /v1/tokens", "HEAD", "/v1/tokens");
    assert.equal((await gw.request("HEAD", "/healthz", { token: null })).status, 200, "HEAD is served where GET is");
    // The app handles no OPTIONS (no CORS): it is a method like any other.
    assert405(await gw.request("OPTIONS", "/v1/accounts"), ["GET", "HEAD", "POST"], "OPTIONS /v1/accounts", "OPTIONS", "/v1/accounts");
    assert405(await gw.request("POST", "/healthz", { token: null }), ["GET", "HEAD"], "POST /healthz", "POST", "/healthz");
  });

  it("answers 405 before authentication, and 401 still for the right method without a token", async () => {
    for (const headers of [{}, { authorization: "Bearer garbage" }] as Record<string, string>[]) {
      const r = await gw.request("PATCH", "/v1/roster/x@y", { token: null, headers });
      assert405(r, ["DELETE", "PUT"], `PATCH without a valid token (${JSON.stringify(headers)})`, "PATCH", "/v1/roster/x@y");
    }
    const right = await gw.request("PUT", "/v1/roster/x@y", { token: null, body: { name: "X" } });
    assert.equal(right.status, 401, right.text);
    assert.equal(right.body.code, "unauthorized");
    const user = await gw.request("DELETE", "/v1/accounts", { token: gw.token("romeo") });
    assert405(user, ["GET", "HEAD", "POST"], "DELETE /v1/accounts with a user token (no admin scope)", "DELETE", "/v1/accounts");
  });

  it("answers a method the server does not know with a 400 problem document (a malformed request, not a 5xx), one it knows but no route takes with 405", async () => {
    for (const method of ["FOO", "BREW"]) {
      const r = await fetch(`${gw.url}/v1/roster`, { method });
      const body = (await r.json()) as { code: string; status: number; detail: string };
      assert.deepEqual([r.status, r.headers.get("content-type"), body.code, body.status], [400, "application/problem+json", "validation-failed", 400], method);
      assert.match(body.detail, /method/, method);
    }
    assert.equal((await fetch(`${gw.url}/v1/roster`, { method: "PROPFIND" })).status, 405);
  });

  it("keeps unknown paths 404 not-found, with no Allow header", async () => {
    for (const [method, path, token] of [
      ["PATCH", "/v1/nope", undefined],
      ["GET", "/v1/roster/x@y/nope", undefined],
      ["DELETE", "/v1/accounts/romeo/extra", undefined],
      ["GET", "/nope", null],
      ["PATCH", "/", null],
    ] as const) {
      const r = await gw.request(method, path, { token });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
      assert.equal(r.body.code, "not-found", `${method} ${path}`);
      assert.equal(r.headers.get("allow"), null, `${method} ${path}: no Allow on a 404`);
    }
  });

  it("lists exactly the documented methods (plus HEAD for GET) for every /v1 path, and the document gains no operations", async () => {
    const paths = (await gw.request("GET", "/openapi.json", { token: null })).body.paths as Paths;
    assert.deepEqual(Object.keys(paths["/v1/roster/{jid}"] ?? {}).sort(), ["delete", "put"]);
    assert.deepEqual(Object.keys(paths["/v1/accounts"] ?? {}).sort(), ["get", "post"]);
    const v1 = Object.entries(paths).filter(([p]) => p.startsWith("/v1/"));
    assert.ok(v1.length > 20, `the document lists the /v1 paths (${v1.length})`);
    // A URL is served by every template it fits: /v1/messages/batch (POST) is also /v1/messages/{id}
    // for the methods the static route lacks, as the router routes them.
    const fits = (template: string, path: string) => {
      const [t, p] = [template.split("/"), path.split("/")];
      return t.length === p.length && t.every((seg, i) => seg === p[i] || /^\{[^}]+\}$/.test(seg));
    };
    const failures: string[] = [];
    for (const [template] of v1) {
      const path = template.replace(/\{[^}]+\}/g, "probe");
      const documented = [...new Set(v1.filter(([t]) => fits(t, path)).flatMap(([, ops]) => Object.keys(ops).map((m) => m.toUpperCase())))];
      const allow = [...documented, ...(documented.includes("GET") ? ["HEAD"] : [])].sort();
      const method = ["PATCH", "PUT", "POST", "DELETE", "GET", "OPTIONS"].find((m) => !allow.includes(m))!;
      const r = await gw.request(method, path);
      if (r.status !== 405 || r.headers.get("allow") !== allow.join(", ") || r.body?.code !== "method-not-allowed") {
        failures.push(`${method} ${path}: ${r.status} Allow ${r.headers.get("allow")} (want ${allow.join(", ")}) ${r.text.slice(0, 100)}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
