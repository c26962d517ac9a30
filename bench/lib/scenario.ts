// Everything the message benchmark does on one XMPP server: start it with a receiving user, then
// measure the ceiling (raw component), the peer (the server's own HTTP API), Balcony and Balcony's
// batch API, in that order, and remove what it started.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import jwt from "jsonwebtoken";
import { createTestDatabase } from "../../scripts/harness/database.js";
import { startXmppServer, type XmppServer, type XmppServerOptions } from "../../scripts/harness/xmpp-server.js";
import { summarizeProfile, type ProfileSummary } from "../cpuprofile.js";
import type { CpuContext } from "./cpu.js";
import { api, startGatewayProcess } from "./gateway.js";
import { checkAborted, cleanupSince, mark, onCleanup, reaper } from "./lifecycle.js";
import { measure, type RowSettings } from "./measure.js";
import { Receiver } from "./receiver.js";
import { checkTargets, measuredRow, referencePeerRow, rowDetails, unavailableRow, type Row, type ServerKind, type ServerReport } from "./report.js";
import { ComponentSender, HttpSender, balconyApi, balconyBatchApi, ejabberdSendMessageApi, modRestApi, type Sender } from "./senders.js";
import { bodyText, log } from "./util.js";

export interface ScenarioOptions {
  settings: RowSettings;
  batchSize: number;
  /** Folder holding mod_rest (prosody-modules' mod_rest/), or undefined: the Prosody peer is a reference. */
  modRestDir: string | undefined;
  gatewayDir: string;
  gatewayEnv: Record<string, string>;
  cpuProf: boolean;
  /** The row whose throughput runs are the CPU profile's first window (the second: the Balcony row's fixed-rate run). */
  cpuProfRow: "balcony" | "batch";
  /** ejabberd with the Erlang VM's default scheduler busy wait (XmppServerOptions.erlangBusyWait). */
  erlangBusyWait: boolean;
  workDir: string;
}

const SINK_USER = "sink";
const SINK_RESOURCE = "bench";
const SENDER = "bench";
const REST_COMPONENT = "rest.localhost";

const NAMES: Record<ServerKind, string> = { prosody: "Prosody", ejabberd: "ejabberd" };

/** Row labels, as in issue 10's table. */
export const LABELS = {
  ceiling: (k: ServerKind) => `ceiling on ${NAMES[k]} (raw XEP-0114 component writing the same stanzas, no HTTP, no DB)`,
  peer: { prosody: "Prosody's mod_rest (peer)", ejabberd: "ejabberd's mod_http_api (peer, POST /api/send_message)" } as Record<ServerKind, string>,
  balcony: (k: ServerKind) => `Balcony on ${NAMES[k]}`,
  batch: (k: ServerKind, n: number) => `Balcony batch (POST /v1/messages/batch, ${n.toLocaleString("en-US")} per request) on ${NAMES[k]}`,
};

/** The folder to put in Prosody's plugin_paths for mod_rest, if `dir` holds it. */
export function findModRest(dir: string | undefined): string | undefined {
  if (!dir || !existsSync(dir)) return undefined;
  if (existsSync(join(dir, "mod_rest", "mod_rest.lua")) || existsSync(join(dir, "mod_rest.lua"))) return dir;
  return readdirSync(dir).some((f) => f === "mod_rest") ? dir : undefined;
}

/** One message through the sender: does this API exist and accept us? Returns why not, or null. */
async function probe(sender: Sender, receiver: Receiver, tag: string): Promise<string | null> {
  await receiver.take();
  const o = await sender.throughput([bodyText(`${tag}-probe`, 0)], 1);
  if (o.accepted.size === 1) {
    await receiver.waitFor(1, 3000);
    await receiver.take();
    return null;
  }
  return o.sampleError ?? JSON.stringify(o.outcomes);
}

export async function runServer(kind: ServerKind, o: ScenarioOptions): Promise<ServerReport> {
  const since = mark();
  try {
    return await measureServer(kind, o);
  } finally {
    await cleanupSince(since);
  }
}

async function startServer(kind: ServerKind, modRestDir: string | undefined, restSecret: string, erlangBusyWait: boolean): Promise<XmppServer> {
  const opts: XmppServerOptions = { erlangBusyWait };
  if (kind === "prosody" && modRestDir) {
    opts.prosodyHttp = {
      pluginPaths: [modRestDir],
      // mod_rest on an internal component: Basic auth with the component's name and secret, and
      // the stanzas come from the component's domain. http_host: requests to 127.0.0.1 reach it.
      extraConfig: `Component "${REST_COMPONENT}" "rest"\n  component_secret = "${restSecret}"\n  http_host = "127.0.0.1"\n`,
    };
  }
  const server = await startXmppServer(kind, opts);
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup(kind, () => server.stop());
  return server;
}

