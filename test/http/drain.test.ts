// The drain's listener (src/http/drain.ts) on a real HTTP server, with its clients in another
// process: a connection the kernel completed while the server's event loop was busy, and not yet
// accepted when the drain began, is served; the listener closes once requests stop coming
// (health checks aside), and the drain ends when no connection is left.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type AddressInfo } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { HttpDrain } from "../../src/http/drain.js";

// The client: on each message, opens a connection, sends one request and reports the answer's
// status line, or the error that ended the connection.
const CLIENT = `
const net = require("node:net");
process.on("message", ({ port, path }) => {
  const s = net.connect(port, "127.0.0.1", () => s.write("GET " + path + " HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"));
  let data = "";
  let error;
  s.on("data", (d) => (data += d));
  s.on("error", (e) => (error = e.code));
  s.on("close", () => process.send(error ? { error } : { status: data.split("\\r\\n")[0] }));
});
process.send("ready");`;

/** Blocks the event loop, as a busy gateway's may be when the signal comes. */
function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

describe("HttpDrain: the listener", () => {
  let server: Server;
  let drain: HttpDrain;
  let port: number;
  let client: ChildProcess;

  before(async () => {
    server = createServer((req, res) => res.setHeader("connection", "close").end(req.url));
    drain = new HttpDrain(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
    client = spawn(process.execPath, ["-e", CLIENT], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await once(client, "message");
  });
  after(() => {
    client?.kill();
    server?.close();
  });

  const answer = () => once(client, "message").then(([m]) => m as { status?: string; error?: string });

  it("serves a connection completed but not yet accepted when the drain begins, closes the listener once requests stop (health checks aside), ends with no connection left", async () => {
    const quietMs = 1_000;
    const answered = answer();
    client.send({ port, path: "/queued" });
    // The client connects and sends while this process cannot accept; then the drain begins.
    busy(400);
    const started = performance.now();
    const drained = drain.drain(30_000, quietMs);
    assert.equal(server.listening, true, "the listener stays open while requests may still come");
    assert.deepEqual(await answered, { status: "HTTP/1.1 200 OK" }, "the queued connection is served, not reset");

    // A health check late in the quiet period is served, and does not make it start again.
    await sleep(quietMs * 0.8 - (performance.now() - started));
    const probe = answer();
    client.send({ port, path: "/readyz" });
    assert.deepEqual(await probe, { status: "HTTP/1.1 200 OK" }, "served: the listener is still open");
    assert.equal(await drained, 0, "no connection left");
    const ms = performance.now() - started;
    assert.ok(ms >= quietMs && ms < quietMs * 1.6, `the drain ended ${ms.toFixed(0)} ms after it began: ${quietMs} ms after the last request, not after the check`);
    assert.equal(server.listening, false);
    const refused = answer();
    client.send({ port, path: "/late" });
    assert.deepEqual(await refused, { error: "ECONNREFUSED" }, "after the drain a new connection is refused");
  });
});

describe("HttpDrain: the period", () => {
  it("ends when its period is over, a connection left idle and the listener closed (20 drains, each 25 ms)", async () => {
    // Seen in CI (stop 64's first run; the likely cause of stop 63's forced exit too): the period's
    // timer fired early (Node's timers are whole milliseconds from the loop's time), a check by the
    // clock found the period not over, and with the listener closed (quiet) and a connection idle,
    // nothing was left to wake the drain: it waited for that connection to close, past the forced exit.
    for (let i = 0; i < 20; i++) {
      const server = createServer((req, res) => res.end("ok"));
      const drain = new HttpDrain(server);
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const { port } = server.address() as AddressInfo;
      // A keep-alive client that stays: one request answered, the connection kept open.
      const socket = connect(port, "127.0.0.1");
      socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await once(socket, "data");
      const started = performance.now();
      const open = await Promise.race([drain.drain(25, 5), sleep(2_000).then(() => "hung" as const)]);
      const took = performance.now() - started;
      socket.destroy();
      server.closeAllConnections();
      server.close();
      assert.equal(open, 1, `drain ${i + 1}: ended ${Math.round(took)} ms after it began, with the idle connection left open`);
      assert.ok(took < 500, `drain ${i + 1} took ${Math.round(took)} ms`);
    }
  });
});
