/**
 * The one way integration tests start real XMPP servers: Prosody 0.12 or ejabberd 23.01, each
 * private to the calling test file (own temp dir, own free loopback ports, plaintext only), with
 * our gateway's external component (XEP-0114) configured on it.
 *
 * Every server started here is killed when the test process exits, even if a test forgot stop()
 * or the process crashed, so parallel test files never leak servers into each other. Set
 * XMPP_KEEP_WORKDIR=1 to keep the temp dirs (configs, logs) for debugging.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync, rmSync, openSync, closeSync } from "node:fs";
import { chown, mkdir, mkdtemp, readdir, rename, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, listensOn } from "./ports.js";

export type XmppServerKind = "prosody" | "ejabberd";

export interface XmppServerOptions {
  /** Domain of the external component (default "gw.localhost"). */
  componentDomain?: string;
  /** Shared secret of the component handshake (default: random). */
  componentSecret?: string;
  /**
   * Prosody only (ignored by ejabberd): also open an HTTP listener on a free loopback port
   * (`httpUrl`), with these extra plugin folders and config lines (Lua, appended to the generated
   * config), e.g. for an HTTP module such as mod_rest that benchmarks compare with. Without it
   * Prosody has no HTTP listener, as always.
   */
  prosodyHttp?: ProsodyHttpOptions;
  /**
   * Prosody only: more external component domains (domain -> secret), on the same component port,
   * for tests that play another service (a MUC component of their own, say) with a raw component.
   */
  extraComponents?: Record<string, string>;
  /**
   * ejabberd only: keep the Erlang VM's default scheduler busy wait (a scheduler out of work spins
   * for a while before it sleeps). By default it is off (`+sbwt none`, and for the dirty CPU and IO
   * schedulers), as RabbitMQ's packaging starts its VM: on a machine whose few cores ejabberd shares
   * with the gateway, PostgreSQL and the clients, the spinning is CPU the others wait for (ejabberd's
   * CPU at 500 msg/s halved in every row of bench/messages.ts; README Benchmarks).
   */
  erlangBusyWait?: boolean;
}

export interface ProsodyHttpOptions {
  /** Folders added to Prosody's plugin_paths. */
  pluginPaths?: string[];
  /** Lua appended at the end of the config (e.g. a `Component "x" "module"` section). */
  extraConfig?: string;
}

export interface XmppServer {
  kind: XmppServerKind;
  host: "127.0.0.1";
  c2sPort: number;
  componentPort: number;
  componentDomain: string;
  componentSecret: string;
  /** The domain users are registered on. */
  userDomain: "localhost";
  /**
   * The multi-user chat service (XEP-0045) on both servers: rooms are "<room>@conference.localhost".
   * Anyone may create rooms, users of userDomain and the component's users alike (the server routes
   * the component's stanzas to it). Rooms are not persistent by default (gone once empty, and after
   * restart() or kill()) and keep the last 50 messages as history. Where the servers differ:
   * - Prosody locks a new room until its owner submits the configuration form (an empty submit
   *   makes an instant room, XEP-0045 §10.1.2); until then others get <item-not-found/>. ejabberd
   *   admits others at once (the form is still accepted).
   * - The self-presence carries status codes 110 (and 201 for a new room) on both; ejabberd first
   *   sends an entity-caps presence from the bare room JID. Both then send the (empty) subject.
   * - A groupchat message comes back to its sender with the same id and XEP-0359 origin-id;
   *   Prosody adds an XEP-0421 occupant-id to every occupant presence and message.
   */
  mucDomain: "conference.localhost";
  /** Where the component connects: "xmpp://127.0.0.1:<componentPort>". */
  componentService: string;
  /** ejabberd only: base URL of mod_http_api ("http://127.0.0.1:<port>/api"), e.g. for send_message. */
  httpApiUrl: string | undefined;
  /**
   * Root URL of the server's HTTP listener ("http://127.0.0.1:<port>"): ejabberd always; Prosody
   * only when started with the `prosodyHttp` option.
   */
  httpUrl?: string | undefined;
  /** The temp dir holding config, data and logs; removed by stop(). */
  workDir: string;
  /** Creates the account user@localhost, or resets its password if it exists. Fast (a file write). */
  registerUser(user: string, password: string): Promise<void>;
  /** Kills the server and removes its temp dir. Leaves no process behind. Idempotent. */
  stop(): Promise<void>;
  /** Graceful shutdown, then start again on the same ports with the same data (users survive). */
  restart(): Promise<void>;
  /** Simulates a crash (SIGKILL); data stays, so restart() brings the server back. */
  kill(): Promise<void>;
  /** The tail of the server's logs, for assertion messages. */
  logTail(lines?: number): string;
}

