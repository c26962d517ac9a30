// Postgres crash: the postmaster of the gateway's database is SIGKILLed (no shutdown, crash
// recovery on restart) while clients post messages, and they keep posting through the outage.
// Meanwhile every request is answered within a bound, with a 503 problem; after Postgres comes
// back the gateway recovers by itself, and every POST that got a 202, before or after the crash,
// ends `sent` and reaches the XMPP user with its own id: none lost. On Prosody and ejabberd.
// Uses a PostgreSQL of its own (embedded, on a free port), so killing it disturbs no other test.
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { freePort } from "../../scripts/harness/gateway-process.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { startEmbeddedPostgresProcess, type EmbeddedPostgresProcess } from "../helpers/embedded-postgres-process.js";
import { statusSql } from "../../src/db/message-status.js";
import { FAULT_KINDS } from "../helpers/servers.js";
import { comeOnline } from "../helpers/xmpp-world.js";

const CLIENTS = 4;
/** No request may take longer than this, outage or not (the pool gives up connecting after 5 s). */
const ANSWER_WITHIN_MS = 10_000;
const OUTAGE_MS = 3000;

interface Attempt {
  key: string;
  phase: "before" | "outage" | "after";
  start: number;
  ms: number;
  status: number | null;
  contentType: string | null;
  body: { id?: string; code?: string } | undefined;
  error?: string;
}

