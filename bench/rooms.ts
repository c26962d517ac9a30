// Group chat benchmark (`npx tsx bench/rooms.ts [options]`): joining rooms and room messages → SSE.
//
// Prosody (or ejabberd, --server ejabberd) with its MUC service (conference.localhost), a fresh
// PostgreSQL database and the gateway as a separate process (bench/lib/gateway.ts). One run measures:
//   1. join time: an account joins N fresh rooms, one after the other (PUT /v1/rooms/{room}, each
//      creating its room, so the gateway also configures it as an instant room): p50/p99/max of the
//      request's duration. Reference, interleaved with it (join i of each side back to back, so
//      that load on a shared machine hits both alike): a raw XMPP user (c2s, scripts/harness/xmpp-user.ts)
//      creating N fresh rooms itself: join presence → self-presence (110, 201) → empty owner form
//      (XEP-0045 §10.1.2) → its result (the gateway sends that form too for a room its join created).
//   2. room message throughput: a second account joins R rooms (default 10, created by it); a raw
//      XMPP user (the ceiling, in a worker thread: bench/rooms-occupant.ts) and a sending XMPP user
//      (bench/inbound-sender.ts, c2s) enter the same rooms; the sender writes M group messages
//      round-robin over the rooms as fast as Prosody takes them. Balcony: first write → the last
//      of them as a `message` event on the account's GET /v1/events SSE stream (a worker thread:
//      bench/inbound-receiver.ts), with the gateway's and its PostgreSQL backends' CPU per message
//      (bench/lib/cpu.ts). Ceiling, the same messages of the same run: first write → the last of
//      them at the raw occupant (the rooms' own fan-out, no gateway). Each message must arrive
//      exactly once at the account: counted on the stream, and again in the event log read as JSON
//      (type groupchat, the right room, the sender's nick, own false).
// Prints a table (figure, value, ceiling/reference, ratio) and detail lines on stdout; progress
// goes to stderr. Everything started is removed on success, error, Ctrl-C or the overall timeout
// (bench/reaper.ts if we are killed outright). The machine's cores are shared with whatever else
// runs: the "everything else" CPU figure says how loaded it was.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import jwt from "jsonwebtoken";
import { createTestDatabase } from "../scripts/harness/database.js";
import { startXmppServer, type XmppServer } from "../scripts/harness/xmpp-server.js";
import { connectUser, xml, type XmlElement, type XmppUser } from "../scripts/harness/xmpp-user.js";
import { startReceiver, type Receiver, type Records } from "./inbound-receiver-client.js";
import { Sender } from "./inbound-sender.js";
import { busyCores, cpuSnapshot, cpuSplit, formatCpu, GROUPS, type CpuContext, type CpuSplit } from "./lib/cpu.js";
import { api, startGatewayProcess } from "./lib/gateway.js";
import { armOverallTimeout, checkAborted, isAborting, onCleanup, printReport, reaper, runBench } from "./lib/lifecycle.js";
import { bodyText, envOptions, fmtInt, fmtMs, fmtRatio, intOption as intOptionOf, log, now, sleep, stats, textTable, type LatencyStats } from "./lib/util.js";
import { startOccupant, type Occupant } from "./rooms-occupant-client.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const JWT_SECRET = `bench-${randomBytes(24).toString("hex")}`;
const JOINER = "joiner";
const LISTENER = "listener";
const STREAM_RESOURCE = "bench";
const SENDER_USER = "alice";
const SENDER_NICK = "alice";
const CEILING_USER = "carol";
const CEILING_NICK = "carol";
const REFERENCE_USER = "dave";
/** Stanzas per socket write (as bench/inbound.ts). */
const CHUNK = 64;
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = `${NS_MUC}#user`;

const USAGE = `usage: npx tsx bench/rooms.ts [options]
  --server KIND       prosody (default) or ejabberd
  --joins N           rooms created by a join, per side (default 50)
  --join-warmup J     joins per side before the measured ones (default 3)
  --rooms R           rooms of the message run (default 10)
  --messages M        group messages of the throughput run, round-robin over the rooms (default 5000)
  --warmup W          warm-up messages before it (default 500)
  --loss-timeout S    a message not arrived S seconds after the last progress is lost (default 15)
  --timeout S         overall time limit (default 600)
  --env KEY=VALUE     extra environment for the gateway (repeatable)`;

