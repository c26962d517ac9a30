// The production path (issue 14, README "Deploying"): a clean clone of this repository is built
// as a deployment would build it (`npm ci && npm run build`, which generates the Prisma client),
// and the built server is started as `npm start` runs it (the clone's start script: `node
// --no-memory-reducer dist/server.js`) against a real Prosody and PostgreSQL: it migrates the empty
// database, takes the component link, and a message posted to it reaches a real XMPP user.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import jwt from "jsonwebtoken";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { JWT_SECRET, freePort, startArgs, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const sign = (claims: object) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 600, ...claims }, JWT_SECRET, { algorithm: "HS256" });

describe("production build from a clean clone", () => {
  let dir: string;
  let server: XmppServer;
  let db: TestDatabase;
  let juliet: XmppUser;
  let gp: GatewayProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "balcony-build-"));
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw-juliet");
    juliet = await connectUser(server, "juliet", "pw-juliet", "prod");
    await juliet.sendPresence();
    db = await createTestDatabase();
  });
  after(async () => {
    await gp?.stop();
    await juliet?.stop();
    await db?.drop();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("npm ci && npm run build, then the built server migrates, links and delivers", { timeout: 300_000 }, async () => {
    const clone = join(dir, "balcony");
    await run("git", ["clone", "-q", ROOT, clone]);
    // Offline machines (this testbed) name Prisma's schema engine; scripts/prisma-generate.sh finds
    // the testbed's stand-in beside the repository, so the clone gets the same neighbour.
    const shared = resolve(ROOT, "../shared");
    if (existsSync(shared)) await run("ln", ["-s", shared, join(dir, "shared")]);
    const env = { ...process.env, CI: "true" };
    await run("npm", ["ci", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: clone, env, maxBuffer: 64 << 20 });
    const build = await run("npm", ["run", "build"], { cwd: clone, env, maxBuffer: 64 << 20 });
    assert.match(build.stdout + build.stderr, /Generated Prisma Client/);
    assert.ok(existsSync(join(clone, "dist/server.js")), "dist/server.js built");

    gp = await startGatewayProcess(server, db.url, await freePort(), {}, { run: { cwd: clone, args: startArgs(clone) } });
    const created = await fetch(`${gp.url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${sign({ sub: "admin", scope: "admin" })}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "romeo" }) });
    assert.equal(created.status, 201, await created.text());
    const sent = await fetch(`${gp.url}/v1/messages`, { method: "POST", headers: { authorization: `Bearer ${sign({ sub: "romeo" })}`, "content-type": "application/json" }, body: JSON.stringify({ to: "juliet@localhost", body: "built and running" }) });
    assert.equal(sent.status, 202, await sent.text());
    const got = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === "built and running", 20_000);
    assert.equal(got.attrs.from, `romeo@${server.componentDomain}`);
    // The demo page's static files are part of the build (copied to dist/http/demo/).
    const demo = await fetch(`${gp.url}/demo/`);
    assert.equal(demo.status, 200);
    assert.match(await demo.text(), /<title>Balcony demo<\/title>/);
    assert.equal((await fetch(`${gp.url}/demo/demo.js`)).status, 200);
    assert.equal(await gp.stop("SIGTERM"), "0", `the built server stops cleanly on SIGTERM:\n${gp.output()}`);
    gp = undefined;
    // The bin runs through its shebang, as an installed `balcony` does.
    await chmod(join(clone, "dist/cli.js"), 0o755);
    const help = await run(join(clone, "dist/cli.js"), ["--help"], { cwd: clone, env });
    assert.match(help.stdout, /\bstart\b/, help.stdout);
  });
});