const HOST = "127.0.0.1";
const USER_DOMAIN = "localhost";
/** The group chat (XEP-0045) service both servers run, next to the user domain. */
const MUC_DOMAIN = "conference.localhost";
/** Messages a room keeps for new occupants, on both servers. */
const MUC_HISTORY_MESSAGES = 50;
const DEFAULT_COMPONENT_DOMAIN = "gw.localhost";
/** How often a start is retried when another process grabbed one of our free ports meanwhile. */
const START_ATTEMPTS = 3;
const GRACEFUL_STOP_MS = 5000;

export function startXmppServer(
  kind: string = process.env.XMPP_SERVER_KIND ?? "prosody",
  opts: XmppServerOptions = {},
): Promise<XmppServer> {
  switch (kind) {
    case "prosody":
      return startProsody(opts);
    case "ejabberd":
      return startEjabberd(opts);
    default:
      throw new Error(`Unknown XMPP server kind "${kind}" (expected "prosody" or "ejabberd")`);
  }
}

// ---------------------------------------------------------------------------------------------
// Prosody

export async function startProsody(opts: XmppServerOptions = {}): Promise<XmppServer> {
  return startWithFreshPorts("prosody", async () => {
    const { c2sPort, componentPort, httpPort } = await freePortsByName("c2sPort", "componentPort", "httpPort");
    const settings = componentSettings(opts);
    const http = opts.prosodyHttp ? { ...opts.prosodyHttp, port: httpPort } : undefined;
    const workDir = await makeWorkDir("prosody");
    const dataPath = join(workDir, "data");
    const configFile = join(workDir, "prosody.cfg.lua");
    // Prosody indexes "certs" next to its config at startup and logs an error if it is missing.
    await Promise.all([mkdir(dataPath), mkdir(join(workDir, "certs"))]);
    await writeFile(configFile, prosodyConfig({ workDir, dataPath, c2sPort, componentPort, ...settings, http, extraComponents: opts.extraComponents }));
    return new ManagedServer({
      kind: "prosody",
      c2sPort,
      componentPort,
      httpPort: http?.port,
      ...settings,
      workDir,
      logFiles: [join(workDir, "console.log"), join(workDir, "prosody.log")],
      launch: { command: "prosody", args: ["--config", configFile, "-F"], cwd: workDir },
      // As ejabberd's: a slowed machine must not fail a start that is only late.
      startupTimeoutMs: 30_000,
      // Prosody keeps running when it cannot bind a port; it only logs it.
      startupFailure: /Failed to open server port/,
      registerUser: (user, password) => writeProsodyAccount(dataPath, USER_DOMAIN, user, password),
    });
  });
}

interface ProsodyConfigParams {
  workDir: string;
  dataPath: string;
  c2sPort: number;
  componentPort: number;
  componentDomain: string;
  componentSecret: string;
  http?: ProsodyHttpOptions & { port: number };
  extraComponents?: Record<string, string>;
}

