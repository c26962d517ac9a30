// Operations routes and the OpenAPI document, on the real app.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { schemaTypes } from "../../scripts/openapi.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

describe("operations", () => {
  let world: XmppWorld<never> | undefined;
  let gw: TestGateway;

  before(async () => {
    world = await startWorld("prosody", {});
    gw = world.gw;
  });
  after(() => world?.stop());

  it("serves /healthz and /readyz without a token", async () => {
    const h = await gw.request("GET", "/healthz", { token: null });
    assert.equal(h.status, 200);
    const r = await gw.request("GET", "/readyz", { token: null });
    assert.deepEqual([r.status, r.body.database, r.body.xmpp], [200, "up", "up"]);
    assert.equal("redis" in r.body, false, "no redis without REDIS_URL (test/http/readyz-redis.test.ts: with it)");
  });

  it("documents /readyz's and /healthz's values in the OpenAPI document, as API.md gives them", async () => {
    const doc = (await gw.request("GET", "/openapi.json", { token: null })).body;
    type Schema = { const?: unknown; enum?: unknown[]; anyOf?: Schema[] };
    /** The values a schema allows: a const (@fastify/swagger writes it as a one-value enum), or a union of them. */
    const allowed = (s: Schema): unknown[] => (s.anyOf ? s.anyOf.flatMap(allowed) : s.enum ?? (s.const !== undefined ? [s.const] : [undefined]));
    const values = (path: string, status: string, prop: string): unknown[] => allowed(doc.paths[path].get.responses[status].content["application/json"].schema.properties[prop]);
    for (const status of ["200", "503"]) {
      // And "stopping" on a 503, from SIGTERM on (test/http/shutdown-drain.test.ts).
      assert.deepEqual(values("/readyz", status, "status"), status === "200" ? ["ready", "not ready"] : ["ready", "not ready", "stopping"], status);
      assert.deepEqual(values("/readyz", status, "database"), ["up", "down"], status);
      assert.deepEqual(values("/readyz", status, "xmpp"), ["up", "standby", "down"], status);
      assert.deepEqual(values("/readyz", status, "redis"), ["up", "down"], status);
      assert.deepEqual(doc.paths["/readyz"].get.responses[status].content["application/json"].schema.required, ["status", "database", "xmpp"]);
    }
    assert.deepEqual(values("/healthz", "200", "status"), ["ok"]);
  });

  it("documents that every /v1 operation may answer 429 with Retry-After, and the roster's ETag, If-None-Match and 304", async () => {
    const doc = (await gw.request("GET", "/openapi.json", { token: null })).body;
    const ops = Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, unknown> }> }>>)
      .filter(([path]) => path.startsWith("/v1/"))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ name: `${method} ${path}`, op })));
    assert.ok(ops.length >= 40, `the /v1 operations (${ops.length})`);
    const without = ops.filter(({ op }) => !op.responses["429"]?.headers?.["retry-after"] || !op.responses["429"]?.content?.["application/problem+json"]).map((o) => o.name);
    assert.deepEqual(without, [], "every /v1 operation documents 429 as a problem with Retry-After");
    const roster = doc.paths["/v1/roster"].get;
    assert.deepEqual(roster.parameters.filter((p: { in: string }) => p.in === "header").map((p: { name: string }) => p.name), ["if-none-match"]);
    assert.ok(roster.responses["200"].headers.etag, "200 carries ETag");
    assert.ok(roster.responses["304"].headers.etag, "304 carries ETag");
    assert.equal(roster.responses["304"].content, undefined, "304 has no body");
    // As documented (the 429 itself: test/http/limits.test.ts).
    await gw.createAccount("doc");
    const tok = gw.token("doc");
    const first = await gw.request("GET", "/v1/roster", { token: tok });
    const again = await gw.request("GET", "/v1/roster", { token: tok, headers: { "if-none-match": first.headers.get("etag")! } });
    assert.deepEqual([again.status, again.headers.get("etag")], [304, first.headers.get("etag")]);
  });

  it("documents what every operation may answer (503, the 401 challenge, 413 and 415 on a body), which bodies may be left out, and the headers it sends, as the server answers", async () => {
    type Answer = { headers?: Record<string, unknown>; content?: Record<string, unknown> };
    type Op = { responses: Record<string, Answer>; requestBody?: { required?: boolean }; parameters?: { in: string; name: string }[] };
    const doc = (await gw.request("GET", "/openapi.json", { token: null })).body as { paths: Record<string, Record<string, Op>> };
    const ops = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/v1/"))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })));
    assert.ok(ops.length >= 40, `the /v1 operations (${ops.length})`);
    const lacking = (what: string, has: (op: Op) => boolean, among = ops) => assert.deepEqual(among.filter(({ op }) => !has(op)).map((o) => o.name), [], what);
    lacking("503 with Retry-After, as a problem", (op) => !!op.responses["503"]?.headers?.["retry-after"] && !!op.responses["503"]?.content?.["application/problem+json"]);
    lacking("401 with WWW-Authenticate", (op) => !!op.responses["401"]?.headers?.["www-authenticate"]);
    const withBody = ops.filter(({ op }) => op.requestBody);
    assert.ok(withBody.length >= 14, `operations that take a body (${withBody.length})`);
    lacking("413 and 415", (op) => !!op.responses["413"] && !!op.responses["415"], withBody);
    // The bodies that may be left out are exactly those the server does without.
    const optional = withBody.filter(({ op }) => op.requestBody!.required === false).map((o) => o.name);
    assert.deepEqual(optional.sort(), ["POST /v1/events/tickets", "PUT /v1/presence", "PUT /v1/roster/{jid}"]);
    await gw.createAccount("answers");
    const tok = gw.token("answers");
    const bare = (method: string, path: string) => fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${tok}` } });
    assert.deepEqual(
      await Promise.all([bare("POST", "/v1/events/tickets"), bare("PUT", "/v1/presence"), bare("PUT", "/v1/roster/nurse%40localhost")].map(async (r) => (await r).status)),
      [201, 200, 201],
    );
    // 415 as documented: a body that is not JSON.
    const plain = await fetch(`${gw.url}/v1/roster/nurse%40localhost`, { method: "PUT", headers: { authorization: `Bearer ${tok}`, "content-type": "text/plain" }, body: "hi" });
    assert.equal(plain.status, 415);
    // Headers sent as documented: Location on a 201, Idempotent-Replayed on a replay, the SSE view's media type and session.
    const created = await gw.request("POST", "/v1/accounts", { body: { localpart: "located" } });
    assert.equal(created.headers.get("location"), "/v1/accounts/located");
    assert.ok(doc.paths["/v1/accounts"]!.post!.responses["201"]!.headers?.location);
    const send = () => gw.request("POST", "/v1/messages", { token: tok, body: { to: "nurse@localhost", body: "once" }, headers: { "idempotency-key": "k-answers" } });
    await send();
    assert.equal((await send()).headers.get("idempotent-replayed"), "true");
    assert.ok(doc.paths["/v1/messages"]!.post!.responses["202"]!.headers?.["idempotent-replayed"]);
    const events = doc.paths["/v1/events"]!.get!;
    assert.deepEqual(Object.keys(events.responses["200"]!.content!).sort(), ["application/json", "text/event-stream"]);
    assert.ok(events.responses["200"]!.headers?.["balcony-resource"]);
    assert.ok(events.parameters!.some((p) => p.in === "header" && p.name === "balcony-resource"));
    // A stream ticket in the query is the other way in (the SSE view only: test/http/stream-tickets.test.ts).
    assert.deepEqual((events as { security?: unknown }).security, [{ bearer: [] }, { streamTicket: [] }]);
    const stream = await fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${tok}`, accept: "text/event-stream", "balcony-resource": "web" } });
    try {
      assert.deepEqual([stream.status, stream.headers.get("content-type"), stream.headers.get("balcony-resource")], [200, "text/event-stream; charset=utf-8", "web"]);
    } finally {
      await stream.body?.cancel();
    }
  });

  it("answers 413, 415 and 414 where no body or long parameter is expected, as each operation documents; every operation has a unique operationId and a declared tag", async () => {
    type Op = { responses: Record<string, unknown>; requestBody?: unknown; operationId?: string; tags?: string[] };
    const doc = (await gw.request("GET", "/openapi.json", { token: null })).body as { paths: Record<string, Record<string, Op>>; tags: { name: string }[] };
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, op })));
    // Routes without a body still read one their method can carry: the answers are documented.
    const bodiless = ops.filter((o) => !o.op.requestBody && ["POST", "PUT", "PATCH", "DELETE"].includes(o.method));
    assert.ok(bodiless.length >= 12, `operations without a body whose method may carry one (${bodiless.length})`);
    assert.deepEqual(bodiless.filter((o) => !o.op.responses["413"] || !o.op.responses["415"]).map((o) => `${o.method} ${o.path}`), [], "413 and 415 documented");
    const withParams = ops.filter((o) => o.path.startsWith("/v1/") && o.path.includes("{"));
    assert.ok(withParams.length >= 20, `operations with a path parameter (${withParams.length})`);
    assert.deepEqual(withParams.filter((o) => !o.op.responses["414"]).map((o) => `${o.method} ${o.path}`), [], "414 documented");
    const ids = ops.map((o) => o.op.operationId);
    assert.ok(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]+$/.test(id)), `operationIds: ${ids.join(", ")}`);
    assert.equal(new Set(ids).size, ops.length, "operationIds are unique");
    assert.equal(doc.paths["/v1/roster/{jid}/subscribe"]?.post?.operationId, "postRosterByJidSubscribe");
    const declared = new Set(doc.tags.map((t) => t.name));
    assert.deepEqual(ops.flatMap((o) => (o.op.tags ?? []).filter((t) => !declared.has(t)).map((t) => `${o.method} ${o.path}: ${t}`)), [], "every tag is declared");
    // And the server answers so.
    await gw.createAccount("bodiless");
    const tok = gw.token("bodiless");
    const raw = (method: string, path: string, type: string, body: string) =>
      fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${tok}`, "content-type": type }, body });
    const plain = await raw("DELETE", "/v1/roster/nurse%40localhost", "text/plain", "x");
    assert.deepEqual([plain.status, ((await plain.json()) as { code: string }).code], [415, "unsupported-media-type"]);
    const big = await raw("POST", "/v1/roster/nurse%40localhost/subscribe", "application/json", JSON.stringify({ pad: "x".repeat(1_100_000) }));
    assert.deepEqual([big.status, ((await big.json()) as { code: string }).code], [413, "payload-too-large"]);
    const long = await fetch(`${gw.url}/v1/messages/${"a".repeat(4000)}`, { headers: { authorization: `Bearer ${tok}` } });
    assert.deepEqual([long.status, ((await long.json()) as { code: string }).code], [414, "uri-too-long"]);
  });

  it("answers an HTTP/1.1 request without Host with a 400 problem naming headers.host (RFC 9112 §3.2); HTTP/1.0 needs none", async () => {
    /** The raw answer to a request written as is (the connection is closed by the server or after it). */
    const raw = async (request: string): Promise<string> => {
      const socket = connect(Number(new URL(gw.url).port), "127.0.0.1");
      await once(socket, "connect");
      socket.end(request);
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      await once(socket, "close");
      return Buffer.concat(chunks).toString("utf8");
    };
    const missing = await raw("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    const [head, body] = missing.split("\r\n\r\n");
    assert.match(head!, /^HTTP\/1\.1 400 /, missing);
    assert.match(head!, /content-type: application\/problem\+json/i, missing);
    const doc = JSON.parse(body!) as { code: string; field: string; status: number };
    assert.deepEqual([doc.status, doc.code, doc.field], [400, "validation-failed", "headers.host"]);
    assert.match(await raw("GET /healthz HTTP/1.0\r\n\r\n"), /^HTTP\/1\.1 200 /);
    assert.match(await raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), /^HTTP\/1\.1 200 /);
  });

  it("exposes Prometheus metrics, including HTTP timings and the link state", async () => {
    await gw.request("GET", "/v1/accounts");
    await gw.createAccount("metered");
    const sent = await gw.request("POST", "/v1/messages", { token: gw.token("metered"), body: { to: "someone@localhost", body: "counted" } });
    assert.equal(sent.status, 202);
    // The link holder writes it after the 202: wait until it left the queue (sent, or failed: no such user).
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${sent.body.id}`, { token: gw.token("metered") })).body.status !== "queued", 5000, "message written");
    const m = await gw.request("GET", "/metrics", { token: null });
    assert.equal(m.status, 200);
    assert.match(m.headers.get("content-type") ?? "", /text\/plain/);
    assert.match(m.text, /balcony_http_request_duration_seconds_count\{method="GET",route="\/v1\/accounts",status="200"\} [1-9]/);
    assert.match(m.text, /balcony_xmpp_link_up 1/);
    assert.match(m.text, /balcony_messages_written_total [1-9]/);
    assert.match(m.text, /balcony_messages_accepted_total [1-9]/);
  });

  it("serves the OpenAPI document, identical to the committed openapi/openapi.json, and openapi/schema.d.ts is its types", async () => {
    const live = await gw.request("GET", "/openapi.json", { token: null });
    assert.equal(live.status, 200);
    const committed = JSON.parse(await readFile(new URL("../../openapi/openapi.json", import.meta.url), "utf8"));
    assert.deepEqual(live.body, committed, "openapi/openapi.json is stale: run npm run openapi");
    // The typed client's types (src/client.ts), generated as npm run openapi does, from the live document.
    const types = (await readFile(new URL("../../openapi/schema.d.ts", import.meta.url), "utf8")).split("\n");
    const generated = (await schemaTypes(live.body)).split("\n");
    const line = Array.from({ length: Math.max(types.length, generated.length) }, (_, i) => i).find((i) => types[i] !== generated[i]);
    if (line !== undefined)
      assert.fail(`openapi/schema.d.ts is stale: run npm run openapi (line ${line + 1}: committed ${JSON.stringify(types[line])}, generated ${JSON.stringify(generated[line])})`);
    for (const path of ["/v1/messages", "/v1/messages/{id}", "/v1/events", "/v1/accounts", "/v1/tokens", "/v1/sessions"]) assert.ok(live.body.paths[path], path);
    const docs = await fetch(gw.url + "/docs/");
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  });

  it("answers unknown routes and wrong methods with a problem document", async () => {
    const r = await gw.request("GET", "/v1/nothing-here");
    assert.equal(r.status, 404);
    assert.equal(r.body.code, "not-found");
    assert.match(r.headers.get("content-type") ?? "", /problem\+json/);
  });
});
