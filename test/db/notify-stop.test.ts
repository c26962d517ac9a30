// A notification listener stopped while it reconnects (the gateway shutting down just after
// PostgreSQL dropped its connection) keeps no connection: the one being made when stop() came is
// ended once it is up. A TCP relay holds the server's answers, so stop() lands mid-connect.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { LISTENER_APP, Notifications } from "../../src/db/notify.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { testPool } from "../helpers/database.js";

describe("a notification listener stopped while it reconnects", () => {
  let tdb: TestDatabase;
  let pool: pg.Pool;
  let relay: TcpRelay;
  let listener: Notifications;
  const logged: string[] = [];
  const listeners = async () =>
    (await pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", [LISTENER_APP])).rows.map((r) => r.pid);

  before(async () => {
    tdb = await createTestDatabase();
    pool = testPool(tdb.url, 2);
    relay = new TcpRelay(Number(new URL(tdb.url).port || 5432));
    const url = new URL(tdb.url);
    url.port = String(await relay.listen());
    listener = new Notifications(url.toString(), (msg) => void logged.push(msg));
  });
  after(async () => {
    await listener?.stop();
    relay?.close();
    await pool?.end();
    await tdb?.drop();
  });

  it("ends the connection it was making when stop() came", async () => {
    await listener.start();
    const [first] = await listeners();
    assert.ok(first, "listening");
    await pool.query("SELECT pg_terminate_backend($1)", [first]);
    await waitFor(async () => logged.some((m) => m.includes("reconnecting")), 5000, "the listener to see its connection lost");
    // The reconnect (a second after) reaches the server, whose answers the relay now holds: connect() waits.
    relay.hold(true);
    await waitFor(async () => (await listeners()).some((p) => p !== first), 10_000, "the reconnect's backend");
    await listener.stop();
    relay.hold(false);
    await waitFor(async () => (await listeners()).length === 0, 5000, "no listener left after stop()");
  });
});