/** Plaintext loopback-only Prosody; see TESTBED.md for why each line is there. */
function prosodyConfig(p: ProsodyConfigParams): string {
  return `-- Generated by scripts/harness/xmpp-server.ts for one test run.
run_as_root = true
pidfile = ${luaString(join(p.workDir, "prosody.pid"))}
data_path = ${luaString(p.dataPath)}
log = { { levels = { min = "info" }, to = "file", filename = ${luaString(join(p.workDir, "prosody.log"))} } }

interfaces = { "127.0.0.1" }
use_ipv6 = false
c2s_ports = { ${p.c2sPort} }
component_ports = { ${p.componentPort} }
component_interfaces = { "127.0.0.1" }
-- No ${p.http ? "HTTPS" : "HTTP"}, direct-TLS or s2s listeners: nothing may collide with parallel test files.
${p.http ? prosodyHttpGlobals(p.http) : "http_ports = { }"}
https_ports = { }
c2s_direct_tls_ports = { }
s2s_ports = { }
-- Hundreds of parallel logins (benchmarks) must not overflow the default accept queue of 128.
-- No Nagle (Prosody's default keeps it): a stanza written to a client while its previous one is
-- unacknowledged waited for the client's delayed ACK, so bursts stalled ~40 ms (measured: the
-- message benchmark's p99 at 500/s went from ~40 ms to ~15-20 ms; every row uses this server).
network_settings = { tcp_backlog = 1024, nagle = false }

-- No "tls" module: with it and no certificate Prosody still offers STARTTLS, which then fails.
modules_enabled = { "roster", "saslauth", "disco", "ping" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- Plain passwords in Prosody's internal storage let registerUser() write account files directly.
authentication = "internal_plain"
storage = "internal"

VirtualHost ${luaString(USER_DOMAIN)}

Component ${luaString(p.componentDomain)}
  component_secret = ${luaString(p.componentSecret)}
  -- A new connection replaces the open one (default "kick_new" refuses it): a gateway instance
  -- taking the link over from a hung one must get in (README "Running several instances").
  component_conflict_resolve = "kick_old"

-- Group chat (XEP-0045; XmppServer.mucDomain). Anyone may create rooms, the component's users too.
-- Rooms keep (and send to joiners) the last ${MUC_HISTORY_MESSAGES} messages and let occupants change the
-- subject, as on ejabberd. Room locking stays on (Prosody's default, XEP-0045 §10.1.1): a new room
-- admits nobody else until its owner submitted the configuration form.
Component ${luaString(MUC_DOMAIN)} "muc"
  restrict_room_creation = false
  max_history_messages = ${MUC_HISTORY_MESSAGES}
  muc_room_default_history_length = ${MUC_HISTORY_MESSAGES}
  muc_room_default_change_subject = true
${Object.entries(p.extraComponents ?? {})
  .map(([domain, secret]) => `\nComponent ${luaString(domain)}\n  component_secret = ${luaString(secret)}\n`)
  .join("")}${p.http?.extraConfig ? `\n${p.http.extraConfig}\n` : ""}`;
}

/** The optional HTTP additions (XmppServerOptions.prosodyHttp) of the global section. */
function prosodyHttpGlobals(http: ProsodyHttpOptions & { port: number }): string {
  const paths = http.pluginPaths?.length ? `\nplugin_paths = { ${http.pluginPaths.map(luaString).join(", ")} }` : "";
  return `http_ports = { ${http.port} }\nhttp_interfaces = { "127.0.0.1" }${paths}`;
}

/**
 * Registers a user by writing Prosody's internal storage file, exactly what
 * mod_auth_internal_plain reads on every login (no caching): ~0.1 ms instead of ~0.4 s for
 * `prosodyctl register`, and it works while the server runs.
 */
async function writeProsodyAccount(dataPath: string, host: string, user: string, password: string): Promise<void> {
  const dir = join(dataPath, prosodyPathEncode(host), "accounts");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${prosodyPathEncode(nodeprepApprox(user))}.dat`);
  await writeAtomically(file, `return {\n\t["password"] = ${luaString(password)};\n};\n`);
}

/** Servers look accounts up by the nodeprepped username; this approximates nodeprep. */
function nodeprepApprox(user: string): string {
  return user.normalize("NFKC").toLowerCase();
}

/** Write-then-rename, so a concurrent login never reads a half-written account file. */
async function writeAtomically(file: string, content: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

/** util/datamanager.lua's encode(): every byte that is not [A-Za-z0-9] becomes %xx (lowercase hex). */
function prosodyPathEncode(s: string): string {
  return [...Buffer.from(s, "utf8")]
    .map((b) => (isAsciiAlnum(b) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0")}`))
    .join("");
}

/** A Lua string literal for any byte string: non-alphanumeric bytes become \ddd escapes. */
function luaString(s: string): string {
  const body = [...Buffer.from(s, "utf8")]
    .map((b) => (isAsciiAlnum(b) || b === 0x2e || b === 0x2f || b === 0x2d || b === 0x5f
      ? String.fromCharCode(b)
      : `\\${b.toString().padStart(3, "0")}`))
    .join("");
  return `"${body}"`;
}

function isAsciiAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

// ---------------------------------------------------------------------------------------------
// ejabberd

