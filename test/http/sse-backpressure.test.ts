// An event stream whose consumer reads in spurts (the load audit): each time its socket's buffer
// fills, the stream waits for "drain" or "close"; whichever came, the other's listener stayed, and
// a long-lived stream piled them up (MaxListenersExceededWarning: 11 "close" listeners on one
// response). Now neither outlives the wait (src/http/sse.ts drained).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { waitFor } from "../helpers/gateway.js";
import { TcpRelay } from "../helpers/tcp-relay.js";
import { xml } from "../../scripts/harness/xmpp-user.js";

const warnings: string[] = [];
const leaky = new Set<import("node:events").EventEmitter>();
process.on("warning", (w) => {
  warnings.push(`${w.name}: ${w.message}`);
  const e = (w as { emitter?: import("node:events").EventEmitter }).emitter;
  if (e) leaky.add(e);
});

const N = 3000;
const BODY = 8 * 1024;

/** A lean SSE reader: keeps only each event's id, type and body prefix (so the test's own heap stays small). */
function leanStream(url: string, headers: Record<string, string>) {
  const ac = new AbortController();
  const st = { status: 0, closed: false, opening: "", events: [] as { id: string | null; event: string; body: string }[], close: () => ac.abort() };
  void (async () => {
    try {
      const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ac.signal });
      st.status = res.status;
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body!) {
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!st.opening) st.opening = block;
          let id: string | null = null, event = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data = line.slice(6);
          }
          if (data) {
            const m = /"body":(?:\{"[^"]*":)?"(\d{8})/.exec(data);
            st.events.push({ id, event, body: m ? m[1]! : "" });
          }
        }
      }
    } catch {
      /* aborted */
    } finally {
      st.closed = true;
    }
  })();
  return st;
}

describe("an event stream under repeated back-pressure", () => {
  let w: XmppWorld<"juliet">;
  before(async () => {
    w = await startWorld("prosody", { juliet: "slow" }, { env: { SSE_HEARTBEAT: "1s" } });
  });
  after(async () => {
    await w?.stop();
  });

  it("a stream that meets back-pressure again and again (a consumer slower than a burst) holds a bounded number of listeners", async () => {
    const { gw, users } = w;
    await gw.createAccount("benvolio");
    const account = `benvolio@${gw.domain}`;
    const token = gw.token("benvolio");
    const relay = new TcpRelay(Number(new URL(gw.url).port));
    const relayUrl = `http://127.0.0.1:${await relay.listen()}`;
    const s = leanStream(`${relayUrl}/v1/events?resource=jerky`, { authorization: `Bearer ${token}` });
    const before = new Set(leaky);
    try {
      await waitFor(() => !!s.opening, 10_000, "opening");
      const pad = "x".repeat(BODY - 12);
      // A consumer that reads in spurts: forwarding held for 150 ms, then let go, over and over.
      let spurts = 0;
      const spurting = (async () => {
        while (!s.closed && s.events.filter((e) => e.event === "message").length < N) {
          relay.hold(true);
          await sleep(150);
          relay.hold(false);
          await sleep(20);
          spurts++;
        }
      })();
      for (let i = 0; i < N; i++) await users.juliet.send(xml("message", { to: account, type: "chat", id: `j${i}` }, xml("body", {}, `${String(i).padStart(8, "0")} ${pad}`)));
      await waitFor(() => s.events.filter((e) => e.event === "message").length >= N, 120_000, "all events through the jerky consumer");
      await spurting;
      const fresh = [...leaky].filter((e) => !before.has(e));
      const counts = fresh.map((e) => e.listenerCount("close"));
      assert.ok(spurts > 10, `more stalls (${spurts}) than an emitter's default 10 listeners: a leak would have shown`);
      assert.deepEqual(counts, [], "no response piles up close listeners (MaxListenersExceededWarning)");
    } finally {
      s.close();
      relay.close();
    }
  });
});
