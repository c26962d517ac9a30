// SIGTERM under keep-alive load, the lame-duck drain (README "Deploying"): a real gateway process
// and a real Prosody; eight undici clients, each on its own keep-alive connection, post messages
// with no Idempotency-Key as fast as they can. A client whose request failed on the wire (undici
// UND_ERR_SOCKET "other side closed", ECONNRESET) cannot tell whether its message was taken; one
// refused a connection knows that nothing was sent. A client told `Connection: close` goes to
// another instance, as behind a balancer. So: not one socket error, every client's last answer
// says `Connection: close`, every 202 is in the database, a connection still open during the
// drain reads /readyz 503 "stopping" (and that check does not hold the listener open), and the
// process exits 0, before the drain period is over once requests stopped and its last connection
// has gone. test/http/drain.test.ts has the new connection that came as the signal did.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { Client } from "undici";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";
import { ADMIN_TOKEN, sign } from "../../scripts/harness/cluster.js";
import { waitFor } from "../helpers/gateway.js";

const CLIENTS = 8;
/** Long, so that the exit time shows the drain ending early once no connection is left. */
const DRAIN = "20s";

interface Outcome {
  client: number;
  start: number;
  end: number;
  /** The HTTP status, or null when the request got no answer. */
  status: number | null;
  /** The answer's Connection header. */
  connection?: string;
  id?: string;
  /** The error's code, when the request got no answer. */
  error?: string;
}

/** What a request that got no answer failed with: undici's code, or the code of its cause. */
function errorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.cause?.code ?? e.code ?? String(err);
}

/** A refused connection: the request was never sent, so the client knows it was not taken. */
const refused = (o: Outcome) => o.error === "ECONNREFUSED";