export async function startEjabberd(opts: XmppServerOptions = {}): Promise<XmppServer> {
  const owner = ejabberdOwner();
  return startWithFreshPorts("ejabberd", async () => {
    const ports = await freePortsByName("c2sPort", "componentPort", "httpPort", "distPort");
    const settings = componentSettings(opts);
    const workDir = await makeWorkDir("ejabberd");
    const dirs = await writeEjabberdFiles(workDir, ports, settings, opts.erlangBusyWait ?? false);
    if (owner) await chownTree(workDir, owner);
    return new ManagedServer({
      kind: "ejabberd",
      c2sPort: ports.c2sPort,
      componentPort: ports.componentPort,
      httpPort: ports.httpPort,
      ...settings,
      workDir,
      logFiles: [join(workDir, "console.log"), join(dirs.logs, "ejabberd.log"), join(dirs.logs, "error.log")],
      launch: {
        command: "ejabberdctl",
        args: ["--config-dir", dirs.config, "--spool", dirs.spool, "--logs", dirs.logs, "foreground"],
        cwd: dirs.spool,
        // Started directly as the ejabberd user, ejabberdctl runs Erlang itself instead of through
        // `su`, so the whole server stays in our process group. HOME holds the Erlang cookie.
        env: { ...process.env, HOME: workDir },
        ...(owner ?? {}),
      },
      startupTimeoutMs: 30_000,
      startupFailure: /eaddrinuse|Failed to start listener/i,
      registerUser: (user, password) => writeExtauthAccount(dirs.accounts, user, password),
    });
  });
}

async function writeEjabberdFiles(
  workDir: string,
  ports: Record<"c2sPort" | "componentPort" | "httpPort" | "distPort", number>,
  settings: { componentDomain: string; componentSecret: string },
  busyWait: boolean,
) {
  const dirs = {
    config: join(workDir, "config"),
    spool: join(workDir, "spool"),
    logs: join(workDir, "logs"),
    accounts: join(workDir, "accounts"),
  };
  await Promise.all(Object.values(dirs).map((d) => mkdir(d)));
  const extauthScript = join(workDir, "extauth.cjs");
  await writeFile(extauthScript, EXTAUTH_SCRIPT);
  const extauthProgram = `${process.execPath} ${extauthScript} ${dirs.accounts}`;
  await writeFile(join(dirs.config, "ejabberd.yml"), ejabberdConfig({ ...ports, ...settings, extauthProgram }));
  await writeFile(join(dirs.config, "ejabberdctl.cfg"), ejabberdctlConfig(ports.distPort, workDir, busyWait));
  // Erlang's resolver config, as in /etc/ejabberd/inetrc: "localhost" must resolve without DNS.
  await writeFile(join(dirs.config, "inetrc"), '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n');
  return dirs;
}

interface EjabberdConfigParams {
  c2sPort: number;
  componentPort: number;
  httpPort: number;
  extauthProgram: string;
  componentDomain: string;
  componentSecret: string;
}

/**
 * Plaintext loopback-only ejabberd (YAML; values JSON-quoted). c2s has no starttls and no
 * certificate, so PLAIN is offered on the plain socket; no shaper, so benchmarks are not throttled,
 * and a large listen backlog (ejabberd's default is 5) so hundreds of parallel connects do not stall.
 * mod_http_api is open to loopback without credentials (send_message, for benchmarks).
 *
 * Accounts live outside ejabberd, in files that our extauth script reads: registering is a file
 * write, and it survives kill(). With ejabberd's own (Mnesia) accounts, a kill within ~2 s of a
 * registration loses it, because Mnesia's transaction log is flushed to disk only every 2 s.
 */
