// What the gateway allocates a message (`bench/inbound.ts --alloc`): bench/lib/alloc-probe.mjs,
// loaded into the gateway, samples its allocations between two SIGUSR2s and writes V8's sampling
// heap profile; this reads it. The profile's sizes are V8's estimates of all that was allocated
// (each sample stands for SAMPLE_BYTES on average), so the figure holds whatever the machine's
// load: unlike CPU time on a shared 2-core machine, it compares runs of two versions directly.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { categoryOf } from "../cpuprofile.js";
import { sleep } from "./util.js";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

export interface AllocEntry {
  name: string;
  kbPerMessage: number;
}

export interface AllocSummary {
  messages: number;
  kbPerMessage: number;
  /** By package or source file (bench/cpuprofile.ts categoryOf), largest first. */
  byFile: AllocEntry[];
}

/** Starts sampling in the gateway (`pid`, its probe writing to `file`); the returned stop() ends it and reads the profile. */
export function sampleAllocations(pid: number, file: string): { stop: () => Promise<HeapNode> } {
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  return {
    async stop() {
      process.kill(pid, "SIGUSR2");
      for (let waited = 0; !existsSync(file); waited += 50) {
        if (waited > 30_000) throw new Error(`the gateway's allocation probe wrote nothing to ${file} within 30 s`);
        await sleep(50);
      }
      const profile = JSON.parse(readFileSync(file, "utf8")) as { head?: HeapNode; error?: string };
      if (!profile.head) throw new Error(`the allocation probe failed: ${profile.error ?? "no profile"}`);
      return profile.head;
    },
  };
}

/** KB allocated a message over the window, in all and by file (the `n` largest). */
export function summarizeAllocations(head: HeapNode, root: string, messages: number, n = 8): AllocSummary {
  const byFile = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode) => {
    total += node.selfSize;
    const file = categoryOf(node.callFrame, root);
    byFile.set(file, (byFile.get(file) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(head);
  const kb = (bytes: number) => bytes / 1024 / Math.max(1, messages);
  return {
    messages,
    kbPerMessage: kb(total),
    byFile: [...byFile.entries()]
      .filter(([, bytes]) => bytes > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, bytes]) => ({ name, kbPerMessage: kb(bytes) })),
  };
}
