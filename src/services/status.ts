// Readiness: Postgres reachable, and the component link up on this instance ("up") or on the
// instance holding it ("standby": this one hands its stanzas over through Postgres).
import type { Database } from "../db/client.js";
import type { LinkControl } from "./link-control.js";
import type { OutboundPort } from "./ports.js";

export interface Readiness {
  database: "up" | "down";
  xmpp: "up" | "standby" | "down";
}

export class Status {
  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
    private readonly control: LinkControl,
  ) {}

  get linkUp(): boolean {
    return this.out.online;
  }

  async ready(): Promise<Readiness> {
    const [database, xmpp] = await Promise.all([this.db.ping(), this.control.readiness()]);
    return { database: database ? "up" : "down", xmpp };
  }
}
