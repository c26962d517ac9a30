// A one-off component connection for `balcony doctor`: connect and authenticate as the gateway's
// link does (XEP-0114), send a ping (XEP-0199) to our own domain, which the XMPP server routes
// back to this very connection, answer it, and go. A real round trip through the server's router,
// not just an open port. Never call it while a gateway holds the component: Prosody accepts one
// connection per component domain (the newcomer gets `conflict`, or with
// component_conflict_resolve = "kick_old" the gateway is the one thrown out).
import pkg from "@xmpp/component";
import xml from "@xmpp/xml";
import { NS } from "./ns.js";

const { component } = pkg;

export type ProbeFailure =
  /** Nothing accepts TCP connections there. */
  | "refused"
  /** The host name does not resolve, or the network does not reach it. */
  | "unreachable"
  /** The server refused the handshake: the secret differs. */
  | "not-authorized"
  /** The server has no component of that name (Prosody says so at its client port too). */
  | "host-unknown"
  /** What answered does not speak the component protocol: a client or server-to-server port. */
  | "not-a-component-port"
  /** Another connection holds the component (Prosody allows one). */
  | "conflict"
  /** No answer in time. */
  | "timeout"
  | "other";

export type ProbeResult = { ok: true; handshakeMs: number; roundTripMs: number } | { ok: false; failure: ProbeFailure; message: string };

function classify(err: unknown): { failure: ProbeFailure; message: string } {
  const e = err as { code?: string; condition?: string; message?: string; text?: string };
  const message = e?.message ?? String(err);
  const known: Record<string, ProbeFailure> = {
    ECONNREFUSED: "refused",
    ENOTFOUND: "unreachable",
    EAI_AGAIN: "unreachable",
    EHOSTUNREACH: "unreachable",
    ENETUNREACH: "unreachable",
    ETIMEDOUT: "timeout",
    "not-authorized": "not-authorized",
    "host-unknown": "host-unknown",
    "improper-addressing": "host-unknown",
    // RFC 6120 §4.9.3.10: the stream's namespace (jabber:component:accept) is not this listener's.
    "invalid-namespace": "not-a-component-port",
    conflict: "conflict",
  };
  return { failure: known[e?.condition ?? ""] ?? known[e?.code ?? ""] ?? "other", message };
}

export async function probeComponent(opts: { service: string; domain: string; secret: string; timeoutMs?: number }): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const xmpp = component({ service: opts.service, domain: opts.domain, password: opts.secret });
  xmpp.reconnect.stop(); // one attempt: a failure is the answer
  xmpp.on("error", () => undefined); // reported through start() and request(); without a listener it would throw
  xmpp.iqCallee.get(NS.ping, "ping", () => true);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })), timeoutMs);
  });
  try {
    const start = performance.now();
    await Promise.race([xmpp.start(), deadline]);
    const online = performance.now();
    const pong = await Promise.race([xmpp.iqCaller.request(xml("iq", { type: "get", to: opts.domain }, xml("ping", { xmlns: NS.ping })), timeoutMs), deadline]);
    if (pong.attrs.from !== opts.domain) return { ok: false, failure: "other", message: `the ping came back from "${pong.attrs.from}", not from ${opts.domain}` };
    return { ok: true, handshakeMs: online - start, roundTripMs: performance.now() - online };
  } catch (err) {
    return { ok: false, ...classify(err) };
  } finally {
    clearTimeout(timer);
    await Promise.race([xmpp.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  }
}
