// What an instance does when its component link comes up: the XMPP server may have forgotten the
// accounts' presence and their rooms' occupants (a restart), so it rejoins the rooms (recorded
// ahead of the queue: src/services/rooms.ts rejoin) and publishes the presence again, with probes
// (src/services/presence.ts republish). With XMPP_LINK_MODE=all one instance does it for all after
// an outage (src/db/link-republish.ts); the others only drain, behind the joins it recorded.
import { claimRepublish } from "../db/link-republish.js";
import type { ServiceLog } from "./ports.js";
import type { Presence } from "./presence.js";
import type { Rooms } from "./rooms.js";

export class LinkUp {
  /** When the link went down: the process's start until it first comes up. */
  private downAt = performance.now();

  constructor(
    private readonly rooms: Pick<Rooms, "rejoin">,
    private readonly presence: Pick<Presence, "republish">,
    /** XMPP_LINK_MODE=all: other instances' links serve the same domain. */
    private readonly shared: boolean,
    private readonly log: ServiceLog,
  ) {}

  down(): void {
    this.downAt = performance.now();
  }

  /** Resolves once the rooms' joins are recorded (here, or by the instance that claimed them). */
  async up(): Promise<void> {
    const downForMs = Math.round(performance.now() - this.downAt);
    let rooms: number | null;
    try {
      rooms = await this.rooms.rejoin(this.shared ? (tx) => claimRepublish(tx, downForMs) : undefined);
    } catch (err) {
      this.republish(); // whether another instance did is unknown: a repeat is harmless
      throw err;
    }
    if (rooms === null) {
      this.log.info({ downForMs }, "link up: another instance rejoined the rooms and published presence after this link went down");
      return;
    }
    this.log.info({ rooms, downForMs }, "link up: rejoining the rooms and publishing presence again");
    this.republish();
  }

  private republish(): void {
    void this.presence.republish().catch((err: unknown) => this.log.warn({ err: String(err) }, "republishing presence failed"));
  }
}
