// A per-test account driver for the integration tests: a fresh hosted account on a test gateway
// and the REST calls the tests make as it (its events, messages and their views), so that tests do
// not depend on each other.
import assert from "node:assert/strict";
import type { Attachment } from "../../src/domain/message-features.js";
import { uniq, waitFor, type TestGateway } from "./gateway.js";

export type { Attachment };

/** An event of the account's log (GET /v1/events as JSON). */
export interface Ev {
  id: number;
  event: string;
  data: Record<string, unknown>;
}
/** A message view (GET /v1/messages/{id}). */
export interface View {
  id: string;
  direction: string;
  from: string;
  to: string;
  body: unknown;
  status: string;
  createdAt: string;
  edited: string | null;
  retracted: string | null;
  reactions: Record<string, string[]>;
  replyTo: { id: string | null } | null;
  attachments: Attachment[];
  marker: string | null;
  [field: string]: unknown;
}

export interface AccountDriverOptions {
  /** The localpart's prefix (a random suffix is added); "romeo" unless given. */
  prefix?: string;
  /** The session's resource in the token; "phone" unless given. */
  resource?: string;
  /** How long `until` waits, in ms; 20 s unless given. */
  waitMs?: number;
}

/** Creates a fresh account on `gw` (session `resource`, "phone" by default) and resolves with the operations tests make as it. */
export async function accountDriver(gw: TestGateway, opts: AccountDriverOptions = {}) {
  const { prefix = "romeo", resource = "phone", waitMs = 20_000 } = opts;
  const lp = uniq(prefix);
  await gw.createAccount(lp);
  const token = gw.token(lp, { resource });
  const jid = `${lp}@${gw.domain}`;
  const call = (method: string, p: string, body?: unknown) => gw.request(method, p, { token, body });
  const events = async () => (await gw.request("GET", "/v1/events?since=0&limit=1000", { token, headers: { accept: "application/json" } })).body.items as Ev[];
  /** The first event `pred` accepts, waiting for it; at the timeout the error names the last events. */
  const until = async (what: string, pred: (e: Ev) => boolean): Promise<Ev> => {
    let found: Ev | undefined;
    let seen: Ev[] = [];
    try {
      await waitFor(async () => (found = (seen = await events()).find(pred)) !== undefined, waitMs, what);
    } catch (error) {
      const last = seen.slice(-8).map((e) => `  ${e.event}: ${JSON.stringify(e.data).slice(0, 400)}`);
      throw new Error(`${(error as Error).message}; the last events:\n${last.join("\n")}`, { cause: error });
    }
    return found!;
  };
  /** POST /v1/messages, asserting the 202; resolves with the id it answered. */
  const send = async (payload: Record<string, unknown>): Promise<string> => {
    const r = await call("POST", "/v1/messages", payload);
    assert.equal(r.status, 202, `send ${JSON.stringify(payload)}: ${r.text}`);
    return r.body.id as string;
  };
  /** GET /v1/messages/{id}, asserting the 200. */
  const view = async (id: string): Promise<View> => {
    const r = await call("GET", `/v1/messages/${id}`);
    assert.equal(r.status, 200, `GET message ${id}: ${r.text}`);
    return r.body as View;
  };
  /** The history with `peer`, newest first. */
  const history = async (peer: string): Promise<View[]> => {
    const r = await call("GET", `/v1/messages?with=${encodeURIComponent(peer)}&limit=200`);
    assert.equal(r.status, 200, r.text);
    return r.body.items as View[];
  };
  /** The message-update events of message `id`. */
  const updatesOf = (evs: Ev[], id: string) => evs.filter((e) => e.event === "message-update" && e.data.id === id);
  /** The stanza ids of the message events: the messages the account received as messages. */
  const messageIds = (evs: Ev[]) => evs.filter((e) => e.event === "message").map((e) => e.data.stanzaId);
  return { lp, jid, token, call, events, until, send, view, history, updatesOf, messageIds };
}
export type AccountDriver = Awaited<ReturnType<typeof accountDriver>>;