function ejabberdConfig(p: EjabberdConfigParams): string {
  const q = (s: string) => JSON.stringify(s);
  return `# Generated by scripts/harness/xmpp-server.ts for one test run.
hosts:
  - ${q(USER_DOMAIN)}
loglevel: warning
log_rotate_count: 0
# No certificates: never try to fetch any from an ACME server.
acme:
  auto: false
# No server-to-server traffic: a stanza to an unknown domain (or to the component domain while the
# component is down) bounces at once with <forbidden/> instead of trying DNS for that domain.
s2s_access: none
auth_method: external
extauth_program: ${q(p.extauthProgram)}
extauth_pool_size: 1
# registerUser() may change a password at any time: always ask the script.
auth_use_cache: false
listen:
  -
    port: ${p.c2sPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    starttls: false
    max_stanza_size: 262144
  -
    port: ${p.componentPort}
    ip: "127.0.0.1"
    module: ejabberd_service
    backlog: 1024
    hosts:
      ${q(p.componentDomain)}:
        password: ${q(p.componentSecret)}
  -
    port: ${p.httpPort}
    ip: "127.0.0.1"
    module: ejabberd_http
    backlog: 1024
    request_handlers:
      /api: mod_http_api
acl:
  loopback:
    ip:
      - 127.0.0.0/8
api_permissions:
  "loopback may do anything":
    from:
      - ejabberd_ctl
      - mod_http_api
    who:
      acl: loopback
    what: "*"
# Tests and benchmarks queue far more than the default 100 offline messages per user.
shaper_rules:
  max_user_offline_messages: 1000000

modules:
  # send_message is a mod_admin_extra command.
  mod_admin_extra: {}
  mod_disco: {}
  mod_http_api: {}
  # Like Prosody (which always loads mod_offline): a message to an offline user waits for them
  # instead of bouncing, so both servers behave alike when a test logs in after the message.
  mod_offline: {}
  mod_ping: {}
  mod_roster: {}
  # Group chat (XEP-0045; XmppServer.mucDomain). Anyone may create rooms, the component's users too.
  # Unlike Prosody, ejabberd admits others to a new room before its owner configured it. It logs a
  # warning that mod_mam is recommended: no archive is wanted here.
  mod_muc:
    host: ${q(MUC_DOMAIN)}
    access_create: all
    history_size: ${MUC_HISTORY_MESSAGES}
    default_room_options:
      allow_change_subj: true
      allow_private_messages: true
      allow_user_invites: true
      persistent: false
      mam: false
`;
}

/** Erlang's flags for schedulers that sleep as soon as they run out of work (erl(1): +sbwt, +sbwtdcpu, +sbwtdio). */
const ERLANG_NO_BUSY_WAIT = "+sbwt none +sbwtdcpu none +sbwtdio none";

/**
 * No epmd (a fixed distribution port instead), distribution on loopback only (TESTBED.md); the
 * schedulers' busy wait off unless asked for (XmppServerOptions.erlangBusyWait).
 */
function ejabberdctlConfig(distPort: number, workDir: string, busyWait: boolean): string {
  const noSpin = busyWait ? "" : ` ${ERLANG_NO_BUSY_WAIT}`;
  return [
    "ERLANG_NODE=ejabberd@localhost",
    `ERL_DIST_PORT=${distPort}`,
    `ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1}${noSpin}"`,
    `EJABBERD_PID_PATH=${join(workDir, "ejabberd.pid")}`,
    "",
  ].join("\n");
}

/** The account file our extauth script reads: named by the hex of the (nodeprepped) username. */
async function writeExtauthAccount(accountsDir: string, user: string, password: string): Promise<void> {
  const name = Buffer.from(nodeprepApprox(user), "utf8").toString("hex");
  await writeAtomically(join(accountsDir, name), password);
}

/**
 * ejabberd's external authentication program (protocol: each request and answer is prefixed by
 * its 2-byte length; requests are "auth:user:server:password" and "isuser:user:server"; answers
 * are 0 or 1). CommonJS without dependencies, run by the node running the tests.
 */
const EXTAUTH_SCRIPT = `"use strict";
// Generated by scripts/harness/xmpp-server.ts: ejabberd's extauth, reading registerUser()'s files.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const accounts = process.argv[2];
let pending = Buffer.alloc(0);
process.stdin.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
    const length = pending.readUInt16BE(0);
    const request = pending.subarray(2, 2 + length).toString("latin1");
    pending = pending.subarray(2 + length);
    process.stdout.write(Buffer.from([0, 2, 0, answer(request) ? 1 : 0]));
  }
});
process.stdin.on("end", () => process.exit(0));
function answer(request) {
  const [op, user = "", , ...rest] = request.split(":");
  const stored = storedPassword(user);
  if (op === "auth") return stored !== undefined && stored === rest.join(":");
  if (op === "isuser") return stored !== undefined;
  return false;
}
function storedPassword(user) {
  try {
    return readFileSync(join(accounts, Buffer.from(user, "latin1").toString("hex")), "latin1");
  } catch {
    return undefined;
  }
}
`;

interface Owner {
  uid: number;
  gid: number;
}

/** When we are root, ejabberd must run as its own user (ejabberdctl insists), so it needs its files. */
function ejabberdOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("ejabberd:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error("No 'ejabberd' user in /etc/passwd: is the ejabberd Debian package installed?");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

async function chownTree(path: string, { uid, gid }: Owner): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { recursive: true })) await chown(join(path, entry), uid, gid);
}

