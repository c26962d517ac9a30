// The component link lease (XMPP_LINK_MODE=single): a PostgreSQL advisory lock held on a
// connection of its own. Postgres releases it the moment that connection ends (the holder died,
// or its connection was cut), so a crashed holder needs no timeout to be replaced; and the claim
// of outbound rows checks the lock by the holder's backend pid (src/db/outbox.ts), so a holder
// that lost it cannot send another row. The holder also names its link state in its connection's
// application_name, which lets every other instance report it in /readyz.
import { EventEmitter } from "node:events";
import pg from "pg";

/** Two 32-bit keys (pg_try_advisory_lock(int, int)): "balcony", "component link". */
export const LEASE_KEY: [number, number] = [0x42a1c0, 0x11c4];
const APP_UP = "balcony-link-up";
const APP_DOWN = "balcony-link-down";

export type LinkState = "up" | "down" | "none";

export class LinkLease extends EventEmitter<{ lost: [] }> {
  private client: pg.Client | null = null;
  /** The backend pid of the connection holding the lock, while held. */
  pid: number | null = null;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
  ) {
    super();
  }

  /** The state of the link as its holder (this instance or another) reports it. */
  holderState(): Promise<LinkState> {
    return holderLinkState(this.pool);
  }

  get held(): boolean {
    return this.pid !== null;
  }

  /**
   * Takes the lease if nobody holds it: "held" (this instance holds it now), "taken" (Postgres
   * answered: another instance holds it) or "unreachable" (Postgres did not answer).
   */
  async tryAcquire(): Promise<"held" | "taken" | "unreachable"> {
    if (this.held) return "held";
    const client = new pg.Client({ connectionString: this.url, application_name: APP_DOWN });
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    try {
      await client.connect();
      const r = await client.query<{ ok: boolean; pid: number }>("SELECT pg_try_advisory_lock($1, $2) AS ok, pg_backend_pid() AS pid", LEASE_KEY);
      if (!r.rows[0]?.ok) {
        client.removeAllListeners();
        await client.end().catch(() => undefined);
        return "taken";
      }
      this.client = client;
      this.pid = r.rows[0].pid;
      return "held";
    } catch {
      client.removeAllListeners();
      await client.end().catch(() => undefined);
      return "unreachable";
    }
  }

  private lost(client: pg.Client): void {
    if (client !== this.client) return;
    this.client = null;
    this.pid = null;
    client.removeAllListeners();
    client.end().catch(() => undefined);
    this.emit("lost");
  }

  /** Publishes the holder's link state to the other instances. */
  async setLinkState(up: boolean): Promise<void> {
    await this.client?.query(`SET application_name = '${up ? APP_UP : APP_DOWN}'`).catch(() => undefined);
  }

  /** Gives the lease up (the lock goes with the connection). */
  async release(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.pid = null;
    if (!client) return;
    client.removeAllListeners();
    await client.end().catch(() => undefined);
  }
}

/** The state of the link as its holder reports it: up, down (held but not connected), or none (nobody holds it). */
export async function holderLinkState(pool: pg.Pool): Promise<LinkState> {
  const r = await pool.query<{ app: string }>(
    `SELECT a.application_name AS app FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2 AND l.granted`,
    LEASE_KEY,
  );
  const app = r.rows[0]?.app;
  return app === undefined ? "none" : app === APP_UP ? "up" : "down";
}