for (const kind of FAULT_KINDS) {
  describe(`postgres crash (${kind})`, () => {
    let dir: string;
    let port: number;
    let pgp: EmbeddedPostgresProcess | null = null;
    let server: XmppServer;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "balcony-pg-crash-"));
      await chmod(dir, 0o755);
      port = await freePort();
      pgp = await startEmbeddedPostgresProcess(join(dir, "data"), port);
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      gw = await startTestGateway(server, {}, { url: pgp.url, name: "balcony", drop: async () => undefined });
      juliet = await connectUser(server, "juliet", "pw", "k");
      await comeOnline(juliet);
    });
    after(async () => {
      await juliet?.stop();
      await gw?.stop();
      await pgp?.stop();
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it("SIGKILLed under load: 503 problems within a bound during the outage, then every 202 is sent and delivered with its own id", async () => {
      await gw.createAccount("romeo");
      const tok = gw.token("romeo");
      const dataDir = join(dir, "data");
      let phase: Attempt["phase"] = "before";
      let stop = false;
      let inFlight = 0;
      const attempts: Attempt[] = [];
      const idsOf = new Map<string, Set<string>>();

      // Each client posts key after key; a key is retried (same Idempotency-Key) until it gets its
      // 202, as a client facing 503s would, and a client stops only between keys.
      const client = async (c: number) => {
        for (let n = 0; !stop; n++) {
          const key = `pc-${c}-${String(n).padStart(4, "0")}`;
          for (;;) {
            const a: Attempt = { key, phase, start: Date.now(), ms: 0, status: null, contentType: null, body: undefined };
            inFlight++;
            try {
              const r = await fetch(`${gw.url}/v1/messages`, {
                method: "POST",
                headers: { authorization: `Bearer ${tok}`, "content-type": "application/json", "idempotency-key": key },
                body: JSON.stringify({ to: "juliet@localhost", body: key }),
                signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
              });
              a.status = r.status;
              a.contentType = r.headers.get("content-type");
              a.body = (await r.json().catch(() => undefined)) as Attempt["body"];
            } catch (err) {
              a.error = (err as Error).name === "TimeoutError" ? "timeout" : String((err as { cause?: { code?: string } }).cause?.code ?? err);
            } finally {
              inFlight--;
              a.ms = Date.now() - a.start;
              attempts.push(a);
            }
            if (a.status === 202) {
              idsOf.set(key, (idsOf.get(key) ?? new Set()).add(String(a.body?.id)));
              break;
            }
            await sleep(50);
          }
        }
      };
      const accepted = () => attempts.filter((a) => a.status === 202).length;
      const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));

      await waitFor(() => accepted() >= 60, 30_000, "60 accepted before the crash");
      const inFlightAtKill = inFlight;
      const killedPid = await pgp!.crash();
      pgp = null;
      const killedAt = Date.now();
      phase = "outage";
      await sleep(OUTAGE_MS);
      const ready = await gw.request("GET", "/readyz", { token: null });
      assert.deepEqual([ready.status, ready.body?.database], [503, "down"], "/readyz during the outage");

      // Postgres again, on the same data (crash recovery); retried while the killed cluster's last
      // processes let go of its shared memory.
      const restartBy = Date.now() + 60_000;
      for (;;) {
        try {
          pgp = await startEmbeddedPostgresProcess(dataDir, port);
          break;
        } catch (err) {
          if (Date.now() > restartBy) throw err;
          await sleep(500);
        }
      }
      const outageMs = Date.now() - killedAt;
      phase = "after";
      await waitFor(async () => (await gw.request("GET", "/readyz", { token: null })).status === 200, 30_000, "ready again without a gateway restart");
      const acceptedBeforeRecovery = accepted();
      await waitFor(() => accepted() >= acceptedBeforeRecovery + 60, 30_000, "60 more accepted after the restart");
      stop = true;
      await Promise.all(clients);

      // Every answer came within the bound; what was not a 202 was a 503 database-unavailable problem.
      const slowest = Math.max(...attempts.map((a) => a.ms));
      const complaints = attempts
        .filter((a) => a.status !== 202)
        .filter((a) => !(a.status === 503 && /^application\/problem\+json/.test(a.contentType ?? "") && a.body?.code === "database-unavailable"))
        .map((a) => `${a.key} (${a.phase}, ${a.ms} ms): ${a.error ?? `${a.status} ${a.contentType} ${JSON.stringify(a.body)}`}`);
      assert.deepEqual(complaints, [], "every request was answered within the bound, with a 202 or a 503 problem");
      const outage503 = attempts.filter((a) => a.status === 503 && a.phase === "outage").length;
      assert.ok(inFlightAtKill > 0, "POSTs were in flight when Postgres was killed");
      assert.ok(outage503 > 0, "posts during the outage got 503 problems");
      const acceptedKeys = [...idsOf.keys()];
      const before = attempts.filter((a) => a.status === 202 && a.phase === "before").length;
      const acceptedDuring = attempts.filter((a) => a.status === 202 && a.phase === "outage").length;
      const afterCount = attempts.filter((a) => a.status === 202 && a.phase === "after").length;
      assert.ok(before >= 60 && afterCount >= 60, `202s before (${before}) and after (${afterCount}) the crash`);
      for (const [key, ids] of idsOf) assert.equal(ids.size, 1, `${key}: one id across all its 202s, got ${[...ids].join(",")}`);
      const idOf = (key: string) => [...idsOf.get(key)!][0]!;

      // Postgres holds exactly the accepted messages, each under the id its 202s named, all sent.
      const sql = new pg.Client({ connectionString: pgp!.url });
      await sql.connect();
      try {
        const rows = (await sql.query<{ id: string; idempotency_key: string }>("SELECT id, idempotency_key FROM message WHERE direction = 'out'")).rows;
        assert.equal(rows.length, acceptedKeys.length, "one message row per accepted key, no other");
        for (const r of rows) assert.equal(r.id, idOf(r.idempotency_key), `${r.idempotency_key}: the row is the message its 202 named`);
        await waitFor(async () => (await sql.query(`SELECT 1 FROM message m WHERE direction = 'out' AND ${statusSql("m")} <> 'sent'`)).rowCount === 0, 40_000, "every accepted message recorded as sent").catch(async (err: unknown) => {
          const left = (await sql.query<{ idempotency_key: string; status: string }>(`SELECT idempotency_key, ${statusSql("m")} AS status FROM message m WHERE direction = 'out' AND ${statusSql("m")} <> 'sent' ORDER BY seq`)).rows;
          throw new Error(`${String(err)}: ${left.length} not sent, e.g. ${left.slice(0, 8).map((r) => `${r.idempotency_key}=${r.status}`).join(" ")}`);
        });
      } finally {
        await sql.end();
      }
      // The API agrees.
      for (const key of acceptedKeys) {
        const v = await gw.request("GET", `/v1/messages/${idOf(key)}`, { token: tok });
        assert.equal(v.body?.status, "sent", `${key}: GET says ${v.status} ${v.text.slice(0, 120)}`);
      }

      // The sentinel: once it has arrived, everything sent before it has.
      const marker = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: "marker" } });
      assert.equal(marker.status, 202, marker.text);
      await juliet.waitFor((s) => s.attrs.id === marker.body.id, 15_000);
      const got = juliet.stanzas.filter((s) => s.is("message") && s.getChildText("body")?.startsWith("pc-"));
      for (const s of got) assert.ok(idsOf.has(s.getChildText("body")!), `a message no 202 named: ${s.toString().slice(0, 200)}`);
      let dupes = 0;
      for (const key of acceptedKeys) {
        const copies = got.filter((s) => s.getChildText("body") === key);
        assert.ok(copies.length >= 1, `${key} (${idOf(key)}) lost`);
        for (const c of copies) {
          assert.equal(c.attrs.id, idOf(key), `${key}: delivered with its own id`);
          assert.equal(c.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, idOf(key), `${key}: and its own origin-id`);
        }
        dupes += copies.length - 1;
      }
      const failedAttempts = attempts.filter((a) => a.status !== 202).length;
      console.log(
        `[postgres-crash ${kind}] postmaster ${killedPid} SIGKILLed with ${inFlightAtKill} POSTs in flight; down ${outageMs} ms; ${attempts.length} POSTs from ${CLIENTS} clients: ${acceptedKeys.length} keys accepted (${before} 202s before the crash, ${acceptedDuring} while it was being restarted, ${afterCount} after), ${failedAttempts} answered 503 database-unavailable and retried (${outage503} during the outage), slowest answer ${slowest} ms; all sent and delivered with their own id, 0 lost, ${dupes} same-id resends`,
      );
    });
  });
}
