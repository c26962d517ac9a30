// The quick start: configuration (.env, generated on first run), a local Prosody unless
// XMPP_SERVICE is set, the gateway (embedded PostgreSQL unless DATABASE_URL is set), then a demo
// with a real XMPP user, and the commands to try it yourself.
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import xml from "@xmpp/xml";
import pino from "pino";
import { createLogger } from "../src/logger.js";
import { loadConfig } from "../src/config.js";
import { startGateway } from "../src/gateway.js";
import { failureReason } from "../src/serve.js";
import { startProsody, type XmppServer } from "./harness/xmpp-server.js";
import { connectUser, type XmppUser } from "./harness/xmpp-user.js";

const demoOnly = process.argv.includes("--demo-only");
const ENV_FILE = process.env.BALCONY_ENV_FILE ?? ".env";
// Each step says what it is about to do, with the time since quickstart.sh started.
const started = Number(process.env.QUICKSTART_STARTED_MS) || Date.now();
const step = (s: string) => console.log(`\n==> [${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${s}`);

/**
 * The gateway's log as lines for a person under the current step: all of its start-up (the
 * embedded PostgreSQL, the migrations, the component link, each with its duration), then only
 * what LOG_LEVEL asks for (warnings by default), so that the demo stays readable.
 */
function startupLogger(): { logger: pino.Logger; started(): void } {
  const quiet = pino.levels.values[process.env.LOG_LEVEL ?? "warn"] ?? 40;
  const hidden = new Set(["level", "time", "pid", "hostname", "part", "msg", "ms"]);
  let starting = true;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) {
        const entry = JSON.parse(line) as Record<string, unknown> & { level: number; msg: string };
        if (!starting && entry.level < quiet) continue;
        const details = Object.entries(entry).filter(([k, v]) => !hidden.has(k) && typeof v !== "object").map(([k, v]) => `${k}: ${String(v)}`);
        if (typeof entry.ms === "number") details.push(`${entry.ms} ms`);
        console.log(`    ${entry.level >= 40 ? `${pino.levels.labels[entry.level]}: ` : ""}${entry.msg}${details.length ? ` (${details.join(", ")})` : ""}`);
      }
      done();
    },
  });
  return { logger: createLogger(pino.levels.labels[Math.min(30, quiet)] ?? "info", sink), started: () => (starting = false) };
}

function loadDotEnv(): void {
  if (!existsSync(ENV_FILE)) {
    const lines = [
      "# Written by scripts/quickstart.sh; see .env.example for every setting.",
      `JWT_SECRET=${randomBytes(32).toString("base64url")}`,
      `XMPP_SECRET=${randomBytes(18).toString("base64url")}`,
      "XMPP_DOMAIN=gw.localhost",
    ];
    step(`Writing ${ENV_FILE} with fresh secrets`);
    writeFileSync(ENV_FILE, lines.join("\n") + "\n", { mode: 0o600 });
  }
  // Variables already in the environment win over the file (Node's contract for .env files).
  process.loadEnvFile(ENV_FILE);
}

