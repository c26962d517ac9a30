// Authentication and authorization against the real app: algorithms pinned, exp required,
// admin scope, accounts kept apart, token minting, auto-provisioning.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import jwt from "jsonwebtoken";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { Auth } from "../../src/http/auth.js";
import { JWT_SECRET, startTestGateway, type TestGateway } from "../helpers/gateway.js";

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const exp = () => Math.floor(Date.now() / 1000) + 600;

describe("auth", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let auto: TestGateway;
  let server2: XmppServer;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPublic = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();

  before(async () => {
    server = await startXmppServer();
    gw = await startTestGateway(server, { JWT_PUBLIC_KEY: rsaPublic });
    await gw.createAccount("romeo");
  });
  after(async () => {
    await gw?.stop();
    await auto?.stop();
    await server?.stop();
    await server2?.stop();
  });

  const get = (token: string | null, path = "/v1/sessions") => gw.request("GET", path, { token });

  it("accepts HS256 with JWT_SECRET and RS256 with JWT_PUBLIC_KEY", async () => {
    assert.equal((await get(gw.token("romeo"))).status, 200);
    const rs = jwt.sign({ sub: "romeo", exp: exp() }, rsa.privateKey, { algorithm: "RS256" });
    assert.equal((await get(rs)).status, 200);
    const bare = jwt.sign({ sub: `romeo@${gw.domain}`, exp: exp() }, JWT_SECRET, { algorithm: "HS256" });
    assert.equal((await get(bare)).status, 200);
  });

  it("refuses missing, malformed, expired, not-yet-valid, wrongly signed, exp-less and alg:none tokens with 401", async () => {
    const cases: [string, string | null, Record<string, string>?][] = [
      ["missing", null],
      ["malformed", "not.a.jwt"],
      ["expired", jwt.sign({ sub: "romeo", exp: Math.floor(Date.now() / 1000) - 10 }, JWT_SECRET, { algorithm: "HS256" })],
      ["not yet valid", jwt.sign({ sub: "romeo", exp: exp(), nbf: exp() }, JWT_SECRET, { algorithm: "HS256" })],
      ["wrong secret", jwt.sign({ sub: "romeo", exp: exp() }, "another-secret-another-secret-1234", { algorithm: "HS256" })],
      ["no exp", jwt.sign({ sub: "romeo" }, JWT_SECRET, { algorithm: "HS256" })],
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "romeo", exp: exp(), scope: "admin" })}.`],
      ["HS256 signed with the public key (key confusion)", jwt.sign({ sub: "romeo", exp: exp() }, rsaPublic, { algorithm: "HS256" })],
      ["HS512", jwt.sign({ sub: "romeo", exp: exp() }, JWT_SECRET, { algorithm: "HS512" })],
      ["foreign domain", jwt.sign({ sub: "romeo@elsewhere.example", exp: exp() }, JWT_SECRET, { algorithm: "HS256" })],
      ["no sub", jwt.sign({ exp: exp() }, JWT_SECRET, { algorithm: "HS256" })],
    ];
    for (const [name, token] of cases) {
      const r = await get(token);
      assert.equal(r.status, 401, name);
      assert.equal(r.body.code, "unauthorized", name);
      assert.match(r.headers.get("content-type") ?? "", /problem\+json/, name);
      // RFC 9110 §11.6.1 and RFC 6750 §3: the challenge, and invalid_token only when a token came.
      assert.equal(r.headers.get("www-authenticate"), token ? `Bearer realm="balcony", error="invalid_token"` : `Bearer realm="balcony"`, name);
      if (token) assert.ok(!r.text.includes(token), `${name}: the token is not echoed`);
    }
    const basic = await gw.request("GET", "/v1/sessions", { token: null, headers: { authorization: "Basic cm9tZW86cHc=" } });
    assert.equal(basic.status, 401);
    assert.equal(basic.headers.get("www-authenticate"), `Bearer realm="balcony"`, "no Bearer token came: no error code");
  });

  it("keeps admin routes for the admin scope (403 otherwise, with RFC 6750's insufficient_scope challenge)", async () => {
    const user = gw.token("romeo");
    for (const [method, path, body] of [
      ["POST", "/v1/accounts", { localpart: "x1" }],
      ["GET", "/v1/accounts", undefined],
      ["DELETE", "/v1/accounts/romeo", undefined],
      ["POST", "/v1/tokens", { account: "romeo" }],
    ] as const) {
      const r = await gw.request(method, path, { token: user, body });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.body.code, "forbidden");
      // RFC 6750 §3.1: the token is good, its scope is not enough.
      assert.equal(r.headers.get("www-authenticate"), `Bearer realm="balcony", error="insufficient_scope", scope="admin"`, `${method} ${path}`);
    }
    assert.equal((await gw.request("GET", "/v1/accounts", { token: gw.adminToken })).status, 200);
  });

  it("takes a token whose exp is past the last instant a Date holds as expiring then, on every route: a stream ticket too", async () => {
    const token = gw.token("romeo", { exp: 9_000_000_000_000 });
    assert.equal((await get(token)).status, 200);
    const ticket = await gw.request("POST", "/v1/events/tickets", { token, body: {} });
    assert.equal(ticket.status, 201, ticket.text);
  });

  it("refuses DELETE /v1/sessions/{resource} of a resource that is no resourcepart as 400 invalid-jid naming it, as ?resource= does; a good one of no session is 404", async () => {
    const token = gw.token("romeo");
    const bad = await gw.request("DELETE", `/v1/sessions/${encodeURIComponent("ph\u200Bone")}`, { token });
    assert.deepEqual([bad.status, bad.body.code, bad.body.field], [400, "invalid-jid", "params.resource"], bad.text);
    const viaQuery = await gw.request("PUT", `/v1/presence?resource=${encodeURIComponent("ph\u200Bone")}`, { token, body: {} });
    assert.deepEqual([viaQuery.status, viaQuery.body.code], [400, "invalid-jid"], viaQuery.text);
    const none = await gw.request("DELETE", "/v1/sessions/nowhere", { token });
    assert.deepEqual([none.status, none.body.code], [404, "session-not-found"], none.text);
  });

  it("takes the Bearer scheme case-insensitively (RFC 9110 §11.1) and authenticates encoded API paths", async () => {
    const tok = gw.token("romeo");
    assert.equal((await gw.request("GET", "/v1/sessions", { token: null, headers: { authorization: `bearer ${tok}` } })).status, 200);
    const encoded = await gw.request("GET", "/%761/sessions", { token: null });
    assert.equal(encoded.status, 401, "the decoded path is the API route: a token is required");
  });

  it("checks the admin scope before validating an admin route's body", async () => {
    const r = await gw.request("POST", "/v1/accounts", { token: gw.token("romeo"), body: { nonsense: true } });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "forbidden");
  });

  it("answers 404 account-not-found for a valid token of an unknown account", async () => {
    const r = await get(gw.token("ghost"));
    assert.equal(r.status, 404);
    assert.equal(r.body.code, "account-not-found");
  });

  it("mints tokens that work, for existing accounts only", async () => {
    const r = await gw.request("POST", "/v1/tokens", { body: { account: "romeo", ttlSeconds: 120, resource: "cli" } });
    assert.equal(r.status, 201, r.text);
    const claims = jwt.decode(r.body.token) as jwt.JwtPayload;
    assert.equal(claims.sub, "romeo");
    assert.equal(claims.resource, "cli");
    assert.ok(Math.abs(new Date(r.body.expiresAt).getTime() - (Date.now() + 120_000)) < 5000);
    assert.equal((await get(r.body.token)).status, 200);
    const missing = await gw.request("POST", "/v1/tokens", { body: { account: "nobody" } });
    assert.equal(missing.status, 404);
    // A resource its use would refuse (RFC 7622 §3.4: U+200B is a default-ignorable code point) is refused at minting.
    const unusable = await gw.request("POST", "/v1/tokens", { body: { account: "romeo", resource: "ph\u200Bone" } });
    assert.equal(unusable.status, 400, unusable.text);
    assert.equal(unusable.body.code, "invalid-jid");
    assert.equal(unusable.body.field, "body.resource");
    // Prepared as its use prepares it: a non-ASCII space becomes U+0020 (OpaqueString, RFC 8265 §4.2).
    const mapped = await gw.request("POST", "/v1/tokens", { body: { account: "romeo", resource: "my\u00A0phone" } });
    assert.equal(mapped.status, 201, mapped.text);
    assert.equal((jwt.decode(mapped.body.token) as jwt.JwtPayload).resource, "my phone");
    assert.equal((await get(mapped.body.token)).status, 200);
  });

  it("no session takes the resource the rooms use (rooms): what comes to it is the rooms'", async () => {
    const minted = await gw.request("POST", "/v1/tokens", { body: { account: "romeo", resource: "rooms" } });
    assert.deepEqual([minted.status, minted.body.code, minted.body.field], [400, "invalid-jid", "body.resource"], minted.text);
    assert.equal((await get(gw.token("romeo", { resource: "rooms" }))).status, 401, "a token that names it");
    const tok = gw.token("romeo");
    const polled = await gw.request("GET", "/v1/events?resource=rooms", { token: tok, headers: { accept: "application/json" } });
    assert.deepEqual([polled.status, polled.body.code, polled.body.field], [400, "invalid-jid", "querystring.resource"], polled.text);
    const set = await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": "rooms" } });
    assert.deepEqual([set.status, set.body.code, set.body.field], [400, "invalid-jid", "headers.balcony-resource"], set.text);
    // Another name, even close to it, is a session like any.
    const other = await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": "Rooms" } });
    assert.equal(other.status, 200, other.text);
    assert.equal((await get(gw.token("romeo", { resource: "rooms-phone" }))).status, 200);
  });

  it("no session takes a name the XMPP server spells otherwise (resourceprep, RFC 6122: ｐｈｏｎｅ is phone there): 400 invalid-jid naming its spelling", async () => {
    const minted = await gw.request("POST", "/v1/tokens", { body: { account: "romeo", resource: "ｐｈｏｎｅ" } });
    assert.deepEqual([minted.status, minted.body.code, minted.body.field, minted.body.resource], [400, "invalid-jid", "body.resource", "phone"], minted.text);
    assert.equal((await get(gw.token("romeo", { resource: "ｐｈｏｎｅ" }))).status, 401, "a token that names it");
    const tok = gw.token("romeo");
    const polled = await gw.request("GET", `/v1/events?resource=${encodeURIComponent("ｐｈｏｎｅ")}`, { token: tok, headers: { accept: "application/json" } });
    assert.deepEqual([polled.status, polled.body.code, polled.body.field, polled.body.resource], [400, "invalid-jid", "querystring.resource", "phone"], polled.text);
    const set = await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": encodeURIComponent("phone²") } });
    assert.deepEqual([set.status, set.body.code, set.body.field, set.body.resource], [400, "invalid-jid", "headers.balcony-resource", "phone2"], set.text);
    // The server's spelling is a session like any.
    assert.equal((await gw.request("PUT", "/v1/presence", { token: tok, body: {}, headers: { "balcony-resource": "phone2" } })).status, 200);
    assert.equal((await get(gw.token("romeo", { resource: "phone" }))).status, 200);
  });

  it("manages accounts: create (409 on repeat), list with cursor, delete", async () => {
    for (const lp of ["acc1", "acc2", "acc3"]) assert.equal((await gw.request("POST", "/v1/accounts", { body: { localpart: lp } })).status, 201);
    const dup = await gw.request("POST", "/v1/accounts", { body: { localpart: "acc1" } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, "account-exists");
    // Not a localpart (RFC 7622 §3.3), whichever way: one code, the field named.
    for (const localpart of ["has space", "", "x".repeat(1024), "é".repeat(512)]) {
      const bad = await gw.request("POST", "/v1/accounts", { body: { localpart } });
      assert.equal(bad.status, 400, `${JSON.stringify(localpart.slice(0, 20))} (${localpart.length} characters)`);
      assert.equal(bad.body.code, "invalid-jid", localpart.slice(0, 20));
      assert.equal(bad.body.field, "body.localpart", localpart.slice(0, 20));
    }
    const p1 = await gw.request("GET", "/v1/accounts?limit=2");
    assert.equal(p1.body.items.length, 2);
    // API.md's own spelling, `?cursor=&limit=`: empty parameters are absent ones (the first page, the default size).
    const spelled = await gw.request("GET", "/v1/accounts?cursor=&limit=");
    assert.equal(spelled.status, 200, spelled.text);
    assert.deepEqual(spelled.body.items.slice(0, 2), p1.body.items);
    assert.equal((await gw.request("GET", "/v1/accounts?cursor=&limit=2")).body.nextCursor, p1.body.nextCursor);
    const p2 = await gw.request("GET", `/v1/accounts?limit=2&cursor=${p1.body.nextCursor}`);
    const all = [...p1.body.items, ...p2.body.items].map((a: { jid: string }) => a.jid);
    assert.ok(all.includes(`acc2@${gw.domain}`) && all.includes(`acc3@${gw.domain}`), all.join());
    assert.equal((await gw.request("DELETE", "/v1/accounts/acc3")).status, 204);
    assert.equal((await gw.request("DELETE", "/v1/accounts/acc3")).status, 404);
    assert.equal((await get(gw.token("acc3"))).status, 404);
  });

  it("creates unknown accounts on first use with AUTO_PROVISION=true", async () => {
    // Prosody takes one connection per component domain, so the second gateway gets a server of its own.
    server2 = await startXmppServer();
    auto = await startTestGateway(server2, { AUTO_PROVISION: "true" });
    const r = await auto.request("GET", "/v1/sessions", { token: auto.token("newcomer") });
    assert.equal(r.status, 200);
    const list = await auto.request("GET", "/v1/accounts?limit=500");
    assert.ok(list.body.items.some((a: { jid: string }) => a.jid === `newcomer@${auto.domain}`));
  });
});

describe("auth with an ES256 public key (EC P-256)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const otherEc = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecPublic = ec.publicKey.export({ type: "spki", format: "pem" }).toString();
  const es256 = (claims: Record<string, unknown>, key = ec.privateKey) => jwt.sign({ exp: exp(), ...claims }, key, { algorithm: "ES256" });

  before(async () => {
    server = await startXmppServer();
    // The public key only: without JWT_SECRET no HS256 token can be valid on this gateway.
    gw = await startTestGateway(server, { JWT_PUBLIC_KEY: ecPublic, JWT_SECRET: "" });
    const created = await gw.request("POST", "/v1/accounts", { token: es256({ sub: "admin", scope: "admin" }), body: { localpart: "romeo" } });
    assert.equal(created.status, 201, created.text);
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  const get = (token: string | null) => gw.request("GET", "/v1/sessions", { token });

  it("accepts an ES256 token signed with the private key of JWT_PUBLIC_KEY", async () => {
    const token = es256({ sub: "romeo" });
    assert.equal(jwt.decode(token, { complete: true })?.header.alg, "ES256");
    const r = await get(token);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.items, []);
    assert.equal((await get(es256({ sub: `romeo@${gw.domain}` }))).status, 200, "sub as a bare JID");
    assert.equal((await get(es256({ sub: "ghost" }))).status, 404, "a valid token of an unknown account");
  });

  it("refuses ES256 signed with another EC key, HS256 tokens, and alg:none with 401", async () => {
    const cases: [string, string][] = [
      ["ES256 signed with another P-256 key", es256({ sub: "romeo" }, otherEc.privateKey)],
      ["ES256 admin token signed with another P-256 key", es256({ sub: "admin", scope: "admin" }, otherEc.privateKey)],
      ["HS256 with the test suite's JWT_SECRET (not configured here)", jwt.sign({ sub: "romeo", exp: exp() }, JWT_SECRET, { algorithm: "HS256" })],
      ["HS256 signed with the public key as the secret (key confusion)", jwt.sign({ sub: "romeo", exp: exp() }, ecPublic, { algorithm: "HS256" })],
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "romeo", exp: exp() })}.`],
      ["alg none, admin", `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "admin", exp: exp(), scope: "admin" })}.`],
      ["ES256 signature under an alg:none header", `${b64({ alg: "none", typ: "JWT" })}.${es256({ sub: "romeo" }).split(".").slice(1).join(".")}`],
    ];
    for (const [name, token] of cases) {
      const r = await get(token);
      assert.equal(r.status, 401, name);
      assert.equal(r.body.code, "unauthorized", name);
      assert.ok(!r.text.includes(token), `${name}: the token is not echoed`);
    }
    const admin = await gw.request("GET", "/v1/accounts", { token: es256({ sub: "admin", scope: "admin" }, otherEc.privateKey) });
    assert.equal(admin.status, 401, "no admin access with a foreign key");
  });

  it("answers POST /v1/tokens with 501 not-implemented: with no JWT_SECRET it has nothing to sign with (RFC 9110 §15.6.2)", async () => {
    const r = await gw.request("POST", "/v1/tokens", { token: es256({ sub: "admin", scope: "admin" }), body: { account: "romeo" } });
    assert.equal(r.status, 501, r.text);
    assert.equal(r.headers.get("content-type"), "application/problem+json; charset=utf-8");
    assert.equal(r.body.code, "not-implemented");
    assert.match(r.body.detail, /JWT_SECRET/);
    // The same route with a bad body is still 400: the 501 is the signing, not the route.
    assert.equal((await gw.request("POST", "/v1/tokens", { token: es256({ sub: "admin", scope: "admin" }), body: {} })).status, 400);
  });
});