// ---------------------------------------------------------------------------------------------
// The shared lifecycle

interface Launch {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

interface ServerSpec {
  kind: XmppServerKind;
  c2sPort: number;
  componentPort: number;
  httpPort: number | undefined;
  componentDomain: string;
  componentSecret: string;
  workDir: string;
  logFiles: string[];
  launch: Launch;
  startupTimeoutMs: number;
  /** A log line meaning the start failed even though the process is alive. */
  startupFailure: RegExp;
  registerUser(user: string, password: string): Promise<void>;
}

class StartupError extends Error {
  constructor(message: string, readonly portConflict: boolean) {
    super(message);
  }
}

class ManagedServer implements XmppServer {
  readonly kind: XmppServerKind;
  readonly host = HOST;
  readonly userDomain = USER_DOMAIN;
  readonly mucDomain = MUC_DOMAIN;
  readonly c2sPort: number;
  readonly componentPort: number;
  readonly componentDomain: string;
  readonly componentSecret: string;
  readonly componentService: string;
  readonly httpApiUrl: string | undefined;
  readonly httpUrl: string | undefined;
  readonly workDir: string;
  #spec: ServerSpec;
  #process: ChildProcess | undefined;
  #stopped = false;

  constructor(spec: ServerSpec) {
    this.#spec = spec;
    this.kind = spec.kind;
    this.c2sPort = spec.c2sPort;
    this.componentPort = spec.componentPort;
    this.componentDomain = spec.componentDomain;
    this.componentSecret = spec.componentSecret;
    this.componentService = `xmpp://${HOST}:${spec.componentPort}`;
    this.httpUrl = spec.httpPort === undefined ? undefined : `http://${HOST}:${spec.httpPort}`;
    this.httpApiUrl = spec.kind !== "ejabberd" || this.httpUrl === undefined ? undefined : `${this.httpUrl}/api`;
    this.workDir = spec.workDir;
    liveServers.add(this);
  }

  registerUser(user: string, password: string): Promise<void> {
    this.#assertRunning();
    return this.#spec.registerUser(user, password);
  }

