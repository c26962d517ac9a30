// Graceful shutdown and restart: streams are told when to retry, accepted messages are kept,
// sessions survive, and a restart within the grace period does not flap presence. Then the same
// with the real process: SIGTERM under load, exit code, and what every client got.
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request, type IncomingMessage } from "node:http";
import jwt from "jsonwebtoken";
import xml from "@xmpp/xml";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { JWT_SECRET, startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { freePort, startGatewayProcess, type GatewayProcess } from "../../scripts/harness/gateway-process.js";
import { comeOnline } from "../helpers/xmpp-world.js";


/** What a request that did not get its 202 got instead: a connection error, or a 503 problem document. Anything else is returned as a complaint. */
function failedAcceptably(status: number | null, contentType: string | null, body: unknown): string | null {
  if (status === null) return null; // connection refused, reset or closed: the client retries
  const code = (body as { code?: unknown } | undefined)?.code;
  if (status === 503 && /^application\/problem\+json/.test(contentType ?? "") && typeof code === "string") return null;
  return `${status} ${contentType ?? ""} ${JSON.stringify(body)?.slice(0, 200)}`;
}

interface Outcome {
  /** null: a connection error. */
  status: number | null;
  contentType: string | null;
  text: string;
  body: unknown;
}

/** A POST /v1/messages whose headers and first half of its body are sent now, the rest on finish(). */
function slowPost(base: string, token: string, message: object): { finish(): Promise<Outcome> } {
  const payload = Buffer.from(JSON.stringify(message));
  const req = request(`${base}/v1/messages`, {
    method: "POST",
    agent: false,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(payload.length) },
  });
  const outcome = new Promise<Outcome>((resolve) => {
    req.on("error", (err) => resolve({ status: null, contentType: null, text: String(err), body: undefined }));
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("error", (err) => resolve({ status: null, contentType: null, text: String(err), body: undefined }));
      res.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? null, contentType: res.headers["content-type"] ?? null, text, body });
      });
    });
  });
  const half = Math.floor(payload.length / 2);
  req.flushHeaders();
  req.write(payload.subarray(0, half));
  return {
    finish() {
      req.end(payload.subarray(half));
      return outcome;
    },
  };
}

