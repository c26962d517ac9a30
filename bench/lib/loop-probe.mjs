// Loaded into the gateway with --import by `bench/inbound.ts --stalls` (bench/lib/gateway.ts): records
// in BENCH_LOOP_FILE, on the clock the benches time messages with (CLOCK_MONOTONIC ms, bench/lib/util.ts's now),
//   gc <start ms> <duration ms> <kind>     every garbage collection (kind: perf_hooks' NODE_PERFORMANCE_GC_*)
//   gap <start ms> <duration ms> <cpu ms>  every late firing of a 1 ms timer by more than GAP_MS: the event
//                                          loop did not come round; cpu is the process's CPU meanwhile
//                                          (all its threads): near the gap's length, the gateway was working
//                                          (JavaScript, a collection); far below, it waited for a core or in
//                                          the kernel
//   start <ms>                             once, when loaded
// The 1 ms timer costs CPU of its own (a wake-up a millisecond): figures of a run with it are not
// comparable with runs without. Lines are written every 100 ms and at exit. Plain JavaScript, as
// bench/lib/gc-probe.mjs, so a built gateway could load it too; nothing of it is in the gateway.
import { appendFileSync, writeFileSync } from "node:fs";
import { PerformanceObserver, performance } from "node:perf_hooks";
import process from "node:process";
import { setInterval } from "node:timers";

const GAP_MS = 4;
const file = process.env.BENCH_LOOP_FILE;
if (file) {
  // performance.now() and its entries' startTime count from this thread's start on CLOCK_MONOTONIC:
  // one offset, read once, puts them on the benches' clock.
  const origin = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const at = (t) => (origin + t).toFixed(2);
  let lines = [];
  const flush = () => {
    if (lines.length) appendFileSync(file, lines.join(""));
    lines = [];
  };
  writeFileSync(file, `start ${at(performance.now())}\n`);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) lines.push(`gc ${at(e.startTime)} ${e.duration.toFixed(2)} ${e.detail?.kind ?? 0}\n`);
  }).observe({ entryTypes: ["gc"] });
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    if (now - last > 1 + GAP_MS) lines.push(`gap ${at(last)} ${(now - last).toFixed(2)} ${((cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000).toFixed(2)}\n`);
    last = now;
    lastCpu = cpu;
  }, 1).unref();
  setInterval(flush, 100).unref();
  process.on("exit", flush);
}
