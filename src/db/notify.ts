// Cross-instance signals over PostgreSQL LISTEN/NOTIFY. One dedicated connection listens on every
// channel; it reconnects when it drops and then tells every listener that it may have missed
// something (payload null), so each can re-read what it follows from Postgres.
import pg from "pg";
import { exec, type AnyTx } from "./client.js";

export const CHANNELS = {
  /** An account's event log grew; payload: the account id. */
  events: "balcony_events",
  /** The stanza outbox or the message queue has rows for the link holder. */
  outbox: "balcony_outbox",
  /** The link holder released the link; standbys try to take it now. */
  link: "balcony_link",
  /** A webhook endpoint was created, changed, replayed or deleted; payload: its id. */
  webhooks: "balcony_webhooks",
  /** A cached row changed; payload: what to forget, e.g. "account:romeo". */
  cache: "balcony_cache",
  /** A session was ended (DELETE /v1/sessions/{resource}); payload: JSON [account id, resource]. */
  sessions: "balcony_sessions",
  /** XMPP_LINK_MODE=all: an instance got the answer to another's barrier ping; payload: the ping's id (src/xmpp/link.ts share()). */
  barrier: "balcony_barrier",
} as const;
export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/** NOTIFY in the caller's transaction: delivered to every instance if and when it commits. */
export async function notify(tx: AnyTx, channel: Channel, payload = ""): Promise<void> {
  await exec(tx, "SELECT pg_notify($1, $2)", [channel, payload]);
}

export class Notifications {
  private readonly handlers = new Map<string, Set<(payload: string | null) => void>>();
  private client: pg.Client | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly log: (msg: string, err?: unknown) => void,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on("notification", (n) => this.handlers.get(n.channel)?.forEach((fn) => fn(n.payload ?? "")));
    client.on("error", (err) => this.reconnect(err));
    client.on("end", () => this.reconnect());
    await client.connect();
    for (const channel of Object.values(CHANNELS)) await client.query(`LISTEN ${channel}`);
    this.client = client;
  }

  private reconnect(err?: unknown): void {
    if (this.stopped || this.retry) return;
    this.log("notification listener lost its connection; reconnecting", err);
    this.client?.removeAllListeners();
    this.client?.end().catch(() => undefined);
    this.client = null;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start().then(
        () => this.handlers.forEach((set) => set.forEach((fn) => fn(null))),
        (e: unknown) => this.reconnect(e),
      );
    }, 1000);
  }

  /** Calls `fn` on every notification of `channel` (and with null after a reconnect); returns the unsubscribe. */
  on(channel: Channel, fn: (payload: string | null) => void): () => void {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** A NOTIFY outside any transaction. */
  async send(channel: Channel, payload = ""): Promise<void> {
    await this.client?.query("SELECT pg_notify($1, $2)", [channel, payload]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = null;
    c?.removeAllListeners();
    await c?.end().catch(() => undefined);
  }
}
