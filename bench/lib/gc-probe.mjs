// Bench-only preload for a gateway started with `node --expose-gc --import <this>`: on SIGUSR2 it
// collects garbage fully and writes process.memoryUsage() to $BENCH_MEMORY_FILE. bench/streams.ts
// reads the gateway's memory this way, so a per-stream figure compares two heaps after a full
// collection instead of whatever V8 had last collected (identical runs differed by 10 KiB per
// stream before). Plain JavaScript, so the built gateway (dist/server.js) can load it without tsx.
// Nothing of it is in the gateway itself.
import { renameSync, writeFileSync } from "node:fs";
import process from "node:process";

const file = process.env.BENCH_MEMORY_FILE;
const gc = globalThis.gc;
if (file && gc) {
  process.on("SIGUSR2", () => {
    // Twice: objects with finalizers or weak references are freed by the second pass.
    gc();
    gc();
    writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
    renameSync(`${file}.tmp`, file);
  });
}
