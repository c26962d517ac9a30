// Readiness: Postgres reachable and the component link up.
import type { Database } from "../db/client.js";
import type { OutboundPort } from "./ports.js";

export interface Readiness {
  database: "up" | "down";
  xmpp: "up" | "down";
}

export class Status {
  constructor(
    private readonly db: Database,
    private readonly out: OutboundPort,
  ) {}

  get linkUp(): boolean {
    return this.out.online;
  }

  async ready(): Promise<Readiness> {
    return { database: (await this.db.ping()) ? "up" : "down", xmpp: this.out.online ? "up" : "down" };
  }
}
