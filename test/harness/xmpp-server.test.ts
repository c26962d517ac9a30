/**
 * Proves the integration-test harness against both real servers: users register and chat, and an
 * external component (XEP-0114) exchanges messages with users both ways.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { after, afterEach, before, describe, test } from "node:test";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";

/** The part of @xmpp/component 0.13 (CommonJS, no type declarations) used here. */
interface RawComponent {
  on(event: "stanza", listener: (stanza: XmlElement) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  reconnect: { stop(): void };
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
}
const { component } = createRequire(import.meta.url)("@xmpp/component") as {
  component(options: { service: string; domain: string; password: string }): RawComponent;
};

for (const kind of ["prosody", "ejabberd"] as const) {
  describe(`${kind} test server`, () => {
    let server: XmppServer;
    const sessions: { stop(): Promise<unknown> }[] = [];

    before(async () => {
      const t0 = performance.now();
      server = await startXmppServer(kind, { componentDomain: "gw.localhost", componentSecret: "s3cret" });
      console.log(`${kind}: started in ${ms(t0)}`);
      const t1 = performance.now();
      await Promise.all(["juliet", "romeo"].map((user) => server.registerUser(user, `${user}-pw`)));
      console.log(`${kind}: registered 2 users in ${ms(t1)}`);
    });

    // Each test starts from no connections: ejabberd would route to a component left connected by
    // an earlier test, and Prosody would refuse a second one with <conflict/>.
    afterEach(stopSessions);
    after(async () => {
      await stopSessions();
      await server?.stop();
    });

    async function stopSessions(): Promise<void> {
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    }

    async function login(user: string): Promise<XmppUser> {
      const t0 = performance.now();
      // A fresh resource per login: a reused one would kick the earlier session off.
      const session = await connectUser(server, user, `${user}-pw`, `test${sessions.length}`);
      console.log(`${kind}: ${user} logged in in ${ms(t0)}`);
      sessions.push(session);
      await session.sendPresence();
      return session;
    }

    async function connectComponent(): Promise<{ received: XmlElement[]; raw: RawComponent }> {
      const raw = component({ service: server.componentService, domain: server.componentDomain, password: server.componentSecret });
      raw.reconnect.stop();
      const received: XmlElement[] = [];
      raw.on("stanza", (stanza) => received.push(stanza));
      raw.on("error", () => {}); // surfaced by start() rejecting; an unhandled "error" would crash
      await raw.start();
      sessions.push(raw);
      return { received, raw };
    }

    test("the server is the kind asked for, on loopback ports of its own", () => {
      assert.equal(server.kind, kind);
      assert.equal(server.componentService, `xmpp://127.0.0.1:${server.componentPort}`);
      assert.notEqual(server.c2sPort, server.componentPort);
    });

    test("a registered user can message another", async () => {
      const [juliet, romeo] = [await login("juliet"), await login("romeo")];
      assert.match(juliet.jid, /^juliet@localhost\/test\d+$/);
      const body = `hello ${Math.random()}`;
      // To the full JID: a bare-JID message can race Romeo's initial presence and go to offline storage.
      await juliet.sendMessage(romeo.jid, body);
      const message = await romeo.waitFor((s) => s.is("message") && s.getChildText("body") === body);
      assert.match(message.attrs.from ?? "", /^juliet@localhost\//);
    });

    test("a wrong password is refused", async () => {
      await assert.rejects(connectUser(server, "juliet", "wrong"), /login of juliet@localhost.*failed/);
    });

    test("the component's messages from its users reach a user", async () => {
      const romeo = await login("romeo");
      const { raw } = await connectComponent();
      const body = `from the component ${Math.random()}`;
      await raw.send(xml("message", { from: `alice@${server.componentDomain}`, to: romeo.jid, type: "chat" }, xml("body", {}, body)));
      const message = await romeo.waitFor((s) => s.getChildText("body") === body);
      assert.equal(message.attrs.from, `alice@${server.componentDomain}`);
    });

    test("a user's message to an address on the component domain reaches the component", async () => {
      const juliet = await login("juliet");
      const { received } = await connectComponent();
      const body = `to the component ${Math.random()}`;
      await juliet.sendMessage(`bob@${server.componentDomain}`, body);
      const message = await waitUntil(() => received.find((s) => s.getChildText("body") === body), `message to bob@${server.componentDomain}`);
      assert.equal(message.attrs.to, `bob@${server.componentDomain}`);
      assert.match(message.attrs.from ?? "", /^juliet@localhost\//);
    });

    test("kill() drops the users; restart() brings the server back on the same ports with its users", async () => {
      const romeo = await login("romeo");
      const ports = [server.c2sPort, server.componentPort];
      const t0 = performance.now();
      await server.kill();
      await assert.rejects(romeo.waitFor(() => false, 2000), /the connection is closed/);
      const t1 = performance.now();
      await server.restart();
      console.log(`${kind}: killed in ${(t1 - t0).toFixed(0)} ms, restarted in ${ms(t1)}`);
      assert.deepEqual([server.c2sPort, server.componentPort], ports);
      const again = await login("romeo");
      assert.match(again.jid, /^romeo@localhost\//);
    });

    // Last: it stops this describe's server (after() tolerates that: stop() is idempotent).
    test("stop() leaves no process of this server behind", async () => {
      assert.ok(processesMentioning(server.workDir).length > 0, `expected ${kind} processes mentioning ${server.workDir}`);
      const t0 = performance.now();
      await server.stop();
      console.log(`${kind}: stopped in ${ms(t0)}`);
      assert.deepEqual(processesMentioning(server.workDir), [], "processes left after stop()");
      assert.equal(existsSync(server.workDir), false, "work dir left after stop()");
    });
  });
}

/** Pids whose command line mentions path (the server's config/spool dir is on it). */
function processesMentioning(path: string): string[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path);
      } catch {
        return false; // exited meanwhile
      }
    });
}

async function waitUntil<T>(find: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function ms(since: number): string {
  return `${(performance.now() - since).toFixed(0)} ms`;
}
