// Two gateway instances on one database, one of which can be made deaf to the other's NOTIFYs on
// demand: its connections to PostgreSQL run through a relay (test/helpers/tcp-relay.ts) that holds
// what PostgreSQL sends its listening connection while deaf() runs, and releases it afterwards.
// A change the other instance commits meanwhile (an account deleted, or deleted and created
// again) is in the database but not yet in the deaf one's caches: the multi-instance audit's race,
// made deterministic.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, type TestGateway } from "./gateway.js";
import { TcpRelay } from "./tcp-relay.js";

export interface DeafPair {
  /** Started first: with XMPP_LINK_MODE=single, the link holder. */
  a: TestGateway;
  b: TestGateway;
  db: TestDatabase;
  /** A client of the test's own, straight to PostgreSQL. */
  sql: pg.Client;
  /** Runs `fn` while the deaf instance's listening connection hears nothing (what PostgreSQL sends it is held, then released). */
  deaf<T>(fn: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts `a`, then `b`, on a new database; `deafOne` names the one whose connections go through
 * the relay. Its listener's beats are held too while deaf: give both a long XMPP_LINK_LEASE_TIMEOUT
 * in `env` when a deaf() can last seconds, or the other ends that listener (src/db/notify.ts) and
 * its reconnect clears the caches the test wants stale.
 */
export async function startDeafPair(server: XmppServer, env: Record<string, string>, deafOne: "a" | "b"): Promise<DeafPair> {
  const db = await createTestDatabase();
  const url = new URL(db.url);
  const relay = new TcpRelay(Number(url.port || 5432));
  url.hostname = "127.0.0.1";
  url.port = String(await relay.listen());
  // The deaf one's listener: the connection whose startup message names its application_name (src/db/notify.ts).
  const seen = new WeakSet<Socket>();
  let listener: Socket | null = null;
  relay.tap = (chunk, client) => {
    if (seen.has(client)) return;
    seen.add(client);
    if (chunk.includes("balcony-listen")) listener = client;
  };
  const relayed: TestDatabase = { ...db, url: url.toString(), drop: async () => undefined };
  let a: TestGateway | undefined;
  let b: TestGateway | undefined;
  let sql: pg.Client | undefined;
  try {
    a = await startTestGateway(server, env, deafOne === "a" ? relayed : db);
    b = await startTestGateway(server, env, deafOne === "b" ? relayed : db);
    assert.ok(listener, `${deafOne}'s listening connection goes through the relay`);
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  } catch (err) {
    // Nothing is returned to stop: what started is stopped here.
    await sql?.end().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    await a?.stop().catch(() => undefined);
    relay.close();
    await db.drop();
    throw err;
  }
  const [first, second, client] = [a, b, sql];
  return {
    a: first,
    b: second,
    db,
    sql: client,
    async deaf(fn) {
      const held = listener!;
      relay.holdClient(held, true);
      try {
        return await fn();
      } finally {
        relay.holdClient(held, false);
      }
    },
    async stop() {
      await client.end();
      await second.stop();
      await first.stop();
      relay.close();
      await db.drop();
    },
  };
}

/**
 * The world of a describe() about what the link holder does before it hears the other instance's
 * change, set up before its tests and stopped after them: an XMPP server of `kind`, real users of
 * it (`users`: name to resource, password "pw-<name>"; `w.<name>`) connected and available, and a deaf pair
 * whose A holds the link (XMPP_LINK_MODE=single) and is the deaf one, with a lease long enough
 * that a deaf listener's held beats do not end it.
 */
export function deafLinkWorld<N extends string>(kind: XmppServerKind, users: Record<N, string>) {
  const w = {} as { server: XmppServer; p: DeafPair } & Record<N, XmppUser>;
  const online = w as Record<N, XmppUser>;
  before(async () => {
    w.server = await startXmppServer(kind);
    for (const name of Object.keys(users)) await w.server.registerUser(name, `pw-${name}`);
    w.p = await startDeafPair(w.server, { XMPP_LINK_MODE: "single", XMPP_LINK_LEASE_TIMEOUT: "1h" }, "a");
    for (const [name, resource] of Object.entries(users) as [N, string][]) {
      online[name] = await connectUser(w.server, name, `pw-${name}`, resource);
      await online[name].sendPresence();
    }
  });
  after(async () => {
    // Each stopped even if another's stop fails (a process left running would hold the run open);
    // the first failure is still the hook's.
    const failed: unknown[] = [];
    const stop = (s: { stop(): Promise<unknown> } | undefined) => s?.stop().catch((err: unknown) => void failed.push(err));
    for (const name of Object.keys(users) as N[]) await stop(online[name]);
    await stop(w.p);
    await stop(w.server);
    if (failed.length > 0) throw failed[0];
  });
  return w;
}