  /** Spawns the server and resolves once all its ports accept connections; kills it if the start fails. */
  async start(): Promise<void> {
    const { startupTimeoutMs, startupFailure } = this.#spec;
    const logSizes = this.#logSizes();
    const { child, spawnError } = this.#spawn();
    const ports = [this.c2sPort, this.componentPort, ...(this.#spec.httpPort ? [this.#spec.httpPort] : [])];
    let failure: string | undefined;
    try {
      await waitForPorts(ports, child, startupTimeoutMs, spawnError);
    } catch (error) {
      failure = `did not start: ${(error as Error).message}`;
    }
    // Only this start's log lines count: earlier runs of a restarted server append to the same files.
    const portConflict = startupFailure.test(this.#logSince(logSizes));
    // A port can "accept" because another process holds it; the server's log tells.
    if (portConflict) failure ??= "could not open all its ports";
    if (failure === undefined) return;
    await this.#halt("SIGKILL");
    throw new StartupError(`${this.kind} ${failure}\n${this.logTail()}`, portConflict);
  }

  #spawn(): { child: ChildProcess; spawnError: () => Error | undefined } {
    const { command, args, ...options } = this.#spec.launch;
    const output = openSync(join(this.workDir, "console.log"), "a");
    let child: ChildProcess;
    try {
      // detached: its own process group, so killing the group takes every process of the server.
      child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", output, output] });
    } finally {
      closeSync(output);
    }
    let error: Error | undefined;
    child.on("error", (e) => (error = e));
    // A test that forgets stop() must not keep the test process alive; the exit hook kills it.
    child.unref();
    this.#process = child;
    return { child, spawnError: () => error };
  }

  #logSizes(): number[] {
    return this.#spec.logFiles.map((file) => readBytesIfExists(file).length);
  }

  #logSince(sizes: number[]): string {
    return this.#spec.logFiles.map((file, i) => readBytesIfExists(file).subarray(sizes[i] ?? 0).toString()).join("\n");
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // Nothing is kept after stop(), so there is no point in a graceful shutdown.
    await this.#halt("SIGKILL");
    liveServers.delete(this);
    if (!process.env.XMPP_KEEP_WORKDIR) rmSync(this.workDir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    this.#assertRunning();
    await this.#halt("SIGTERM");
    await this.start();
  }

  async kill(): Promise<void> {
    this.#assertRunning();
    await this.#halt("SIGKILL");
  }

  logTail(lines = 40): string {
    return this.#spec.logFiles
      .map((file) => {
        const text = readTextIfExists(file).trimEnd();
        return text ? `--- ${file}\n${text.split("\n").slice(-lines).join("\n")}` : "";
      })
      .filter(Boolean)
      .join("\n");
  }

  /** Called from the process exit hook: must be synchronous. */
  killNow(): void {
    if (this.#process?.pid !== undefined) killGroup(this.#process.pid, "SIGKILL");
    if (!process.env.XMPP_KEEP_WORKDIR) rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Signals the whole process group; waits until every process of it is gone (SIGKILL after a grace time). */
  async #halt(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const pid = this.#process?.pid;
    if (pid === undefined) return;
    killGroup(pid, signal);
    if (!(await waitForGroupGone(pid, GRACEFUL_STOP_MS))) {
      killGroup(pid, "SIGKILL");
      await waitForGroupGone(pid, GRACEFUL_STOP_MS);
    }
    this.#process = undefined;
  }

  #assertRunning(): void {
    if (this.#stopped) throw new Error(`This ${this.kind} server was stopped`);
  }
}

/** Retries a start with new ports when a parallel process took one of ours in between. */
async function startWithFreshPorts(kind: XmppServerKind, create: () => Promise<ManagedServer>): Promise<XmppServer> {
  for (let attempt = 1; ; attempt++) {
    const server = await create();
    try {
      await server.start();
      return server;
    } catch (error) {
      await server.stop();
      if (!(error instanceof StartupError && error.portConflict) || attempt >= START_ATTEMPTS) throw error;
      console.warn(`${kind}: port conflict on attempt ${attempt}, retrying with new ports`);
    }
  }
}

function componentSettings(opts: XmppServerOptions) {
  return {
    componentDomain: opts.componentDomain ?? DEFAULT_COMPONENT_DOMAIN,
    componentSecret: opts.componentSecret ?? randomBytes(12).toString("hex"),
  };
}

function makeWorkDir(kind: XmppServerKind): Promise<string> {
  return mkdtemp(join(tmpdir(), `balcony-${kind}-`));
}

/** One distinct free port per name, reserved for this process (scripts/harness/ports.ts). */
async function freePortsByName<Name extends string>(...names: Name[]): Promise<Record<Name, number>> {
  const ports = await freePorts(names.length, HOST);
  return Object.fromEntries(names.map((name, i) => [name, ports[i]])) as Record<Name, number>;
}

async function waitForPorts(
  ports: number[],
  child: ChildProcess,
  timeoutMs: number,
  spawnError: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    // Listening, and by this server: another process's listener there would also answer.
    while (!(await canConnect(port)) || !listensOn(child.pid!, port)) {
      const error = spawnError();
      if (error) throw new Error(`cannot run it: ${error.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before port ${port} listened`);
      }
      if (Date.now() > deadline) throw new Error(`port ${port} not listening after ${timeoutMs} ms`);
      await sleep(20);
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Waits until no process (zombies of ours aside) remains in the group; Linux /proc based. */
async function waitForGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, so parse after ')'.
    const stat = readTextIfExists(`/proc/${entry}/stat`);
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && !isDeadZombie(entry, state)) members.push(Number(entry));
  }
  return members;
}

/**
 * A zombie nobody reaped yet is gone for our purposes, but only once all its threads ended: a
 * multi-threaded server's leader turns zombie while other threads still hold its sockets open.
 */
function isDeadZombie(pid: string, state: string | undefined): boolean {
  if (state !== "Z") return false;
  try {
    return readdirSync(`/proc/${pid}/task`).length <= 1;
  } catch {
    return true;
  }
}

function readTextIfExists(file: string): string {
  return readBytesIfExists(file).toString("utf8");
}

function readBytesIfExists(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Servers never outlive the test process

const liveServers = new Set<ManagedServer>();

function killAllServers(): void {
  for (const server of liveServers) server.killNow();
  liveServers.clear();
}

process.once("exit", killAllServers);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAllServers();
    // Our listener replaced the default action: re-raise so the process still dies of the signal.
    process.kill(process.pid, signal);
  });
}
