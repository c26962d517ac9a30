// The one clock of the harness and the benches.

/**
 * CLOCK_MONOTONIC milliseconds with sub-millisecond precision: one clock for every process on the
 * machine, so a time taken in one (a send) and one taken in another (a webhook's arrival, a stall in
 * the gateway) subtract. `performance.timeOrigin + performance.now()` does not: each process's origin
 * is the wall clock read when it started (a worker thread shares its process's), and a step of the
 * wall clock between two starts shifted every latency across them (a webhook p50 of -0.62 ms in CI).
 */
export const mono = (): number => Number(process.hrtime.bigint()) / 1e6;
