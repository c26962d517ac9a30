// Collects concurrent requests and hands them to one function as a batch, so many HTTP
// requests share one database round trip. A batch starts as soon as the previous one finished
// (or immediately when idle): under load batches grow by themselves, idle latency stays one
// round trip.

export class Batcher<In, Out> {
  private queue: { item: In; resolve: (v: Out) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private belowWaiters: { n: number; resolve: () => void }[] = [];

  constructor(
    private readonly run: (items: In[]) => Promise<Out[]>,
    private readonly maxBatch = 500,
    private readonly maxParallel = 2,
  ) {}

  push(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.running < this.maxParallel) queueMicrotask(() => this.next());
    });
  }

  private next(): void {
    if (this.running >= this.maxParallel || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.belowWaiters.length) this.belowWaiters = this.belowWaiters.filter((w) => (this.queue.length < w.n ? void w.resolve() : true));
    this.running++;
    this.run(batch.map((b) => b.item))
      .then(
        (results) => batch.forEach((b, i) => b.resolve(results[i] as Out)),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.running--;
        this.next();
        if (this.running === 0 && this.queue.length === 0) this.idleWaiters.splice(0).forEach((w) => w());
      });
  }

  /** Items waiting for a batch (not those of the batches running). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once fewer than `n` items wait (for back-pressure on whoever pushes). */
  below(n: number): Promise<void> {
    if (this.queue.length < n) return Promise.resolve();
    return new Promise((resolve) => this.belowWaiters.push({ n, resolve }));
  }

  /** Resolves once everything pushed so far has been run (for an orderly shutdown). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
