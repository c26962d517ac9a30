/**
 * Proves the integration-test harness against both real servers: users register and chat, an
 * external component (XEP-0114) exchanges messages with users both ways, and users and the
 * component's users create and join group chat rooms (XEP-0045).
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

    /** Sends room-joining presence (from: a component's user) and returns the self-presence or error. */
    async function enterRoom(user: XmppUser, room: string, nick: string): Promise<XmlElement> {
      const mark = user.stanzas.length;
      await user.send(joinPresence(`${room}/${nick}`));
      return user.waitFor((s) => user.stanzas.indexOf(s) >= mark && isSelfPresence(s, room, nick));
    }

    /** Submits the empty owner form (XEP-0045 §10.1.2) and asserts the room's result. */
    async function submitInstantRoomForm(user: XmppUser, room: string): Promise<void> {
      const id = `config-${Math.random()}`;
      await user.send(instantRoomForm(room, id));
      const reply = await user.waitFor((s) => s.is("iq") && s.attrs.id === id);
      assert.equal(reply.attrs.type, "result", reply.toString());
      assert.equal(reply.attrs.from, room);
    }

    /** Creates an instant room as its owner, asserting the creation codes on the way. */
    async function createInstantRoom(user: XmppUser, room: string, nick: string): Promise<void> {
      const self = await enterRoom(user, room, nick);
      assertStatusCodes(self, ["110", "201"]);
      assert.equal(self.getChild("x", MUC_USER)?.getChild("item")?.attrs.affiliation, "owner", self.toString());
      await submitInstantRoomForm(user, room);
    }

    test("a user creates an instant room, another joins, and a groupchat message reaches both", async () => {
      const [juliet, romeo] = [await login("juliet"), await login("romeo")];
      const room = newRoom(server);
      await createInstantRoom(juliet, room, "Juliet");

      const joined = await enterRoom(romeo, room, "Romeo");
      assertStatusCodes(joined, ["110"]);
      assert.ok(!statusCodes(joined).includes("201"), `an existing room must not say 201: ${joined.toString()}`);
      await juliet.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/Romeo` && !s.attrs.type);

      const body = `to the room ${Math.random()}`;
      const id = `msg-${Math.random()}`;
      const originId = `origin-${Math.random()}`;
      await juliet.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, body), xml("origin-id", { xmlns: SID, id: originId })));
      const [reflection, received] = await Promise.all([juliet, romeo].map((u) => u.waitFor((s) => s.is("message") && s.getChildText("body") === body)));
      for (const copy of [reflection, received]) {
        assert.equal(copy?.attrs.from, `${room}/Juliet`, copy?.toString());
        assert.equal(copy?.attrs.type, "groupchat", copy?.toString());
      }
      // What lets a sender recognise its own message among the room's.
      assert.equal(reflection?.attrs.id, id, reflection?.toString());
      assert.equal(reflection?.getChild("origin-id", SID)?.attrs.id, originId, reflection?.toString());
    });

    test(`a new room ${kind === "prosody" ? "admits others only once its owner submitted the form" : "admits others at once"}`, async () => {
      const [juliet, romeo] = [await login("juliet"), await login("romeo")];
      const room = newRoom(server);
      assertStatusCodes(await enterRoom(juliet, room, "Juliet"), ["110", "201"]);
      const early = await enterRoom(romeo, room, "Romeo");
      if (kind === "prosody") {
        assert.equal(early.attrs.type, "error", early.toString());
        assert.ok(early.getChild("error")?.getChild("item-not-found", STANZAS), early.toString());
        await submitInstantRoomForm(juliet, room);
        assertStatusCodes(await enterRoom(romeo, room, "Romeo"), ["110"]);
      } else {
        assertStatusCodes(early, ["110"]);
      }
    });

    test("a user of the component's domain creates a room that users join and hear it in", async () => {
      const { received, raw } = await connectComponent();
      const alice = `alice@${server.componentDomain}/x`;
      const room = newRoom(server);
      await raw.send(joinPresence(`${room}/Alice`, alice));
      const self = await waitUntil(() => received.find((s) => isSelfPresence(s, room, "Alice")), `Alice's self-presence from ${room}`);
      assertStatusCodes(self, ["110", "201"]);
      assert.equal(self.attrs.to, alice);
      const id = `config-${Math.random()}`;
      await raw.send(instantRoomForm(room, id, alice));
      const reply = await waitUntil(() => received.find((s) => s.is("iq") && s.attrs.id === id), `the owner form's reply from ${room}`);
      assert.equal(reply.attrs.type, "result", reply.toString());

      const juliet = await login("juliet");
      assertStatusCodes(await enterRoom(juliet, room, "Juliet"), ["110"]);
      const body = `from a component's user ${Math.random()}`;
      await raw.send(xml("message", { from: alice, to: room, type: "groupchat", id: `msg-${Math.random()}` }, xml("body", {}, body)));
      const heard = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === body);
      assert.equal(heard.attrs.from, `${room}/Alice`);
      const reflection = await waitUntil(() => received.find((s) => s.is("message") && s.getChildText("body") === body), "the reflection to Alice");
      assert.equal(reflection.attrs.to, alice);
    });

    test("after restart() rooms can be entered again and carry messages", async () => {
      const room = newRoom(server);
      await createInstantRoom(await login("juliet"), room, "Juliet");
      const t0 = performance.now();
      await server.restart();
      console.log(`${kind}: restarted in ${ms(t0)}`);
      const [juliet, romeo] = [await login("juliet"), await login("romeo")];
      const self = await enterRoom(juliet, room, "Juliet");
      assertStatusCodes(self, ["110"]);
      // Not persistent: the room is normally new again, and Prosody admits nobody else until configured.
      if (statusCodes(self).includes("201")) await submitInstantRoomForm(juliet, room);
      assertStatusCodes(await enterRoom(romeo, room, "Romeo"), ["110"]);
      const body = `after the restart ${Math.random()}`;
      await romeo.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
      const heard = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === body);
      assert.equal(heard.attrs.from, `${room}/Romeo`);
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

    if (kind === "ejabberd")
      test("the Erlang VM's schedulers sleep when out of work (no busy wait)", () => {
        assert.deepEqual(beamFlags(server.workDir), { sbwt: "none", sbwtdcpu: "none", sbwtdio: "none" });
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

describe("ejabberd started with erlangBusyWait", () => {
  test("keeps the Erlang VM's default busy wait", async () => {
    const server = await startXmppServer("ejabberd", { erlangBusyWait: true });
    try {
      assert.deepEqual(beamFlags(server.workDir), {});
    } finally {
      await server.stop();
    }
  });
});

const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = `${MUC}#user`;
const MUC_OWNER = `${MUC}#owner`;
const SID = "urn:xmpp:sid:0";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** A fresh room on the server's MUC service: tests never share rooms. */
function newRoom(server: XmppServer): string {
  return `room-${Math.random().toString(36).slice(2, 10)}@${server.mucDomain}`;
}

/** Presence entering (or creating) a room, XEP-0045 §7.2; `from` only for a component's user. */
function joinPresence(to: string, from?: string): XmlElement {
  return xml("presence", from === undefined ? { to } : { to, from }, xml("x", { xmlns: MUC }));
}

/** The empty submitted owner form that turns a new room into an instant room (XEP-0045 §10.1.2). */
function instantRoomForm(room: string, id: string, from?: string): XmlElement {
  const attrs = { to: room, type: "set", id, ...(from === undefined ? {} : { from }) };
  return xml("iq", attrs, xml("query", { xmlns: MUC_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" })));
}

/** The room's answer to our joining presence: our self-presence (status 110) or an error. */
function isSelfPresence(stanza: XmlElement, room: string, nick: string): boolean {
  return stanza.is("presence") && stanza.attrs.from === `${room}/${nick}` && (stanza.attrs.type === "error" || statusCodes(stanza).includes("110"));
}

function statusCodes(presence: XmlElement): string[] {
  return presence.getChild("x", MUC_USER)?.getChildren("status").map((s) => s.attrs.code ?? "") ?? [];
}

function assertStatusCodes(presence: XmlElement, expected: string[]): void {
  assert.equal(presence.attrs.type, undefined, `expected an available presence: ${presence.toString()}`);
  const codes = statusCodes(presence);
  for (const code of expected) assert.ok(codes.includes(code), `status ${code} missing from ${presence.toString()}`);
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

/** The busy-wait flags (erl(1) +sbwt...) on the command line of the server's Erlang VM (beam.smp). */
function beamFlags(workDir: string): Record<string, string> {
  const beams = processesMentioning(workDir)
    .map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"))
    .filter((args) => /beam(\.smp)?$/.test(args[0] ?? ""));
  assert.equal(beams.length, 1, "one Erlang VM for the server");
  const args = beams[0]!;
  const flags: Record<string, string> = {};
  args.forEach((arg, i) => {
    const m = /^[-+](sbwt|sbwtdcpu|sbwtdio)$/.exec(arg);
    if (m) flags[m[1]!] = args[i + 1] ?? "";
  });
  return flags;
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
