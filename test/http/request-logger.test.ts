// Request loggers made on first use (src/http/request-logger.ts): nothing is made for a request
// that does not log, and what a request logs is what pino's child of the app's logger writes (its
// id, the level, the redaction).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/logger.js";
import { lazyRequestLogger } from "../../src/http/request-logger.js";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";

/** The app's real logger writing JSON lines into `lines`, counting the children made of it. */
function counted(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger(level, sink);
  const made = { children: 0 };
  logger.onChild = () => made.children++;
  return { logger, lines, made };
}

describe("request loggers", () => {
  it("make no child until something logs, then one child for every line", () => {
    const { logger, lines, made } = counted("info");
    const log = lazyRequestLogger(logger, { reqId: "req-7" }, {});
    assert.equal(made.children, 0);
    log.info({ route: "/v1/x" }, "hello");
    log.warn("again");
    assert.equal(made.children, 1);
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.level, l.msg, l.route]),
      [
        ["req-7", 30, "hello", "/v1/x"],
        ["req-7", 40, "again", undefined],
      ],
    );
  });

  it("keep the app logger's level and redaction", () => {
    const { logger, lines } = counted("warn");
    const log = lazyRequestLogger(logger, { reqId: "req-8" }, {});
    log.info("below the level");
    log.warn({ body: { token: "s3cret" } }, "at the level");
    assert.equal(log.level, "warn");
    assert.deepEqual(
      lines.map((l) => [l.msg, (l.body as { token?: string } | undefined)?.token]),
      [["at the level", "[redacted]"]],
    );
  });

  it("give children that carry the request's bindings and their own", () => {
    const { logger, lines } = counted("info");
    lazyRequestLogger(logger, { reqId: "req-9" }, {}).child({ stream: "s1" }).error("boom");
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.stream, l.msg]),
      [["req-9", "s1", "boom"]],
    );
  });
});

describe("request loggers in the app", () => {
  let server: XmppServer;
  let gw: TestGateway;
  const { logger, made } = counted("info");

  before(async () => {
    server = await startXmppServer();
    gw = await startTestGateway(server, { LOG_REQUESTS: "false" }, undefined, logger);
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  it("make none for requests that log nothing", async () => {
    await gw.createAccount("romeo");
    const tok = gw.token("romeo");
    const before = made.children;
    for (let i = 0; i < 10; i++) assert.equal((await gw.request("GET", "/v1/sessions", { token: tok })).status, 200);
    assert.equal((await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "hi" } })).status, 202);
    assert.equal(made.children, before, "a child logger was made for a request that logged nothing");
    // The count is live: a child of the same logger made now is counted.
    logger.child({ sentinel: true });
    assert.equal(made.children, before + 1);
  });
});