describe("JWT_PUBLIC_KEY at start-up", () => {
  const pem = (k: ReturnType<typeof generateKeyPairSync>["publicKey"]) => k.export({ type: "spki", format: "pem" }).toString();
  const load = (key: string) => loadConfig({ XMPP_SECRET: "s", JWT_PUBLIC_KEY: key });
  const p384 = pem(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey);

  it("takes an RSA key and an EC key on P-256 (ES256 is ECDSA on P-256, RFC 7518 §3.4)", () => {
    for (const key of [pem(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey), pem(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey)]) {
      assert.equal(load(key).jwt.publicKey, key);
      assert.doesNotThrow(() => new Auth(load(key).jwt, "gw.localhost"));
    }
  });

  it("refuses an EC key on another curve, any other key type and a non-key with a ConfigError naming JWT_PUBLIC_KEY", () => {
    const cases: [string, string, RegExp][] = [
      ["P-384", p384, /P-256.*secp384r1/],
      ["P-521", pem(generateKeyPairSync("ec", { namedCurve: "P-521" }).publicKey), /P-256.*secp521r1/],
      ["secp256k1", pem(generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey), /P-256.*secp256k1/],
      ["Ed25519", pem(generateKeyPairSync("ed25519").publicKey), /ed25519/],
      ["not a key", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----", /not a PEM public key/],
    ];
    for (const [name, key, detail] of cases) {
      assert.throws(() => load(key), (err: unknown) => err instanceof ConfigError && err.variable === "JWT_PUBLIC_KEY" && err.message.startsWith("JWT_PUBLIC_KEY: ") && detail.test(err.message), name);
      assert.throws(() => new Auth({ secret: undefined, publicKey: key, issuer: undefined, audience: undefined }, "gw.localhost"), ConfigError, `${name}: Auth`);
    }
  });

  it("a P-384 key stops src/server.ts with exit code 2 and `configuration error: JWT_PUBLIC_KEY: …`", async () => {
    const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", XMPP_SECRET: "s", JWT_PUBLIC_KEY: p384,
      // Nowhere: should it get past the configuration, it must not start an embedded PostgreSQL.
      DATABASE_URL: "postgres://127.0.0.1:1/none" };
    const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: fileURLToPath(new URL("../../", import.meta.url)), env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /configuration error: JWT_PUBLIC_KEY: .*P-256/);
  });
});
