// The ceiling of bench/rooms.ts, run in a worker thread so that its arrival timestamps are not
// delayed by the sender on the main thread: a raw XMPP user (@xmpp/client, c2s, SASL PLAIN) that
// enters the benchmark's rooms as an ordinary occupant and records every group message the rooms
// fan out to it (its stanza id, and when it arrived): the rooms' own delivery, no gateway.
//
// Protocol with the main thread (bench/rooms-occupant-client.ts), as bench/inbound-receiver.ts:
//   worker → main: { type: "online" } (in every room) | { type: "failed", message } | { type: "error", message }
//                  { type: "progress", unique, total }        (whenever it changed, ≤ every 25 ms)
//                  { type: "records", ids, times, seqs, other } (answer to "take"; seqs all -1)
//                  { type: "stopped" }                        (answer to "stop")
//   main → worker: { cmd: "take" } | { cmd: "stop" }
import { parentPort, workerData } from "node:worker_threads";
import { plainClient, xml, type XmlElement as Element } from "../scripts/harness/xmpp-user.js";
import { now, sleep } from "./lib/util.js";

export interface OccupantOptions {
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  nick: string;
  /** Bare room JIDs; they must exist (a room this user would create stays locked: see the retry). */
  rooms: string[];
}

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = `${NS_MUC}#user`;
/** Prosody refuses others (item-not-found) until the creator's owner form arrived: retried this often. */
const JOIN_ATTEMPTS = 50;
const JOIN_RETRY_MS = 100;
const JOIN_TIMEOUT_MS = 10_000;

async function run(port: NonNullable<typeof parentPort>, opts: OccupantOptions): Promise<void> {
  let ids: string[] = [];
  let times: number[] = [];
  let other: Record<string, number> = {};
  let seen = new Set<string>();
  let dirty = false;
  let recording = false;
  const progress = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    port.postMessage({ type: "progress", unique: seen.size, total: ids.length });
  }, 25);

  const xmpp = plainClient(opts);
  xmpp.on("error", (e) => port.postMessage({ type: "error", message: e.message }));

  // Joins in flight: room → settle(self-presence or error).
  const joining = new Map<string, (ok: boolean, why: string) => void>();
  xmpp.on("stanza", (el) => {
    const t = now();
    if (el.name === "message" && el.attrs.type === "groupchat" && el.attrs.id !== undefined && el.getChild("body")) {
      if (!recording) return;
      ids.push(el.attrs.id);
      times.push(t);
      seen.add(el.attrs.id);
      dirty = true;
      return;
    }
    if (el.name === "presence") {
      const room = (el.attrs.from ?? "").split("/")[0]!;
      const settle = joining.get(room);
      if (settle && el.attrs.from === `${room}/${opts.nick}`) {
        if (el.attrs.type === "error") {
          const cond = el.getChild("error")?.children.find((c): c is Element => typeof c === "object")?.name;
          return settle(false, `presence error ${cond ?? "?"}`);
        }
        const codes = el.getChild("x", NS_MUC_USER)?.getChildren("status").map((s) => s.attrs.code) ?? [];
        if (codes.includes("110")) return settle(true, codes.join(","));
      }
    }
    if (!recording) return;
    const kind = `${el.name}${el.attrs.type ? ` type=${el.attrs.type}` : ""}`;
    other[kind] = (other[kind] ?? 0) + 1;
  });

  port.on("message", (msg: { cmd: string }) => {
    if (msg.cmd === "take") {
      port.postMessage({ type: "records", ids, times: Float64Array.from(times), seqs: new Float64Array(ids.length).fill(-1), other });
      ids = [];
      times = [];
      other = {};
      seen = new Set();
      dirty = false;
    } else if (msg.cmd === "stop") {
      clearInterval(progress);
      void Promise.race([xmpp.stop().catch(() => undefined), sleep(2000)]).finally(() => {
        port.postMessage({ type: "stopped" });
        port.close();
      });
    }
  });

  const join = async (room: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const answer = new Promise<[boolean, string]>((resolve) => {
        const timer = setTimeout(() => resolve([false, "no answer"]), JOIN_TIMEOUT_MS);
        joining.set(room, (ok, why) => {
          clearTimeout(timer);
          joining.delete(room);
          resolve([ok, why]);
        });
      });
      await xmpp.send(xml("presence", { to: `${room}/${opts.nick}` }, xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" }))));
      const [ok, why] = await answer;
      if (ok) return;
      if (attempt >= JOIN_ATTEMPTS) throw new Error(`${opts.nick} could not enter ${room}: ${why}`);
      await sleep(JOIN_RETRY_MS);
    }
  };

  try {
    await xmpp.start();
    for (const room of opts.rooms) await join(room);
  } catch (error) {
    port.postMessage({ type: "failed", message: (error as Error).message });
    return;
  }
  recording = true;
  port.postMessage({ type: "online" });
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as OccupantOptions).catch((error: unknown) => port.postMessage({ type: "failed", message: String(error) }));
}
