// The link holder keeps the outbound queue tables vacuumed (src/db/outbox.ts tidyQueue): each row
// it takes out leaves a dead version that every claim and check of the queue steps over until
// VACUUM (and, where autovacuum is off, it analyzes what changed). It does so at its periodic
// sweep, when it took rows out since the last time.
export class QueueTidy {
  private untidy = 0;
  private running = false;

  constructor(
    private readonly vacuum: () => Promise<void>,
    private readonly failed: (err: unknown) => void,
  ) {}

  /** `n` rows left the queue. */
  took(n: number): void {
    this.untidy += n;
  }

  run(): void {
    if (this.untidy === 0 || this.running) return;
    this.untidy = 0;
    this.running = true;
    void this.vacuum()
      .catch(this.failed)
      .finally(() => (this.running = false));
  }
}
