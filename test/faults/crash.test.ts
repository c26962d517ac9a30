// Gateway crash: SIGKILL the gateway twice while clients post with Idempotency-Key and retry.
// Each kill lands while accepted messages are still queued in Postgres (the gateway is frozen
// with SIGSTOP, Postgres is read, and the kill follows only if something is queued) and while
// requests are in flight (both checked after the kill, not assumed). After restarts, every message that got a 202 reaches the
// XMPP user (the outbox is in Postgres), no retried request produces a second message, and a
// resend after a crash between "written to the socket" and "recorded as sent" carries the same
// stanza id and origin-id.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import pg from "pg";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { JWT_SECRET, waitFor } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";
import { statusSql } from "../../src/db/message-status.js";
import { FAULT_KINDS } from "../helpers/servers.js";
import { comeOnline } from "../helpers/xmpp-world.js";

const KEYS = 300;
const WORKERS = 6;
const KILL_AT = [80, 200];
const sign = (claims: object) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });

/** The error code of a failed fetch (undici wraps the socket error in `cause`). */
function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

for (const kind of FAULT_KINDS) {
  describe(`gateway crash (${kind})`, () => {
    let server: XmppServer;
    let db: TestDatabase;
    let sql: pg.Client;
    let gp: GatewayProcess | null = null;
    let juliet: XmppUser;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      db = await createTestDatabase();
      juliet = await connectUser(server, "juliet", "pw", "c");
      await comeOnline(juliet);
    });
    after(async () => {
      await gp?.stop("SIGKILL");
      await sql?.end().catch(() => undefined);
      await juliet?.stop();
      await db?.drop();
      await server?.stop();
    });

    it("delivers every accepted message after SIGKILLs that land with messages queued and requests in flight, and retries never duplicate", async () => {
      const port = await freePort();
      gp = await startGatewayProcess(server, db.url, port);
      sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
      const url = gp.url;
      const created = await fetch(`${url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${sign({ sub: "admin", scope: "admin" })}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "romeo" }) });
      assert.equal(created.status, 201);
      const token = sign({ sub: "romeo" });
      const queuedIds = async (): Promise<string[]> => (await sql.query<{ id: string }>(`SELECT id FROM message m WHERE direction = 'out' AND ${statusSql("m")} = 'queued'`)).rows.map((r) => r.id);

      const ids = new Map<string, Set<string>>(); // key -> ids in 202 responses
      const replayed = new Set<string>(); // keys retried once more after a 202, as a client that lost the response would
      let accepted = 0;
      const failed = { refused: 0, interrupted: 0, http: 0 };
      const badHttp: string[] = []; // HTTP failures other than a 503 problem
      const deadline = Date.now() + 120_000;

      async function post(key: string): Promise<void> {
        for (;;) {
          if (Date.now() > deadline) throw new Error(`gave up on ${key}`);
          try {
            const r = await fetch(`${url}/v1/messages`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
              body: JSON.stringify({ to: "juliet@localhost", body: key }),
            });
            const text = await r.text();
            if (r.status === 202) {
              const body = JSON.parse(text) as { id: string };
              ids.set(key, (ids.get(key) ?? new Set()).add(body.id));
              accepted++;
              if (Number(key.slice(2)) % 10 !== 0 || replayed.has(key)) return;
              replayed.add(key);
              continue;
            }
            failed.http++;
            if (r.status !== 503 || !/problem\+json/.test(r.headers.get("content-type") ?? "")) badHttp.push(`${key}: ${r.status} ${r.headers.get("content-type")} ${text.slice(0, 200)}`);
          } catch (err) {
            // Refused: the gateway is down. Anything else (reset, socket closed): the kill cut a request in flight.
            if (errorCode(err) === "ECONNREFUSED") failed.refused++;
            else failed.interrupted++;
          }
          await new Promise((r) => setTimeout(r, 30));
        }
      }

      const keys = Array.from({ length: KEYS }, (_, i) => `c-${String(i).padStart(4, "0")}`);
      const queue = [...keys];
      const workers = Array.from({ length: WORKERS }, async () => {
        for (let key = queue.shift(); key; key = queue.shift()) await post(key);
      });
      const kills: { at: number; queuedBefore: number; queuedAtKill: string[]; interrupted: number }[] = [];
      const killer = (async () => {
        for (const at of KILL_AT) {
          await waitFor(() => accepted >= at, 60_000, `${at} accepted`);
          // Freeze the gateway (SIGSTOP: it runs no more code), look at Postgres, and kill it only
          // when an accepted message is still queued; otherwise let it run a moment and look again.
          let queuedBefore = 0;
          const give = Date.now() + 20_000;
          for (;;) {
            gp!.child.kill("SIGSTOP");
            await new Promise((r) => setTimeout(r, 20)); // statements already on their way to Postgres land
            queuedBefore = (await queuedIds()).length;
            if (queuedBefore > 0) break;
            gp!.child.kill("SIGCONT");
            if (Date.now() > give) throw new Error(`kill after ${at} accepted: never saw a queued message`);
            await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
          }
          const interruptedBefore = failed.interrupted;
          await gp!.stop("SIGKILL");
          // The gateway is dead: what is queued now is exactly what was queued when it died.
          const queuedAtKill = await queuedIds();
          await new Promise((r) => setTimeout(r, 150));
          gp = await startGatewayProcess(server, db.url, port);
          kills.push({ at, queuedBefore, queuedAtKill, interrupted: failed.interrupted - interruptedBefore });
        }
      })();
      await Promise.all([...workers, killer]);

      // Every key was eventually accepted, under one id; Postgres holds one message per key.
      assert.equal(kills.length, KILL_AT.length);
      for (const key of keys) assert.equal(ids.get(key)?.size, 1, `${key}: one id across all retries, got ${[...(ids.get(key) ?? [])].join(",")}`);
      const idOf = (key: string) => [...ids.get(key)!][0]!;
      const rows = (await sql.query<{ id: string; idempotency_key: string }>("SELECT id, idempotency_key FROM message WHERE direction = 'out'")).rows;
      assert.equal(rows.length, KEYS, "one message row per idempotency key");
      for (const r of rows) assert.equal(r.id, idOf(r.idempotency_key), `${r.idempotency_key}: the row is the message its 202s named`);

      // Each kill landed while accepted messages were queued, and cut requests in flight.
      const acceptedIds = new Set(keys.map(idOf));
      for (const k of kills) {
        assert.ok(k.queuedAtKill.length > 0, `kill after ${k.at} accepted: no message was queued when the gateway died`);
        for (const id of k.queuedAtKill) assert.ok(acceptedIds.has(id), `${id}, queued at the kill, is a message some request got a 202 for`);
        assert.ok(k.interrupted > 0, `kill after ${k.at} accepted: no request in flight was interrupted`);
      }
      assert.ok(failed.refused > 0, "requests were refused while the gateway was down");
      assert.deepEqual(badHttp, [], "a request that failed with an HTTP status got a 503 problem");

      const bodies = () => juliet.stanzas.filter((s) => s.is("message") && s.getChildText("body")?.startsWith("c-"));
      await waitFor(() => new Set(bodies().map((s) => s.getChildText("body"))).size >= KEYS, 30_000, "every accepted message delivered");
      // The sentinel: a message posted after all the others. One link, in order: once it is here,
      // any resend of an earlier message that was going to come has come.
      const marker = await fetch(`${gp!.url}/v1/messages`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ to: "juliet@localhost", body: "marker" }) });
      assert.equal(marker.status, 202);
      const markerId = ((await marker.json()) as { id: string }).id;
      await juliet.waitFor((s) => s.attrs.id === markerId, 15_000);
      await waitFor(async () => (await queuedIds()).length === 0, 15_000, "nothing left queued");

      const got = bodies();
      const knownKeys = new Set(keys);
      for (const s of got) assert.ok(knownKeys.has(s.getChildText("body")!), `unexpected message ${s.toString().slice(0, 200)}`);
      let dupes = 0;
      for (const key of keys) {
        const id = idOf(key);
        const copies = got.filter((s) => s.getChildText("body") === key);
        assert.ok(copies.length >= 1, `${key} lost`);
        // A copy beyond the first is a resend of a message the dead gateway wrote but had not recorded as sent: same stanza id, same origin-id.
        for (const [n, c] of copies.entries()) {
          assert.equal(c.attrs.id, id, `${key}: copy ${n + 1} of ${copies.length} carries the message's stanza id`);
          assert.equal(c.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, id, `${key}: copy ${n + 1} of ${copies.length} carries the message's origin-id`);
        }
        dupes += copies.length - 1;
      }
      const queuedAt = kills.map((k) => `${k.queuedAtKill.length} queued/${k.interrupted} interrupted at kill ${k.at}`).join(", ");
      console.log(
        `[crash ${kind}] ${KEYS} keys, ${KILL_AT.length} SIGKILLs (${queuedAt}), ${failed.refused + failed.interrupted + failed.http} failed attempts retried (${failed.interrupted} interrupted, ${failed.refused} refused, ${failed.http} HTTP 503), ${accepted} 202s, 0 lost, ${dupes} same-id resends`,
      );
    });
  });
}
