// Gateway crash: SIGKILL the gateway twice while clients post with Idempotency-Key and retry.
// After restarts, every message that got a 202 reaches the XMPP user (the outbox is in
// Postgres), no retried request produces a second message, and a resend after a crash between
// "written to the socket" and "recorded as sent" carries the same stanza id and origin-id.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { JWT_SECRET, waitFor } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";

const KINDS = (process.env.FAULT_SERVERS ?? "prosody,ejabberd").split(",") as XmppServerKind[];
const KEYS = 300;
const WORKERS = 6;
const sign = (claims: object) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });

for (const kind of KINDS) {
  describe(`gateway crash (${kind})`, () => {
    let server: XmppServer;
    let db: TestDatabase;
    let gp: GatewayProcess | null = null;
    let juliet: XmppUser;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw");
      db = await createTestDatabase();
      juliet = await connectUser(server, "juliet", "pw", "c");
      await juliet.send(xml("iq", { type: "get", id: "roster" }, xml("query", { xmlns: "jabber:iq:roster" })));
      await juliet.waitFor((s) => s.attrs.id === "roster");
      await juliet.sendPresence();
    });
    after(async () => {
      await gp?.stop("SIGKILL");
      await juliet?.stop();
      await db?.drop();
      await server?.stop();
    });

    it("delivers every accepted message after SIGKILLs, and retries never duplicate", async () => {
      const port = await freePort();
      gp = await startGatewayProcess(server, db.url, port);
      const url = gp.url;
      const created = await fetch(`${url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${sign({ sub: "admin", scope: "admin" })}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "romeo" }) });
      assert.equal(created.status, 201);
      const token = sign({ sub: "romeo" });
      const ids = new Map<string, Set<string>>(); // key -> ids in 202 responses
      const replayed = new Set<string>(); // keys retried once more after a 202, as a client that lost the response would
      let accepted = 0;
      let failures = 0;
      const deadline = Date.now() + 90_000;

      async function post(key: string): Promise<void> {
        for (;;) {
          if (Date.now() > deadline) throw new Error(`gave up on ${key}`);
          try {
            const r = await fetch(`${url}/v1/messages`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
              body: JSON.stringify({ to: "juliet@localhost", body: key }),
            });
            const body = (await r.json()) as { id?: string };
            if (r.status === 202) {
              ids.set(key, (ids.get(key) ?? new Set()).add(body.id!));
              accepted++;
              if (Number(key.slice(2)) % 10 !== 0 || replayed.has(key)) return;
              replayed.add(key);
              continue;
            }
            failures++;
          } catch {
            failures++; // connection refused or reset: the gateway is down
          }
          await new Promise((r) => setTimeout(r, 30));
        }
      }

      const keys = Array.from({ length: KEYS }, (_, i) => `c-${String(i).padStart(4, "0")}`);
      const queue = [...keys];
      const workers = Array.from({ length: WORKERS }, async () => {
        for (let key = queue.shift(); key; key = queue.shift()) await post(key);
      });
      const killer = (async () => {
        for (const at of [80, 200]) {
          await waitFor(() => accepted >= at, 60_000, `${at} accepted`);
          await gp!.stop("SIGKILL");
          await new Promise((r) => setTimeout(r, 150));
          gp = await startGatewayProcess(server, db.url, port);
        }
      })();
      await Promise.all([...workers, killer]);

      const bodies = () => juliet.stanzas.filter((s) => s.is("message") && s.getChildText("body")?.startsWith("c-"));
      await waitFor(() => new Set(bodies().map((s) => s.getChildText("body"))).size >= KEYS, 30_000, "every accepted message delivered");
      await new Promise((r) => setTimeout(r, 500));
      const got = bodies();
      for (const key of keys) {
        const accIds = ids.get(key);
        assert.equal(accIds?.size, 1, `${key}: one id across all retries, got ${[...(accIds ?? [])].join(",")}`);
        const [id] = [...accIds!];
        const copies = got.filter((s) => s.getChildText("body") === key);
        assert.ok(copies.length >= 1, `${key} lost`);
        for (const c of copies) {
          assert.equal(c.attrs.id, id, `${key}: every copy carries the same stanza id`);
          assert.equal(c.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, id, `${key}: and the same origin-id`);
        }
      }
      const dupes = got.length - KEYS;
      console.log(`[crash ${kind}] ${KEYS} keys, 2 SIGKILLs, ${failures} failed attempts retried, ${accepted} 202s, 0 lost, ${dupes} same-id resends`);
    });
  });
}
