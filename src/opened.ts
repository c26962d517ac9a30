// What a start (src/gateway.ts startGateway) opened so far, for letting go of it when the start
// fails before it returns: an in-process caller (a test, a program embedding the gateway) that
// catches the error would otherwise keep pool connections, the LISTEN connection, Redis, timers,
// the link lease or an embedded PostgreSQL, and a process with nothing else to do would not end.

export class Opened {
  private steps: (() => unknown)[] = [];

  /** Something was opened; `release` lets go of it. */
  add(release: () => unknown): void {
    this.steps.push(release);
  }

  /** From here on `close` lets go of everything, in its own order: it replaces the steps so far. */
  closedBy(close: () => Promise<void>): void {
    this.steps = [close];
  }

  /**
   * Lets go of what was opened, last first, each once (a second call finds nothing). A step that
   * fails is reported and the others still run: the start's own error is what the caller gets.
   */
  async release(report: (err: unknown) => void): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        report(err);
      }
    }
  }
}
