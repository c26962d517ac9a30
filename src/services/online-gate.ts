// What the link holder records when its link comes up goes out before what waited for the link.
// Delivery drains whenever its gate says it holds the link; this gate says so only once the
// stanzas that must go first are recorded (ahead of the queue: src/db/outbox.ts enqueueAhead).
// Today that is the rejoin of the rooms (src/services/rooms.ts rejoin): the group messages, subject
// changes and invitations posted while the link was down need the account to be an occupant
// again, and a drain that started at once would claim and write them before the joins were even
// recorded. Everything else about who may send (the lease, its fence) is the wrapped gate's.
import type { SendGate } from "./delivery.js";

export class OnlineGate implements SendGate {
  private ready = false;
  /** Counts the link's ups and downs: only the latest up opens the gate. */
  private generation = 0;

  constructor(private readonly inner: SendGate) {}

  get holder(): boolean {
    return this.ready && this.inner.holder;
  }

  get exclusive(): boolean {
    return this.inner.exclusive;
  }

  fence(): { key: [number, number]; pid: number } | null {
    return this.inner.fence();
  }

  get drainIdleLimitMs(): number {
    return this.inner.drainIdleLimitMs;
  }

  /**
   * The link came up: runs `first` (it records what goes ahead), then opens and calls `opened` (a
   * drain). A `first` that fails is reported and opens the gate all the same: what waited is not
   * held back for good (a group message then fails as the room answers it). Superseded when the
   * link went down meanwhile: the next up opens.
   */
  up(first: () => Promise<unknown>, opened: () => void, failed: (err: unknown) => void): void {
    const generation = ++this.generation;
    this.ready = false;
    void first()
      .catch(failed)
      .finally(() => {
        if (generation !== this.generation) return;
        this.ready = true;
        opened();
      });
  }

  down(): void {
    this.generation++;
    this.ready = false;
  }
}
