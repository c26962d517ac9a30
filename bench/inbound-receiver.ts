// The receiving end of bench/inbound.ts, run in a worker thread so that its arrival timestamps
// are not delayed by the sender on the main thread. Two modes, recording the same thing (the
// XMPP stanza id of every message that arrives, and when):
//   "sse":       a client of the gateway's GET /v1/events (text/event-stream, parsed with
//                eventsource-parser); an event `message` carries the stanza id as data.stanzaId,
//                and its SSE id (the account's sequence number) is kept to check for gaps.
//   "component": a raw XEP-0114 component (@xmpp/component) on the gateway's domain: the ceiling,
//                the same stanzas with no database and no HTTP.
//
// Protocol with the main thread (bench/inbound-receiver-client.ts):
//   worker → main: { type: "online" } | { type: "failed", message } | { type: "error", message }
//                  { type: "progress", unique, total }        (whenever it changed, ≤ every 25 ms)
//                  { type: "records", ids, times, seqs, other } (answer to "take")
//                  { type: "stopped" }                        (answer to "stop")
//   main → worker: { cmd: "take" } hands over what arrived since the last take, and resets
//                  { cmd: "stop" }
import { request, type ClientRequest } from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import pkg from "@xmpp/component";
import { createParser } from "eventsource-parser";
import { now } from "./lib/util.js";

export type ReceiverOptions =
  | { mode: "sse"; url: string; token: string; resource: string }
  | { mode: "component"; service: string; domain: string; password: string };

interface Recorder {
  record(id: string, time: number, seq: number): void;
  other(kind: string): void;
}

function recorder(port: NonNullable<typeof parentPort>): { rec: Recorder; stopProgress(): void } {
  let ids: string[] = [];
  let times: number[] = [];
  let seqs: number[] = [];
  let other: Record<string, number> = {};
  let seen = new Set<string>();
  let dirty = false;
  const progress = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    port.postMessage({ type: "progress", unique: seen.size, total: ids.length });
  }, 25);
  port.on("message", (msg: { cmd: string }) => {
    if (msg.cmd !== "take") return;
    port.postMessage({ type: "records", ids, times: Float64Array.from(times), seqs: Float64Array.from(seqs), other });
    ids = [];
    times = [];
    seqs = [];
    other = {};
    seen = new Set();
    dirty = false;
  });
  return {
    rec: {
      record(id, time, seq) {
        ids.push(id);
        times.push(time);
        seqs.push(seq);
        seen.add(id);
        dirty = true;
      },
      other(kind) {
        other[kind] = (other[kind] ?? 0) + 1;
      },
    },
    stopProgress: () => clearInterval(progress),
  };
}

/** Opens the event stream; resolves once the gateway answered 200 (the stream is live). */
function runSse(opts: Extract<ReceiverOptions, { mode: "sse" }>, rec: Recorder, onError: (m: string) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    let arrival = 0;
    const parser = createParser({
      onEvent(m) {
        const type = m.event ?? "message";
        if (type !== "message") return rec.other(`event ${type}`);
        let stanzaId: unknown;
        try {
          stanzaId = (JSON.parse(m.data) as { stanzaId?: unknown }).stanzaId;
        } catch {
          return rec.other("unparsable data");
        }
        if (typeof stanzaId !== "string") return rec.other("message without stanzaId");
        rec.record(stanzaId, arrival, m.id === undefined ? -1 : Number(m.id));
      },
    });
    const url = new URL(`/v1/events?resource=${encodeURIComponent(opts.resource)}`, opts.url);
    const req: ClientRequest = request(url, { headers: { accept: "text/event-stream", authorization: `Bearer ${opts.token}` } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET /v1/events: HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        // Every event in a chunk arrived when the chunk did.
        arrival = now();
        parser.feed(chunk);
      });
      res.on("end", () => onError("the event stream ended"));
      res.on("error", (e) => onError(`event stream: ${e.message}`));
      resolve(() => req.destroy());
    });
    req.on("error", (e) => {
      reject(e);
      onError(`event stream: ${e.message}`);
    });
    req.setNoDelay(true);
    req.end();
  });
}

async function runComponent(opts: Extract<ReceiverOptions, { mode: "component" }>, rec: Recorder, onError: (m: string) => void): Promise<() => Promise<void>> {
  const xmpp = pkg.component({ service: opts.service, domain: opts.domain, password: opts.password });
  xmpp.on("error", (e: Error) => onError(e.message));
  xmpp.on("stanza", (el: { name: string; attrs: Record<string, string | undefined> }) => {
    const t = now();
    const id = el.attrs.id;
    if (el.name !== "message" || el.attrs.type === "error" || id === undefined) return rec.other(`${el.name}${el.attrs.type ? ` type=${el.attrs.type}` : ""}`);
    rec.record(id, t, -1);
  });
  await xmpp.start();
  return async () => {
    xmpp.reconnect.stop();
    await Promise.race([xmpp.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  };
}

async function run(port: NonNullable<typeof parentPort>, opts: ReceiverOptions): Promise<void> {
  const { rec, stopProgress } = recorder(port);
  const onError = (message: string) => port.postMessage({ type: "error", message });
  let stop: () => void | Promise<void> = () => undefined;
  port.on("message", (msg: { cmd: string }) => {
    if (msg.cmd !== "stop") return;
    stopProgress();
    void Promise.resolve()
      .then(stop)
      .finally(() => {
        port.postMessage({ type: "stopped" });
        port.close();
      });
  });
  try {
    stop = opts.mode === "sse" ? await runSse(opts, rec, onError) : await runComponent(opts, rec, onError);
  } catch (error) {
    port.postMessage({ type: "failed", message: (error as Error).message });
    return;
  }
  port.postMessage({ type: "online" });
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as ReceiverOptions).catch((error: unknown) => port.postMessage({ type: "failed", message: String(error) }));
}