async function measureServer(kind: ServerKind, o: ScenarioOptions): Promise<ServerReport> {
  const s = o.settings;
  const restSecret = randomBytes(12).toString("hex");
  log(`starting ${kind}`);
  const server = await startServer(kind, kind === "prosody" ? o.modRestDir : undefined, restSecret, o.erlangBusyWait);
  const password = randomBytes(8).toString("hex");
  await server.registerUser(SINK_USER, password);
  const receiver = await Receiver.start({
    service: `xmpp://${server.host}:${server.c2sPort}`,
    domain: server.userDomain,
    username: SINK_USER,
    password,
    resource: SINK_RESOURCE,
  });
  const to = receiver.jid; // sink@localhost/bench
  log(`${kind}: sink online as ${to}`);
  const cpuCtx: CpuContext = { serverKind: kind, serverWorkDir: server.workDir };
  const rows: Row[] = [];
  const details: string[] = [];

  // 1. Ceiling. Prosody takes one connection per component domain: it closes before the gateway starts.
  const comp = await ComponentSender.start(server.componentService, server.componentDomain, server.componentSecret, to);
  const ceiling = measuredRow("ceiling", LABELS.ceiling(kind), kind, await measure(`${kind} ceiling`, `${kind}-ceiling`, comp, receiver, s, cpuCtx), null);
  if (comp.bounced) details.push(`${kind} ceiling: ${comp.bounced} stanzas bounced`);
  await comp.close();
  rows.push(ceiling);
  checkAborted();

  // 2. The peer: the XMPP server's own HTTP API.
  rows.push(await measurePeer(kind, server, receiver, to, restSecret, o, ceiling, cpuCtx));
  checkAborted();

  // 3. Balcony, a separate process on a fresh database.
  const db = await createTestDatabase();
  const baseUrl = new URL(db.url);
  baseUrl.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: baseUrl.toString() });
  onCleanup("database", () => db.drop());
  log(`${kind}: starting the gateway (database ${db.name})`);
  const jwtSecret = `bench-${randomBytes(24).toString("hex")}`;
  const gateway = await startGatewayProcess({ server, databaseUrl: db.url, workDir: o.workDir, gatewayDir: o.gatewayDir, jwtSecret, cpuProf: o.cpuProf, env: o.gatewayEnv });
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 7200 }, jwtSecret, { algorithm: "HS256" });
  await api(gateway.url, "/v1/accounts", admin, { localpart: SENDER }, 201);
  const { token } = await api<{ token: string }>(gateway.url, "/v1/tokens", admin, { account: SENDER, ttlSeconds: 7200 }, 201);
  const gwCtx: CpuContext = { ...cpuCtx, gatewayPid: gateway.pid, dbName: db.name };

  const balcony = new HttpSender(gateway.url, balconyApi(token, to), s.concurrency);
  const measured = await measure(`${kind} Balcony`, `${kind}-balcony`, balcony, receiver, s, gwCtx);
  rows.push(measuredRow("balcony", LABELS.balcony(kind), kind, measured, ceiling));
  let runsWindow = measured.windows.runs;
  await balcony.close();
  checkAborted();

  // 4. The batch API (Prosody only, as in issue 10's table); "not available" while the route is missing.
  if (kind === "prosody") {
    const batch = new HttpSender(gateway.url, balconyBatchApi(token, to, o.batchSize), s.concurrency);
    const why = await probe(batch, receiver, `${kind}-batch`);
    if (why) {
      log(`${kind}: batch API not available: ${why}`);
      rows.push(unavailableRow("batch", LABELS.batch(kind, o.batchSize), why.slice(0, 160)));
    } else {
      const m = await measure(`${kind} batch`, `${kind}-batch`, batch, receiver, { ...s, rate: 0 }, gwCtx);
      if (o.cpuProfRow === "batch") runsWindow = m.windows.runs;
      rows.push(measuredRow("batch", LABELS.batch(kind, o.batchSize), kind, m, ceiling));
    }
    await batch.close();
  }

  let profile: ProfileSummary | null = null;
  let rateProfile: ProfileSummary | null = null;
  if (gateway.profileDir) {
    await gateway.stop();
    const files = existsSync(gateway.profileDir) ? readdirSync(gateway.profileDir).filter((f) => f.endsWith(".cpuprofile")) : [];
    const file = files.length ? join(gateway.profileDir, files[0]!) : null;
    if (file) {
      profile = summarizeProfile(file, o.gatewayDir, ...runsWindow);
      const rate = measured.windows.rate;
      rateProfile = rate && summarizeProfile(file, o.gatewayDir, ...rate);
    } else log(`no CPU profile was written in ${gateway.profileDir}`);
  }
  if (receiver.errors.length) details.push(`${kind}: sink errors: ${receiver.errors.slice(0, 3).join("; ")}`);
  for (const row of rows) details.push(...rowDetails(row, kind));
  return { server: kind, rows, targets: checkTargets(kind, rows, s.rate), profile, rateProfile, details };
}

async function measurePeer(kind: ServerKind, server: XmppServer, receiver: Receiver, to: string, restSecret: string, o: ScenarioOptions, ceiling: Row, cpuCtx: CpuContext): Promise<Row> {
  const label = LABELS.peer[kind];
  let sender: HttpSender;
  if (kind === "ejabberd") {
    if (!server.httpUrl) return unavailableRow("peer", label, "the harness's ejabberd has no HTTP listener");
    sender = new HttpSender(server.httpUrl, ejabberdSendMessageApi(`${SENDER}@${server.userDomain}`, to), o.settings.concurrency);
  } else {
    if (!o.modRestDir || !server.httpUrl) {
      return referencePeerRow(kind, label, "mod_rest is not in Debian's prosody-modules; --mod-rest DIR measures it from a prosody-modules checkout");
    }
    sender = new HttpSender(server.httpUrl, modRestApi("/rest", REST_COMPONENT, restSecret, to), o.settings.concurrency);
  }
  try {
    const why = await probe(sender, receiver, `${kind}-peer`);
    if (why) {
      log(`${kind}: peer API refused a message: ${why}\n${server.logTail(15)}`);
      return kind === "prosody" ? referencePeerRow(kind, label, `mod_rest did not accept a message: ${why.slice(0, 120)}`) : unavailableRow("peer", label, why.slice(0, 160));
    }
    return measuredRow("peer", label, kind, await measure(`${kind} peer`, `${kind}-peer`, sender, receiver, o.settings, cpuCtx), ceiling);
  } finally {
    await sender.close();
  }
}
