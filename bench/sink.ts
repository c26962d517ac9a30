// The receiving XMPP user of the benchmark, run in a worker thread so that its receive
// timestamps are not delayed by the HTTP load generator on the main thread.
//
// It logs in with @xmpp/client (scripts/harness/xmpp-user.ts's plainClient) and records, for
// every <message/> it receives, only its id and receive time: nothing else is kept, so it keeps
// up with tens of thousands of stanzas per second. With `key: "body"` the key it records is the
// message's body text instead of its id: for senders that do not choose the stanza id (an XMPP
// server's HTTP API such as ejabberd's send_message), the body is what identifies a message.
//
// Protocol with the main thread (bench/lib/worker-client.ts):
//   worker → main: { type: "online", jid } | { type: "failed", message }
//                  { type: "progress", unique, total }         (whenever it changed, ≤ every 25 ms)
//                  { type: "records", ids, times }             (answer to "take")
//                  { type: "stopped" }                         (answer to "stop")
//   main → worker: { cmd: "take" }   hands over what was received since the last take, and resets
//                  { cmd: "stop" }
import { parentPort, workerData } from "node:worker_threads";
import { plainClient, xml } from "../scripts/harness/xmpp-user.js";
import { now } from "./lib/util.js";

export interface SinkOptions {
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  /** What identifies a received message: its id attribute (default) or its body text. */
  key?: "id" | "body";
}

async function run(port: NonNullable<typeof parentPort>, opts: SinkOptions): Promise<void> {
  const xmpp = plainClient(opts);

  const byBody = opts.key === "body";
  let ids: string[] = [];
  let times: number[] = [];
  let seen = new Set<string>();
  let dirty = false;
  xmpp.on("stanza", (stanza) => {
    if (stanza.name !== "message") return;
    const id = byBody ? (stanza.getChildText("body") ?? undefined) : stanza.attrs.id;
    if (id === undefined) return;
    ids.push(id);
    times.push(now());
    seen.add(id);
    dirty = true;
  });
  xmpp.on("error", (error) => port.postMessage({ type: "error", message: error.message }));

  const progress = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    port.postMessage({ type: "progress", unique: seen.size, total: ids.length });
  }, 25);

  port.on("message", (msg: { cmd: string }) => {
    if (msg.cmd === "take") {
      port.postMessage({ type: "records", ids, times: Float64Array.from(times) });
      ids = [];
      times = [];
      seen = new Set();
      dirty = false;
    } else if (msg.cmd === "stop") {
      clearInterval(progress);
      void Promise.race([xmpp.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]).then(() => {
        port.postMessage({ type: "stopped" });
        port.close();
      });
    }
  });

  try {
    await xmpp.start();
    // Initial presence: the server then also routes bare-JID messages to this resource.
    await xmpp.send(xml("presence"));
  } catch (error) {
    port.postMessage({ type: "failed", message: (error as Error).message });
    return;
  }
  port.postMessage({ type: "online", jid: String(xmpp.jid) });
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as SinkOptions).catch((error: unknown) => port.postMessage({ type: "failed", message: String(error) }));
}
