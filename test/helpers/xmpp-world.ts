// The world most integration tests start from: one XMPP server of a kind, real users logged in to
// it, and a test gateway on it. Stopped in reverse; a start that fails half-way stops what it
// started before it throws (a before() hook that throws leaves nothing for after() to stop).
import { randomBytes } from "node:crypto";
import { createTestDatabase, type TestDatabase } from "../../scripts/harness/database.js";
import { startXmppServer, type XmppServer, type XmppServerKind } from "../../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startTestGateway, type TestGateway } from "./gateway.js";

export interface WorldOptions {
  /** Each user fetches its roster before its initial presence: an "interested resource" (RFC 6121 §2.1.6), which servers send roster pushes and subscription stanzas to. */
  roster?: boolean;
  /** The gateway's extra environment. */
  env?: Record<string, string>;
  /**
   * The world owns the gateway's database, which outlives the gateway: restartGateway() starts a
   * new one on it (dropped when the world stops). Otherwise the gateway's own goes with it.
   */
  restartable?: boolean;
}

export interface XmppWorld<U extends string> {
  server: XmppServer;
  gw: TestGateway;
  /** Each user logged in (password `pw-<name>`, the resource it was given) and available; stop() stops the ones here then. */
  users: Record<U, XmppUser>;
  /**
   * Only with `restartable`: stops the gateway, runs `whileAway` (what happens while no gateway
   * runs), and starts a new one on the same database and environment; `gw` is then that one.
   */
  restartGateway(whileAway?: () => Promise<void>): Promise<TestGateway>;
  stop(): Promise<void>;
}

/** Fetches the user's roster (RFC 6121 §2.1.3), which makes its session an interested resource. */
export async function fetchRoster(user: XmppUser, timeoutMs = 20_000): Promise<void> {
  const id = `roster-${randomBytes(4).toString("hex")}`;
  await user.send(xml("iq", { type: "get", id }, xml("query", { xmlns: "jabber:iq:roster" })));
  await user.waitFor((s) => s.is("iq") && s.attrs.id === id, timeoutMs);
}

/** The user fetches its roster, then sends its initial presence: online as a real client comes online (offline messages follow). */
export async function comeOnline(user: XmppUser): Promise<void> {
  await fetchRoster(user);
  await user.sendPresence();
}

/**
 * `user` subscribes to the account's presence and the account approves (RFC 6121 §3.1): a
 * subscription `from`, which lets the user see its presence, and so ask its bare JID's disco#info
 * (XEP-0030 §8) and get receipts (XEP-0184 §8).
 */
export async function grantPresence(gw: Pick<TestGateway, "request" | "token" | "domain">, localpart: string, user: XmppUser, timeoutMs = 10_000): Promise<void> {
  const account = `${localpart}@${gw.domain}`;
  const bare = user.jid.split("/")[0]!;
  const token = gw.token(localpart);
  await user.send(xml("presence", { to: account, type: "subscribe" }));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await gw.request("GET", "/v1/subscription-requests", { token });
    if ((r.body.items as { jid: string }[]).some((i) => i.jid === bare)) break;
    if (Date.now() > deadline) throw new Error(`no subscription request from ${bare} to ${account} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const approved = await gw.request("POST", `/v1/roster/${encodeURIComponent(bare)}/approve`, { token });
  if (approved.status !== 200) throw new Error(`approving ${bare}: ${approved.status} ${approved.text}`);
}

/** Starts the server, registers and logs in `users` (name -> resource), then the gateway. */
export async function startWorld<U extends string>(kind: XmppServerKind, users: Record<U, string>, opts: WorldOptions = {}): Promise<XmppWorld<U>> {
  /** Each user once logged in; a test that logs one in again puts the new one here, for stop(). */
  const logged = {} as Record<U, XmppUser>;
  let server: XmppServer | undefined;
  let gw: TestGateway | undefined;
  let db: TestDatabase | undefined;
  const stop = async () => {
    for (const u of Object.values<XmppUser>(logged)) await u.stop();
    try {
      await gw?.stop();
    } finally {
      await Promise.all([db?.drop(), server?.stop()]);
    }
  };
  try {
    server = await startXmppServer(kind);
    for (const name of Object.keys(users)) await server.registerUser(name, `pw-${name}`);
    if (opts.restartable) db = await createTestDatabase();
    gw = await startTestGateway(server, opts.env, db);
    for (const [name, resource] of Object.entries(users) as [U, string][]) {
      const user = await connectUser(server, name, `pw-${name}`, resource);
      logged[name] = user;
      if (opts.roster) await fetchRoster(user);
      await user.sendPresence();
    }
    const world: XmppWorld<U> = {
      server,
      gw,
      users: logged,
      async restartGateway(whileAway) {
        if (!db || !server) throw new Error("startWorld: restartGateway() needs { restartable: true }");
        const old = gw;
        gw = undefined; // stopped: stop() must not stop it again
        await old?.stop();
        await whileAway?.();
        gw = await startTestGateway(server, opts.env, db);
        return (world.gw = gw);
      },
      stop,
    };
    return world;
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