describe("SIGTERM under keep-alive load: the drain", () => {
  let server: XmppServer;
  let db: TestDatabase;
  let gp: GatewayProcess | null = null;

  before(async () => {
    server = await startXmppServer("prosody");
    await server.registerUser("juliet", "pw");
    db = await createTestDatabase();
  });
  after(async () => {
    await gp?.stop("SIGKILL");
    await db?.drop();
    await server?.stop();
  });

  it("no socket error at any client, every 202 stored, /readyz 503 stopping on an open connection, exit 0 once the connections are gone", async () => {
    gp = await startGatewayProcess(server, db.url, await freePort(), { SHUTDOWN_DRAIN: DRAIN });
    const url = gp.url;
    // On a connection closed after it: the test's open connections are the clients' below.
    const admin = new Client(url);
    const created = await admin.request({ path: "/v1/accounts", method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN()}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "romeo" }) });
    assert.equal(created.statusCode, 201);
    await created.body.dump();
    await admin.close();
    const token = sign({ sub: "romeo" });

    const outcomes: Outcome[] = [];
    let stop = false;
    const poster = async (c: number) => {
      // One keep-alive connection per client, reused request after request, as undici does.
      const client = new Client(url, { pipelining: 1 });
      try {
        for (let n = 0; !stop; n++) {
          const o: Outcome = { client: c, start: Date.now(), end: 0, status: null };
          try {
            const r = await client.request({
              path: "/v1/messages",
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: JSON.stringify({ to: "juliet@localhost", body: `c${c}-${n}` }),
            });
            o.status = r.statusCode;
            o.connection = String(r.headers.connection ?? "");
            const body = (await r.body.json()) as { id?: string };
            if (o.status === 202) o.id = body.id;
          } catch (err) {
            o.error = errorCode(err);
          }
          o.end = Date.now();
          outcomes.push(o);
          // Told to close its connection, a client goes to another instance (as a load balancer
          // would send it): it sends no more here. An error ends it too; the test counts it.
          if (o.error || o.connection === "close") break;
        }
      } finally {
        await client.destroy();
      }
    };

    // An idle keep-alive connection, opened before the signal and used again during the drain.
    const probe = new Client(url, { pipelining: 1 });
    try {
      const first = await probe.request({ path: "/readyz", method: "GET" });
      assert.equal(first.statusCode, 200);
      await first.body.dump();

      const clients = Array.from({ length: CLIENTS }, (_, c) => poster(c));
      await waitFor(() => outcomes.filter((o) => o.status === 202).length >= 200, 30_000, "load under way");
      const sigtermAt = Date.now();
      const exited = gp.stop("SIGTERM");
      await sleep(200);
      let readyz: { status: number; connection: string; body: unknown } | { error: string };
      try {
        const r = await probe.request({ path: "/readyz", method: "GET" });
        readyz = { status: r.statusCode, connection: String(r.headers.connection ?? ""), body: await r.body.json() };
      } catch (err) {
        readyz = { error: errorCode(err) };
      }
      const exit = await exited;
      const exitMs = Date.now() - sigtermAt;
      gp = null;
      stop = true;
      await Promise.all(clients);

      const accepted = outcomes.filter((o) => o.status === 202);
      const socketErrors = outcomes.filter((o) => o.error !== undefined && !refused(o));
      const otherAnswers = outcomes.filter((o) => o.status !== null && o.status !== 202);
      const inFlight = outcomes.filter((o) => o.start < sigtermAt && o.end > sigtermAt);
      const afterSignal = accepted.filter((o) => o.start >= sigtermAt);
      const lastAnswers = Array.from({ length: CLIENTS }, (_, c) => outcomes.filter((o) => o.client === c && o.status !== null).at(-1));
      console.log(
        `[shutdown-drain] exit ${exit} ${exitMs} ms after SIGTERM (SHUTDOWN_DRAIN ${DRAIN}); ${outcomes.length} POSTs from ${CLIENTS} keep-alive clients: ` +
          `${accepted.length} got 202 (${inFlight.length} in flight at the signal, ${afterSignal.length} sent after it), ${socketErrors.length} socket errors ` +
          `${JSON.stringify(socketErrors.map((o) => o.error))}, ${outcomes.filter(refused).length} refused connections, ${otherAnswers.length} other answers; ` +
          `/readyz during the drain: ${JSON.stringify(readyz)}`,
      );

      const ids = accepted.map((o) => o.id!);
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      const stored = (await c.query<{ n: string }>(`SELECT count(*) AS n FROM message WHERE id = ANY($1::uuid[])`, [ids])).rows[0]!.n;
      await c.end();

      assert.deepEqual(
        socketErrors.map((o) => `client ${o.client}: ${o.error}`),
        [],
        "no request failed on the wire: each got an answer, or was refused a connection (never sent)",
      );
      assert.deepEqual(otherAnswers.map((o) => o.status), [], "every answer was a 202");
      assert.equal(exit, "0", "the process exited with code 0");
      assert.ok(inFlight.length > 0, "requests were in flight when SIGTERM was sent");
      assert.equal(new Set(ids).size, ids.length);
      assert.equal(Number(stored), ids.length, "every 202 is stored");
      for (const [c, last] of lastAnswers.entries()) assert.equal(last?.connection, "close", `client ${c}: its last answer told it to close the connection`);
      assert.ok("status" in readyz, `/readyz answered on the connection kept open: ${JSON.stringify(readyz)}`);
      assert.equal(readyz.status, 503);
      assert.equal((readyz.body as { status?: string }).status, "stopping");
      assert.equal(readyz.connection, "close");
      assert.ok(exitMs < 10_000, `the drain ended once no connection was open: exit ${exitMs} ms after SIGTERM, drain period ${DRAIN}`);
    } finally {
      await probe.destroy();
    }
  });

  it("run by the tsx CLI (npm run cli -- start), SIGTERM drains rather than kills; a second signal ends the drain at once, exit 0", async () => {
    // tsx relays a signal to the gateway and kills it 30 ms later unless the gateway's process still
    // has tsx's own (hidden) listener: serve.ts must not remove it. On a loaded machine the
    // listener's answer can miss those 30 ms, and tsx kills a gateway that has it (a CI run saw
    // exit 143): such a start is tried again, 3 times at most. Without the listener every start is killed.
    const killed: string[] = [];
    for (;;) {
      const tsx = await startGatewayProcess(server, db.url, await freePort(), { SHUTDOWN_DRAIN: "30s", LOG_LEVEL: "info" }, { run: { cwd: process.cwd(), args: ["node_modules/tsx/dist/cli.mjs", "src/server.ts"] } });
      const exit = new Promise<string>((resolve) => tsx.child.once("exit", (code, sig) => resolve(sig ?? String(code))));
      // A keep-alive connection left open holds the drain for its whole period.
      const idle = new Client(tsx.url);
      const r = await idle.request({ path: "/healthz", method: "GET" });
      await r.body.dump();
      tsx.child.kill("SIGTERM");
      await sleep(1500);
      if (tsx.child.exitCode !== null) {
        killed.push(`exit ${tsx.child.exitCode} (${tsx.output().slice(-300)})`);
        await idle.close().catch(() => undefined);
        assert.ok(killed.length < 3, `still draining 1.5 s after SIGTERM, not killed: killed at each of 3 starts: ${killed.join("; ")}`);
        continue;
      }
      const second = Date.now();
      tsx.child.kill("SIGTERM");
      assert.equal(await exit, "0", tsx.output().slice(-600));
      const took = Date.now() - second;
      assert.ok(took < 8000, `exited ${took} ms after the second signal, not at the end of the 30 s drain`);
      assert.match(tsx.output(), /second signal: ending the drain now/);
      await idle.close().catch(() => undefined);
      return;
    }
  });
});
