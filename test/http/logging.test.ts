// Structured logs with request logging and debug level on: tokens and secrets never appear,
// whatever the request (valid token, bad token, errors, token minting).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/logger.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { JWT_SECRET, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import jwt from "jsonwebtoken";
import { createTestDatabase } from "../../scripts/harness/database.js";
import { freePort, startGatewayProcess } from "../../scripts/harness/gateway-process.js";
import { readdirSync } from "node:fs";
import pg from "pg";
import { LOCK_KEY, MIGRATIONS_DIR } from "../../src/db/migrate.js";

describe("logging", () => {
  let server: XmppServer;
  let gw: TestGateway;
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });

  before(async () => {
    server = await startXmppServer();
    gw = await startTestGateway(server, { LOG_LEVEL: "trace", LOG_REQUESTS: "true" }, undefined, createLogger("trace", sink));
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("writes JSON request logs that contain no token, JWT secret or component secret", async () => {
    await gw.createAccount("romeo");
    const tok = gw.token("romeo");
    const minted = await gw.request("POST", "/v1/tokens", { body: { account: "romeo" } });
    assert.equal(minted.status, 201);
    await gw.request("GET", "/v1/sessions", { token: tok });
    await gw.request("GET", "/v1/sessions", { token: `${tok}x` });
    await gw.request("POST", "/v1/messages", { token: tok, body: { to: "bad jid@@", body: "x" } });
    await gw.request("GET", "/v1/messages/not-a-uuid", { token: tok, headers: { cookie: `session=${tok}` } });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(lines.length > 10, `request logs were written (${lines.length})`);
    for (const l of lines) JSON.parse(l); // structured: every line is JSON
    const all = lines.join("\n");
    assert.match(all, /"url":"\/v1\/sessions"/, "requests are logged");
    for (const [what, secret] of [
      ["admin token", gw.adminToken],
      ["user token", tok],
      ["minted token", minted.body.token as string],
      ["JWT secret", JWT_SECRET],
      ["component secret", server.componentSecret],
      ["token signature", tok.split(".")[2]!],
    ] as const) {
      assert.ok(!all.includes(secret), `${what} appears in the logs`);
    }
  });
});

describe("logging, start-up phases (a gateway process)", () => {
  it("says as it begins and ends each slow phase, with durations: migrations (and waiting for another instance's), the component link, listening", async () => {
    const server = await startXmppServer();
    const db = await createTestDatabase();
    // Another process (an instance starting, `balcony migrate`) is migrating: this one must say it waits rather than seem to hang.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    await other.query("SELECT pg_advisory_lock($1)", [LOCK_KEY]);
    const starting = startGatewayProcess(server, db.url, await freePort(), { LOG_LEVEL: "info" });
    await waitFor(async () => (await other.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted", [LOCK_KEY])).rowCount === 1, 30_000, "the gateway waiting for the migration lock");
    await other.query("SELECT pg_advisory_unlock($1)", [LOCK_KEY]);
    await other.end();
    const gp = await starting;
    try {
      const entries = gp
        .output()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown }); // JSON by default
      const at = (msg: string) => {
        const i = entries.findIndex((e) => e.msg === msg);
        assert.ok(i >= 0, `"${msg}" logged:\n${gp.output()}`);
        assert.equal(entries[i]!.level, 30, `"${msg}" at info`);
        return i;
      };
      const phases = ["applying database migrations", "another process is applying migrations: waiting for it", "database migrations applied", "connecting to XMPP server", "component connected", "balcony listening"];
      const order = phases.map(at);
      assert.deepEqual(order, [...order].sort((x, y) => x - y), `in this order: ${phases.join(", ")}\n${gp.output()}`);
      const [, , applied, connecting, connected, listening] = order.map((i) => entries[i]!);
      const shipped = readdirSync(MIGRATIONS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).length;
      assert.equal(applied!.applied, shipped, "how many migrations were applied");
      assert.equal((applied!.migrations as string[]).length, shipped);
      assert.deepEqual([connecting!.service, connecting!.domain], [server.componentService, server.componentDomain], "where it connects");
      for (const e of [applied!, connected!, listening!]) assert.ok(typeof e.ms === "number" && e.ms >= 0, `"${e.msg}" has its duration: ${JSON.stringify(e)}`);
      assert.ok((listening!.ms as number) >= (applied!.ms as number), "the whole start-up takes at least its migrations");
    } finally {
      assert.equal(await gp.stop("SIGTERM"), "0");
      await db.drop();
      await server.stop();
    }
  });
});

describe("logging, LOG_FORMAT=pretty (a gateway process, as a person runs it)", () => {
  it("writes lines for a person (no JSON, no colour in a pipe) that still hold no token or secret", async () => {
    const server = await startXmppServer();
    const db = await createTestDatabase();
    const gp = await startGatewayProcess(server, db.url, await freePort(), { LOG_FORMAT: "pretty", LOG_LEVEL: "info", LOG_REQUESTS: "true" });
    try {
      const token = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 600 }, JWT_SECRET, { algorithm: "HS256" });
      const r = await fetch(`${gp.url}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      await waitFor(async () => gp.output().includes("/v1/accounts"), 5000, "the request logged");
      const lines = gp.output().split("\n").filter(Boolean);
      assert.ok(lines.length >= 2, gp.output());
      const json = lines.filter((l) => {
        try {
          return typeof JSON.parse(l) === "object";
        } catch {
          return false;
        }
      });
      assert.deepEqual(json, [], "no JSON lines");
      assert.match(gp.output(), /\] INFO: applying database migrations\n[\s\S]*\] INFO: component connected\n\s+part: "xmpp"\n\s+ms: \d+\n/, "the start-up phases as a person reads them");
      assert.match(gp.output(), /\] INFO: incoming request\n(\s+.*\n)*?\s+"url": "\/v1\/accounts"/, "the request as a person reads it");
      assert.ok(!gp.output().includes("\u001b["), "no colour codes when stdout is not a terminal");
      for (const secret of [token, JWT_SECRET, server.componentSecret]) assert.ok(!gp.output().includes(secret), "a secret reached the log");
    } finally {
      assert.equal(await gp.stop("SIGTERM"), "0");
      await db.drop();
      await server.stop();
    }
  });

  it("refuses an unknown LOG_FORMAT at start-up, naming it", async () => {
    const server = await startXmppServer();
    const db = await createTestDatabase();
    try {
      await assert.rejects(startGatewayProcess(server, db.url, await freePort(), { LOG_FORMAT: "fancy" }), /LOG_FORMAT/);
    } finally {
      await db.drop();
      await server.stop();
    }
  });
});