async function main(): Promise<void> {
  loadDotEnv();
  let prosody: XmppServer | null = null;
  if (!process.env.XMPP_SERVICE) {
    step("Starting a local Prosody and registering juliet@localhost (set XMPP_SERVICE to use your own server)");
    prosody = await startProsody({ componentDomain: process.env.XMPP_DOMAIN ?? "gw.localhost", componentSecret: process.env.XMPP_SECRET });
    process.env.XMPP_SERVICE = prosody.componentService;
    await prosody.registerUser("juliet", "juliet-pass");
    console.log(`    Prosody: clients on 127.0.0.1:${prosody.c2sPort} (user juliet@localhost / juliet-pass), component on ${prosody.componentService}`);
  }
  step(process.env.DATABASE_URL ? "Starting Balcony on DATABASE_URL" : `Starting Balcony with an embedded PostgreSQL (data in ${process.env.DATA_DIR ?? "./data"})`);
  const config = loadConfig(process.env);
  const log = startupLogger();
  const running = await startGateway(config, log.logger);
  const gw = running;
  for (let i = 0; i < 100 && !gw.link.online; i++) await new Promise((r) => setTimeout(r, 100));
  log.started();
  console.log(`    Balcony: ${running.url}  (docs: ${running.url}/docs)  component link: ${gw.link.online ? "up" : "DOWN"}`);

  const domain = config.xmpp.domain;
  const admin = gw.auth.sign("admin", 86_400, { admin: true }).token;
  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(running.url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  };
  step(`Creating the account romeo@${domain} and tokens for it`);
  const created = await api("POST", "/v1/accounts", admin, { localpart: "romeo" });
  console.log(`    POST /v1/accounts {"localpart":"romeo"} -> ${created.status}`);
  const romeo = gw.auth.sign("romeo", 86_400, { resource: "quickstart" }).token;

  let juliet: XmppUser | null = null;
  if (prosody) {
    step(`Demo 1/4: Romeo (romeo@${domain}, HTTP) opens his event stream; Juliet (juliet@localhost) logs in to Prosody over XMPP`);
    const sse = await fetch(`${running.url}/v1/events`, { headers: { authorization: `Bearer ${romeo}`, accept: "text/event-stream" } });
    const reader = sse.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    // The stream resumes the quickstart session where it left off: a run after an earlier one's (and
    // after the API tour's steps) reads that account's events since, message-update and
    // message-status among them. The answer is the message event with this run's stanza id.
    const answer = async (stanzaId: string): Promise<string> => {
      for (;;) {
        const frame = buffer.indexOf("\n\n");
        if (frame >= 0) {
          const text = buffer.slice(0, frame);
          buffer = buffer.slice(frame + 2);
          if (text.split("\n").includes("event: message") && text.includes(`"stanzaId":${JSON.stringify(stanzaId)}`)) return text;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("event stream ended");
        buffer += decoder.decode(value, { stream: true });
      }
    };
    juliet = await connectUser(prosody, "juliet", "juliet-pass", "balcony");
    await juliet.sendPresence();
    step("Demo 2/4: Romeo sends Juliet a message over HTTP, with a receipt request");
    const sent = await api("POST", "/v1/messages", romeo, { to: "juliet@localhost", body: "But soft! What light through yonder window breaks?", receipt: true });
    console.log(`    Romeo  POST /v1/messages -> ${sent.status} ${JSON.stringify(sent.body)}`);
    const got = await juliet.waitFor((s) => s.is("message") && s.attrs.id === sent.body?.id, 10_000);
    console.log(`    Juliet received over XMPP: ${got.toString()}`);
    step("Demo 3/4: Juliet sends a receipt and an answer over XMPP; waiting for the answer on Romeo's event stream");
    await juliet.send(xml("message", { to: got.attrs.from!, id: "r1" }, xml("received", { xmlns: "urn:xmpp:receipts", id: got.attrs.id! })));
    const replyId = `reply-${randomUUID()}`;
    await juliet.send(xml("message", { to: `romeo@${domain}`, type: "chat", id: replyId }, xml("body", {}, "Romeo, Romeo! Wherefore art thou Romeo?")));
    const event = await answer(replyId);
    console.log(`    Romeo's SSE stream (GET /v1/events):\n${event.replace(/^/gm, "      ")}`);
    step("Demo 4/4: reading back the status of Romeo's message");
    await new Promise((r) => setTimeout(r, 300));
    const status = await api("GET", `/v1/messages/${String(sent.body?.id)}`, romeo);
    console.log(`    GET /v1/messages/${String(sent.body?.id)} -> status "${String(status.body?.status)}" (XEP-0184 receipt)`);
    await reader.cancel();
    console.log("\n    It works: HTTP -> XMPP -> HTTP, every message stored in PostgreSQL.");
  } else {
    console.log(`    No demo: its XMPP user logs in to the local Prosody, and XMPP_SERVICE names your own server (${process.env.XMPP_SERVICE ?? ""})`);
  }

  step("Try it yourself");
  console.log(`    In a browser, as Romeo (the demo page): ${running.url}/demo#token=${romeo}`);
  console.log(`    export B=${running.url}
    export ADMIN=${admin}
    export ROMEO=${romeo}
    curl -N $B/v1/events -H "Authorization: Bearer $ROMEO" -H 'Accept: text/event-stream'
    curl -s -X POST $B/v1/messages -H "Authorization: Bearer $ROMEO" -H 'content-type: application/json' \\
      -d '{"to":"juliet@localhost","body":"Hello from curl"}'
    curl -s "$B/v1/messages?with=juliet@localhost" -H "Authorization: Bearer $ROMEO"
    curl -s $B/v1/roster -H "Authorization: Bearer $ROMEO"
    curl -s $B/readyz`);

  const shutdown = async () => {
    step(`Stopping Balcony${prosody ? " and the local Prosody" : ""}`);
    await juliet?.stop();
    await running.close();
    await prosody?.stop();
  };
  if (demoOnly) {
    await shutdown();
    return;
  }
  console.log("\n    Balcony keeps running; Ctrl-C stops it (and the local Prosody).");
  // The harness's own handlers would kill Prosody and end the process before the gateway closed
  // (they are for tests); its exit hook stays, for a stop that fails.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, resolve);
  });
  await shutdown();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // A port in use is one line naming HOST and PORT, as for `npm start` (src/serve.ts), not a stack.
    console.error(`quickstart failed: ${failureReason(err)}`);
    process.exit(1);
  },
);