const { values: opt } = parseArgs({
  options: {
    server: { type: "string", default: "prosody" },
    joins: { type: "string" },
    "join-warmup": { type: "string" },
    rooms: { type: "string" },
    messages: { type: "string" },
    warmup: { type: "string" },
    "loss-timeout": { type: "string" },
    timeout: { type: "string" },
    env: { type: "string", multiple: true, default: [] },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
const intOption = (name: string, raw: string | undefined, fallback: number, min: number) => intOptionOf({ usage: USAGE, smoke: false }, name, raw, fallback, fallback, min);
const N = intOption("joins", opt.joins, 50, 1);
const JOIN_WARMUP = intOption("join-warmup", opt["join-warmup"], 3, 0);
const R = intOption("rooms", opt.rooms, 10, 1);
const M = intOption("messages", opt.messages, 5000, 1);
const WARMUP = intOption("warmup", opt.warmup, 500, 0);
const LOSS_TIMEOUT_MS = intOption("loss-timeout", opt["loss-timeout"], 15, 1) * 1000;
const TIMEOUT_MS = intOption("timeout", opt.timeout, 600, 10) * 1000;
const SERVER_KIND = opt.server;
if (SERVER_KIND !== "prosody" && SERVER_KIND !== "ejabberd") {
  console.error(`--server: expected prosody or ejabberd, got "${SERVER_KIND}"\n${USAGE}`);
  process.exit(2);
}
const GATEWAY_ENV = envOptions({}, opt.env);

// ---------------------------------------------------------------------------------------------
// 1. Join time

interface Joins {
  balcony: LatencyStats;
  /** The PUT's durations (ms), in order. */
  balconyRaw: number[];
  /** Raw user: join presence → owner form's result (the whole creation of an instant room). */
  reference: LatencyStats;
  /** Raw user: join presence → self-presence (what the PUT waits for). */
  referenceSelf: LatencyStats;
  statuses: Record<string, number>;
  cpu: CpuSplit;
}

const statusCodes = (s: XmlElement) => s.getChild("x", NS_MUC_USER)?.getChildren("status").map((c) => c.attrs.code ?? "") ?? [];

/** The account joins a fresh room: the PUT's duration (ms); throws unless it created the room (201). */
async function balconyJoin(url: string, token: string, room: string, nick: string, statuses: Record<string, number>): Promise<number> {
  const t0 = now();
  const res = await fetch(`${url}/v1/rooms/${encodeURIComponent(room)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ nick }),
  });
  const text = await res.text();
  const ms = now() - t0;
  statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  if (res.status !== 201) throw new Error(`PUT /v1/rooms/${room}: HTTP ${res.status} ${text} (expected 201: a fresh room)`);
  return ms;
}

/** The raw user creates a fresh instant room: [→ self-presence, → owner form's result] (ms). */
async function rawJoin(user: XmppUser, room: string, nick: string): Promise<[number, number]> {
  const mark = user.stanzas.length;
  const after = (s: XmlElement) => user.stanzas.indexOf(s) >= mark;
  const t0 = now();
  await user.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS_MUC })));
  const self = await user.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/${nick}` && (s.attrs.type === "error" || statusCodes(s).includes("110")) && after(s), 10_000);
  const tSelf = now();
  if (self.attrs.type === "error" || !statusCodes(self).includes("201")) throw new Error(`${room}: expected a new room (110, 201), got ${self.toString()}`);
  const id = `cfg-${room}`;
  await user.send(xml("iq", { to: room, type: "set", id }, xml("query", { xmlns: `${NS_MUC}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
  const result = await user.waitFor((s) => s.is("iq") && s.attrs.id === id, 10_000);
  const tForm = now();
  if (result.attrs.type !== "result") throw new Error(`${room}: the owner form was refused: ${result.toString()}`);
  return [tSelf - t0, tForm - t0];
}

async function measureJoins(server: XmppServer, gatewayUrl: string, token: string, user: XmppUser, tag: string, cpuCtx: CpuContext): Promise<Joins> {
  const statuses: Record<string, number> = {};
  const room = (side: string, i: number) => `${side}-${tag}-${i}@${server.mucDomain}`;
  if (JOIN_WARMUP > 0) {
    log(`joins: warm-up, ${JOIN_WARMUP} per side`);
    for (let i = 0; i < JOIN_WARMUP; i++) {
      await balconyJoin(gatewayUrl, token, room("jw", i), JOINER, {});
      await rawJoin(user, room("rw", i), REFERENCE_USER);
    }
  }
  log(`joins: ${N} fresh rooms per side, one after the other (Balcony and raw user interleaved)`);
  const balcony: number[] = [];
  const self: number[] = [];
  const full: number[] = [];
  const before = cpuSnapshot(cpuCtx);
  for (let i = 0; i < N; i++) {
    checkAborted();
    balcony.push(await balconyJoin(gatewayUrl, token, room("j", i), JOINER, statuses));
    const [s, f] = await rawJoin(user, room("r", i), REFERENCE_USER);
    self.push(s);
    full.push(f);
  }
  const cpu = cpuSplit(before, cpuSnapshot(cpuCtx));
  const r: Joins = { balcony: stats(balcony), balconyRaw: balcony, reference: stats(full), referenceSelf: stats(self), statuses, cpu };
  log(`joins: Balcony p50 ${fmtMs(r.balcony.p50)} ms, p99 ${fmtMs(r.balcony.p99)} ms; raw user p50 ${fmtMs(r.reference.p50)} ms`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// 2. Room message throughput

interface Arrivals {
  delivered: number;
  lost: number;
  duplicates: number;
  strays: number;
  seconds: number;
  perSec: number;
  other: Record<string, number>;
}

function arrivals(ids: string[], recs: Records, t0: number): Arrivals {
  const wanted = new Set(ids);
  const seen = new Set<string>();
  let duplicates = 0;
  let strays = 0;
  let last = t0;
  recs.ids.forEach((id, k) => {
    if (!wanted.has(id)) return void strays++;
    if (seen.has(id)) return void duplicates++;
    seen.add(id);
    last = Math.max(last, recs.times[k]!);
  });
  const seconds = (last - t0) / 1000;
  return { delivered: seen.size, lost: ids.length - seen.size, duplicates, strays, seconds, perSec: seen.size / seconds, other: recs.other };
}

interface LogCheck {
  /** Message events of the run in the account's log (JSON view). */
  events: number;
  distinct: number;
  duplicates: number;
  /** Events whose type/room/nick/own are not what the stanza was. */
  wrong: number;
  sampleWrong: string | null;
}

interface Throughput {
  sent: number;
  balcony: Arrivals;
  ceiling: Arrivals;
  sseSeqBreaks: number;
  log: LogCheck;
  cpu: CpuSplit;
  gatewayMs: number;
  postgresMs: number;
  senderWritePerSec: number;
}

type EventItem = { id: number | string; event: string; data: Record<string, unknown> };

/** Reads the account's whole event log as JSON pages and checks the run's message events. */
async function checkLog(url: string, token: string, expected: Map<string, string>): Promise<LogCheck> {
  const count = new Map<string, number>();
  let events = 0;
  let wrong = 0;
  let sampleWrong: string | null = null;
  for (let since = 0; ; ) {
    const res = await fetch(`${url}/v1/events?since=${since}&limit=1000`, { headers: { authorization: `Bearer ${token}`, accept: "application/json" } });
    if (res.status !== 200) throw new Error(`GET /v1/events (JSON): HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: EventItem[]; nextSince: number };
    for (const e of page.items) {
      const id = e.event === "message" ? e.data.stanzaId : undefined;
      if (typeof id !== "string" || !expected.has(id)) continue;
      events++;
      count.set(id, (count.get(id) ?? 0) + 1);
      const d = e.data;
      if (d.type !== "groupchat" || d.room !== expected.get(id) || d.nick !== SENDER_NICK || d.own !== false) {
        wrong++;
        sampleWrong ??= JSON.stringify(d);
      }
    }
    if (page.items.length === 0 || page.nextSince === since) break;
    since = page.nextSince;
  }
  return { events, distinct: count.size, duplicates: events - count.size, wrong, sampleWrong };
}

async function measureThroughput(o: {
  rooms: string[];
  sender: Sender;
  stream: Receiver;
  occupant: Occupant;
  cpuCtx: CpuContext;
  gatewayUrl: string;
  token: string;
  tag: string;
}): Promise<Throughput> {
  const { rooms, sender, stream, occupant } = o;
  const build = (run: string, n: number) => {
    const ids: string[] = [];
    const xmlOut: string[] = [];
    const roomOf = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      const id = `${o.tag}-${run}-${i}`;
      const room = rooms[i % rooms.length]!;
      ids.push(id);
      roomOf.set(id, room);
      xmlOut.push(`<message to="${room}" type="groupchat" id="${id}"><body>${bodyText(`rooms ${run}`, i)}</body></message>`);
    }
    return { ids, xml: xmlOut, roomOf };
  };
  if (WARMUP > 0) {
    log(`messages: warm-up, ${WARMUP} group messages over ${rooms.length} rooms`);
    const w = build("w", WARMUP);
    await sender.blast(w.xml, CHUNK, isAborting);
    await Promise.all([stream.waitFor(WARMUP, LOSS_TIMEOUT_MS, isAborting), occupant.waitFor(WARMUP, LOSS_TIMEOUT_MS, isAborting)]);
    checkAborted();
    await sleep(500);
  }
  await Promise.all([stream.take(), occupant.take()]);
  const run = build("t", M);
  log(`messages: ${M} group messages over ${rooms.length} rooms, as fast as the server takes them`);
  const before = cpuSnapshot(o.cpuCtx);
  let after = before;
  const sent = await sender.blast(run.xml, CHUNK, isAborting);
  await Promise.all([
    stream.waitFor(M, LOSS_TIMEOUT_MS, isAborting).then(() => void (after = cpuSnapshot(o.cpuCtx))),
    occupant.waitFor(M, LOSS_TIMEOUT_MS, isAborting),
  ]);
  checkAborted();
  const cpu = cpuSplit(before, after);
  const [sseRecs, occRecs] = await Promise.all([stream.take(), occupant.take()]);
  const balcony = arrivals(run.ids, sseRecs, sent.t0);
  const ceiling = arrivals(run.ids, occRecs, sent.t0);
  let seqBreaks = 0;
  for (let k = 1; k < sseRecs.seqs.length; k++) if (sseRecs.seqs[k] !== sseRecs.seqs[k - 1]! + 1) seqBreaks++;
  const perMessage = (cores: number | undefined) => ((cores ?? NaN) * cpu.seconds * 1000) / Math.max(1, balcony.delivered);
  log(`messages: Balcony ${fmtInt(balcony.perSec)} msg/s (${balcony.delivered}/${M}), ceiling ${fmtInt(ceiling.perSec)} msg/s (${ceiling.delivered}/${M}); reading the event log`);
  const logCheck = await checkLog(o.gatewayUrl, o.token, run.roomOf);
  return {
    sent: M,
    balcony,
    ceiling,
    sseSeqBreaks: seqBreaks,
    log: logCheck,
    cpu,
    gatewayMs: perMessage(cpu.cores[GROUPS.gateway]),
    postgresMs: perMessage(cpu.cores[GROUPS.dbBackends]),
    senderWritePerSec: M / Math.max(1e-3, (sent.written - sent.t0) / 1000),
  };
}

/** Until every room lists all these nicks as occupants (the gateway's own view: GET /v1/rooms/{room}). */
async function waitOccupants(url: string, token: string, rooms: string[], nicks: string[], retry: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 30_000;
  let nextRetry = Date.now() + 3000;
  for (;;) {
    const missing: string[] = [];
    for (const room of rooms) {
      const res = await fetch(`${url}/v1/rooms/${encodeURIComponent(room)}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { occupants?: { nick: string }[] };
      const present = new Set((body.occupants ?? []).map((x) => x.nick));
      for (const n of nicks) if (!present.has(n)) missing.push(`${n} in ${room}`);
    }
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`occupants missing after 30 s: ${missing.slice(0, 5).join(", ")}`);
    if (Date.now() > nextRetry) {
      await retry();
      nextRetry = Date.now() + 3000;
    }
    checkAborted();
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  header: string[];
  joins: Joins;
  tput: Throughput;
  senderReceived: Record<string, number>;
}

function formatReport(r: Report): string {
  const { joins: j, tput: t } = r;
  const ratio = (x: number, y: number) => fmtRatio(x / y);
  const b = t.balcony;
  const c = t.ceiling;
  const rows = [
    ["figure", "value", "ceiling/reference", "ratio"],
    [`join p50, ms (${N} fresh rooms)`, fmtMs(j.balcony.p50), fmtMs(j.reference.p50), ratio(j.balcony.p50, j.reference.p50)],
    [`join p99, ms (${N} fresh rooms)`, fmtMs(j.balcony.p99), fmtMs(j.reference.p99), ratio(j.balcony.p99, j.reference.p99)],
    [`join max, ms (${N} fresh rooms)`, fmtMs(j.balcony.max), fmtMs(j.reference.max), ratio(j.balcony.max, j.reference.max)],
    [`room messages/s (${R} rooms, ${M} messages)`, fmtInt(b.perSec), fmtInt(c.perSec), ratio(b.perSec, c.perSec)],
    ["gateway CPU per message, ms", fmtMs(t.gatewayMs), "-", "-"],
    ["Postgres CPU per message, ms", fmtMs(t.postgresMs), "-", "-"],
    ["messages lost", String(b.lost), String(c.lost), "-"],
    ["messages duplicated", String(b.duplicates), String(c.duplicates), "-"],
  ];
  const other = (o: Record<string, number>) => (Object.keys(o).length ? `; other: ${JSON.stringify(o)}` : "");
  const exact = b.lost === 0 && b.duplicates === 0 && t.log.distinct === t.sent && t.log.duplicates === 0 && t.log.wrong === 0;
  return [
    "",
    ...r.header,
    "",
    textTable(rows),
    "",
    `Join: PUT /v1/rooms/{room} {nick} of a room that does not exist yet (201), request → response: it returns once the room's row shows the join complete, read again whenever the account's event log grows (the room's answers are logged; a slow poll is the fallback) (for a room it creates, the gateway also submits the instant-room form). Reference: a raw XMPP user (c2s) creating a fresh room: join presence → the owner form's result; to the self-presence alone p50 ${fmtMs(j.referenceSelf.p50)}, p99 ${fmtMs(j.referenceSelf.p99)}, max ${fmtMs(j.referenceSelf.max)} ms. Ratio Balcony / reference. Both sides interleaved, one join at a time.`,
    `Throughput: one run; first write of the sending user → the last message as an SSE event (Balcony) and at a raw XMPP occupant of the same ${R} rooms (ceiling: the rooms' own fan-out). Ratio Balcony / ceiling.`,
    `CPU per message: CPU time of the gateway process and of the bench database's PostgreSQL backends from the first write to the last SSE event, per message.`,
    `CPU: cores used on average (1.00 = one core); "everything else" is foreign load on the machine (the figures are only as good as it is small).`,
    "",
    `Joins: ${N} per side (after ${JOIN_WARMUP} warm-up each); Balcony statuses ${JSON.stringify(j.statuses)}; Balcony mean ${fmtMs(j.balcony.mean)} ms, p90 ${fmtMs(j.balcony.p90)} ms; reference mean ${fmtMs(j.reference.mean)} ms, p90 ${fmtMs(j.reference.p90)} ms`,
    `  Balcony join durations, ms, sorted: ${[...j.balconyRaw].sort((x, y) => x - y).map((x) => Math.round(x)).join(" ")}`,
    `  cores used: ${formatCpu(j.cpu, SERVER_KIND)}`,
    `Messages: Balcony ${b.delivered}/${t.sent} in ${b.seconds.toFixed(2)} s, ${b.lost} lost, ${b.duplicates} duplicated, ${b.strays} strays, ${t.sseSeqBreaks} SSE id gaps/repeats${other(b.other)}`,
    `  ceiling ${c.delivered}/${t.sent} in ${c.seconds.toFixed(2)} s, ${c.lost} lost, ${c.duplicates} duplicated, ${c.strays} strays${other(c.other)}; the sender wrote at ${fmtInt(t.senderWritePerSec)} msg/s`,
    `  event log (JSON): ${t.log.events} message events for ${t.log.distinct}/${t.sent} messages, ${t.log.duplicates} duplicated, ${t.log.wrong} not groupchat/room/nick/own=false as sent${t.log.sampleWrong ? ` (e.g. ${t.log.sampleWrong})` : ""}`,
    `  cores used: ${formatCpu(t.cpu, SERVER_KIND)}`,
    `  the sending user received (the rooms' reflections of its messages, presences): ${JSON.stringify(r.senderReceived)}`,
    "",
    `result: ${exact ? "every message arrived exactly once at the account" : "MESSAGES LOST, DUPLICATED OR WRONG at the account (see above)"}`,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<Report> {
  const workDir = mkdtempSync(join(tmpdir(), "balcony-bench-rooms-"));
  reaper.tell({ dir: workDir });
  onCleanup("bench work dir", () => rmSync(workDir, { recursive: true, force: true }));
  armOverallTimeout(TIMEOUT_MS);
  const loadAvgBefore = loadavg();
  const tag = randomBytes(3).toString("hex");

  log(`starting ${SERVER_KIND}`);
  const server = await startXmppServer(SERVER_KIND);
  reaper.tell({ serverWorkDir: server.workDir });
  onCleanup(SERVER_KIND, () => server.stop());
  const cpuCtx: CpuContext = { serverKind: SERVER_KIND, serverWorkDir: server.workDir };
  const busyBefore = await busyCores(cpuCtx);
  const password = randomBytes(8).toString("hex");
  for (const u of [SENDER_USER, CEILING_USER, REFERENCE_USER]) await server.registerUser(u, password);

  const db = await createTestDatabase();
  const baseUrl = new URL(db.url);
  baseUrl.pathname = "/postgres";
  reaper.tell({ database: db.name, baseUrl: baseUrl.toString() });
  onCleanup("database", () => db.drop());
  log(`starting the gateway (database ${db.name})`);
  const gateway = await startGatewayProcess({ server, databaseUrl: db.url, workDir, gatewayDir: ROOT, jwtSecret: JWT_SECRET, cpuProf: false, env: GATEWAY_ENV });
  const gwCpu: CpuContext = { ...cpuCtx, gatewayPid: gateway.pid, dbName: db.name };
  const admin = jwt.sign({ sub: "admin", scope: "admin", exp: Math.floor(Date.now() / 1000) + 3600 }, JWT_SECRET, { algorithm: "HS256" });
  const token = async (localpart: string) => {
    await api(gateway.url, "/v1/accounts", admin, { localpart }, 201);
    return (await api<{ token: string }>(gateway.url, "/v1/tokens", admin, { account: localpart, resource: STREAM_RESOURCE, ttlSeconds: 3600 }, 201)).token;
  };

  // 1. Join time
  const reference = await connectUser(server, REFERENCE_USER, password, "bench");
  onCleanup("reference user", () => reference.stop());
  const joins = await measureJoins(server, gateway.url, await token(JOINER), reference, tag, gwCpu);
  await reference.stop();
  checkAborted();

  // 2. Room messages: the account creates the rooms, then the ceiling occupant and the sender enter.
  const listener = await token(LISTENER);
  const rooms = Array.from({ length: R }, (_, k) => `m-${tag}-${k}@${server.mucDomain}`);
  for (const room of rooms) await balconyJoin(gateway.url, listener, room, LISTENER, {});
  log(`messages: ${LISTENER}@${server.componentDomain} is in ${R} rooms; the occupants enter`);
  const service = `xmpp://${server.host}:${server.c2sPort}`;
  const occupant = await startOccupant({ service, domain: server.userDomain, username: CEILING_USER, password, resource: "bench", nick: CEILING_NICK, rooms });
  onCleanup("ceiling occupant", () => occupant.stop());
  const sender = await Sender.start({ service, domain: server.userDomain, username: SENDER_USER, password, resource: "bench" });
  onCleanup("sending user", () => sender.stop());
  const enter = async () => void (await sender.blast(rooms.map((room) => `<presence to="${room}/${SENDER_NICK}"><x xmlns="${NS_MUC}"><history maxstanzas="0"/></x></presence>`), CHUNK, isAborting));
  await enter();
  await waitOccupants(gateway.url, listener, rooms, [LISTENER, CEILING_NICK, SENDER_NICK], enter);
  const stream = await startReceiver({ mode: "sse", url: gateway.url, token: listener, resource: STREAM_RESOURCE });
  onCleanup("SSE client", () => stream.stop());
  const tput = await measureThroughput({ rooms, sender, stream, occupant, cpuCtx: gwCpu, gatewayUrl: gateway.url, token: listener, tag });
  const errors = [...stream.errors.map((e) => `SSE client: ${e}`), ...occupant.errors.map((e) => `occupant: ${e}`), ...sender.errors.map((e) => `sender: ${e}`)];
  if (errors.length) throw new Error(errors.join("; "));

  const header = [
    `Balcony group chat benchmark: ${SERVER_KIND} (MUC ${server.mucDomain}), ${availableParallelism()} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}, load average before ${loadAvgBefore.map((x) => x.toFixed(2)).join(" ")}, ${busyBefore.toFixed(2)} cores busy before start`,
    `Joins: ${N} fresh rooms per side, sequential. Messages: XMPP user (c2s) → ${R} rooms round-robin → account ${LISTENER} (in all of them) → GET /v1/events (SSE), and → a raw occupant (ceiling); warm-up ${WARMUP}${Object.keys(GATEWAY_ENV).length ? `; gateway env ${JSON.stringify(GATEWAY_ENV)}` : ""}`,
  ];
  return { header, joins, tput, senderReceived: sender.received };
}

await runBench(main, (report) => printReport(formatReport(report), null));