describe("shutdown and restart", () => {
  let server: XmppServer;
  let juliet: XmppUser;
  const env = { SESSION_GRACE_SECONDS: "5", SSE_RETRY: "700ms" };

  before(async () => {
    server = await startXmppServer();
    await server.registerUser("juliet", "pw");
    juliet = await connectUser(server, "juliet", "pw", "b");
    await comeOnline(juliet);
  });
  after(async () => {
    await juliet?.stop();
    await server?.stop();
  });

  // Each test has its own database and gateway, stopped before the next test starts (Prosody takes
  // one connection per component domain).
  it("ends streams with a retry hint, keeps accepted messages and sessions, and does not flap presence across a quick restart", async () => {
    const db = await createTestDatabase();
    let gw: TestGateway | null = await startTestGateway(server, env, db);
    try {
      await inProcess(db, gw, (g) => (gw = g));
    } finally {
      await gw?.stop().catch(() => undefined);
      await db.drop();
    }
  });

  async function inProcess(db: TestDatabase, gw: TestGateway, replaced: (gw: TestGateway | null) => void): Promise<void> {
    await gw.createAccount("romeo");
    const tok = gw.token("romeo", { resource: "phone" });
    const jid = `romeo@${gw.domain}`;
    // Juliet subscribes to Romeo; Romeo is online on "phone" with a stream open.
    await juliet.send(xml("presence", { to: jid, type: "subscribe" }));
    await waitFor(async () => (await gw.request("GET", "/v1/subscription-requests", { token: tok })).body.items.length === 1, 5000, "request");
    await gw.request("POST", "/v1/roster/juliet@localhost/approve", { token: tok });
    const stream = await gw.sse("/v1/events", tok);
    await gw.request("PUT", "/v1/presence", { token: tok, body: { status: "here" } });
    const isRomeo = (type: string) => (s: XmlElement) => s.is("presence") && s.attrs.from === `${jid}/phone` && (s.attrs.type ?? "available") === type;
    await juliet.waitFor(isRomeo("available"));
    const mark = juliet.stanzas.length;

    // Requests in flight during the shutdown still complete. Each POST sends its headers and half
    // its body; close() starts once the server has received all of them, and only then do the
    // bodies finish. Every one of them was in flight at close(), and each must get its 202.
    const N = 20;
    let received = 0;
    const onRequest = (req: IncomingMessage) => void (req.method === "POST" && req.url === "/v1/messages" && received++);
    gw.running.app.server.on("request", onRequest);
    const posts = Array.from({ length: N }, (_, i) => slowPost(gw.url, tok, { to: "juliet@localhost", body: `flight ${i}` }));
    await waitFor(() => received === N, 5000, `the server received ${N} POSTs`);
    const closing = gw.running.close();
    replaced(null);
    await sleep(100); // close() is under way: the listener no longer accepts connections
    const outcomes = await Promise.all(posts.map((p) => p.finish()));
    await closing;
    const accepted = outcomes.filter((r) => r.status === 202);
    const connErrors = outcomes.filter((r) => r.status === null).length;
    console.log(`[shutdown in-process] ${N} POSTs in flight when close() began: ${accepted.length} got 202, ${connErrors} a connection error, ${N - accepted.length - connErrors} an HTTP error`);
    assert.equal(received, N, "no other POST reached the server");
    assert.equal(accepted.length, N, `every POST in flight at close() got its 202: ${outcomes.map((r) => `${r.status} ${r.text.slice(0, 100)}`).join("; ")}`);
    assert.equal(stream.closed, true, "the stream was ended");
    assert.ok(stream.comments.includes("shutting down"));
    assert.equal(stream.retry, 700);

    // A new instance on the same database, well within the grace period.
    gw = await startTestGateway(server, env, db);
    replaced(gw);
    const sessions = (await gw.request("GET", "/v1/sessions", { token: tok })).body.items;
    assert.equal(sessions.find((s: { resource: string }) => s.resource === "phone")?.available, true, "the session survived");
    const again = await gw.sse("/v1/events", tok);
    // Everything accepted before the shutdown reached Juliet, intact.
    for (const [i, a] of outcomes.entries()) {
      const m = await juliet.waitFor((s) => s.attrs.id === (a.body as { id: string }).id, 10_000);
      assert.equal(m.getChildText("body"), `flight ${i}`);
    }
    await new Promise((r) => setTimeout(r, 6000)); // past the grace period, with the stream back
    assert.deepEqual(juliet.stanzas.slice(mark).filter(isRomeo("unavailable")).map(String), [], "no unavailable presence: no flap");
    await again.close();
  }

  it("SIGTERM under load: the process exits 0 within 10 s, the stream is told to retry, and no 202 is lost", async () => {
    const pdb = await createTestDatabase();
    const port = await freePort();
    const penv = { SSE_RETRY: "700ms", SESSION_GRACE_SECONDS: "30" };
    let gp: GatewayProcess | null = await startGatewayProcess(server, pdb.url, port, penv);
    try {
      const sign = (claims: object) => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, JWT_SECRET, { algorithm: "HS256" });
      const created = await fetch(`${gp.url}/v1/accounts`, { method: "POST", headers: { authorization: `Bearer ${sign({ sub: "admin", scope: "admin" })}`, "content-type": "application/json" }, body: JSON.stringify({ localpart: "mercutio" }) });
      assert.equal(created.status, 201);
      const token = sign({ sub: "mercutio", resource: "desk" });
      const url = gp.url;

      // An open event stream, read raw: what it gets at the end is what matters.
      const sse = await fetch(`${url}/v1/events`, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } });
      assert.equal(sse.status, 200);
      let streamText = "";
      const streamDone = (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of sse.body!) streamText += decoder.decode(chunk, { stream: true });
        } catch (err) {
          streamText += `\n[stream error: ${String(err)}]`;
        }
      })();
      await waitFor(() => streamText.includes(": session desk"), 5000, "the stream opened");

      // Several clients posting with idempotency keys, each as fast as it can.
      interface Attempt { key: string; start: number; end: number; status: number | null; contentType: string | null; body: unknown; error?: string }
      const attempts: Attempt[] = [];
      let inFlight = 0;
      let stop = false;
      let sigtermAt = 0;
      const client = async (c: number) => {
        for (let n = 0; !stop; n++) {
          const key = `t-${c}-${String(n).padStart(4, "0")}`;
          const a: Attempt = { key, start: Date.now(), end: 0, status: null, contentType: null, body: undefined };
          inFlight++;
          try {
            const r = await fetch(`${url}/v1/messages`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
              body: JSON.stringify({ to: "juliet@localhost", body: key }),
            });
            a.status = r.status;
            a.contentType = r.headers.get("content-type");
            const text = await r.text();
            try {
              a.body = JSON.parse(text);
            } catch {
              a.body = text;
            }
          } catch (err) {
            a.error = (err as { cause?: { code?: string } }).cause?.code ?? String(err);
          } finally {
            inFlight--;
            a.end = Date.now();
            attempts.push(a);
          }
          // Once the gateway is gone, a client backs off instead of spinning on refused connections.
          if (a.error && sigtermAt) await sleep(50);
        }
      };
      const clients = Array.from({ length: 6 }, (_, c) => client(c));
      await waitFor(() => attempts.filter((a) => a.status === 202).length >= 60, 30_000, "load under way");

      sigtermAt = Date.now();
      const inFlightAtSigterm = inFlight;
      const exit = await gp.stop("SIGTERM");
      const exitMs = Date.now() - sigtermAt;
      gp = null;
      await sleep(300); // the clients see the gateway gone (refused) for a moment
      stop = true;
      await Promise.all(clients);
      await streamDone;

      assert.equal(exit, "0", "the process exited with code 0");
      assert.ok(exitMs < 10_000, `exited in ${exitMs} ms`);
      assert.ok(inFlightAtSigterm > 0, "requests were in flight when SIGTERM was sent");
      assert.ok(streamText.endsWith("retry: 700\n: shutting down\n\n"), `the stream ended with a retry hint: …${JSON.stringify(streamText.slice(-120))}`);

      const accepted = attempts.filter((a) => a.status === 202);
      const failed = attempts.filter((a) => a.status !== 202);
      const duringShutdown = attempts.filter((a) => a.end >= sigtermAt);
      const acceptedDuring = duringShutdown.filter((a) => a.status === 202);
      const complaints = failed.map((a) => failedAcceptably(a.status, a.contentType, a.body)).filter((c) => c !== null);
      assert.ok(acceptedDuring.length > 0, "requests in flight at SIGTERM were completed with a 202");
      for (const a of accepted) assert.match(String((a.body as { id?: unknown }).id), /^[0-9a-f-]{36}$/, `${a.key}: 202 with an id`);

      // The gateway again, on the same database: every 202 reaches Juliet with its own id.
      gp = await startGatewayProcess(server, pdb.url, port, penv);
      const idOf = new Map(accepted.map((a) => [a.key, (a.body as { id: string }).id]));
      const copies = (key: string) => juliet.stanzas.filter((s) => s.is("message") && s.getChildText("body") === key);
      await waitFor(() => accepted.every((a) => copies(a.key).length > 0), 20_000, "every accepted message delivered").catch((err: unknown) => {
        throw new Error(`${String(err)}: lost ${accepted.filter((a) => copies(a.key).length === 0).map((a) => a.key).join(", ")}`);
      });
      // The keys that failed, retried with the same Idempotency-Key: accepted now, and delivered too.
      const retryKeys = [...new Set(failed.map((a) => a.key))].filter((k) => !idOf.has(k));
      for (const key of retryKeys) {
        const r = await fetch(`${gp.url}/v1/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify({ to: "juliet@localhost", body: key }),
        });
        assert.equal(r.status, 202, `retry of ${key}`);
        idOf.set(key, ((await r.json()) as { id: string }).id);
      }
      const marker = await fetch(`${gp.url}/v1/messages`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ to: "juliet@localhost", body: "marker" }) });
      assert.equal(marker.status, 202);
      const markerId = ((await marker.json()) as { id: string }).id;
      await juliet.waitFor((s) => s.attrs.id === markerId, 15_000);
      let dupes = 0;
      for (const [key, id] of idOf) {
        const got = copies(key);
        assert.ok(got.length >= 1, `${key} lost`);
        for (const m of got) assert.equal(m.attrs.id, id, `${key}: every copy carries its own message id`);
        dupes += got.length - 1;
      }
      const connErrors = failed.filter((a) => a.status === null).length;
      console.log(
        `[shutdown SIGTERM] exit ${exit} in ${exitMs} ms; ${inFlightAtSigterm} POSTs in flight at SIGTERM; ${attempts.length} POSTs from 6 clients: ${accepted.length} got 202 (${acceptedDuring.length} completing after SIGTERM), ${connErrors} connection errors, ${failed.length - connErrors - complaints.length} 503 problems, ${complaints.length} other answers; ${retryKeys.length} failed keys retried after restart; all ${idOf.size} delivered, 0 lost, ${dupes} same-id resends`,
      );
      // Last, so that everything above is known even when this fails.
      assert.deepEqual(complaints, [], "a request that did not get a 202 got a connection error or a 503 problem");
    } finally {
      await gp?.stop("SIGKILL");
      await pdb.drop();
    }
  });
});
