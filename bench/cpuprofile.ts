// Summarises a V8 .cpuprofile (node --cpu-prof) for the benchmark report: where the gateway's
// CPU time went during a time window, by package / source file and by function.
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds, CLOCK_MONOTONIC (the clock of process.hrtime on Linux). */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the window's non-idle samples. */
  share: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time in the window, ms, idle excluded. */
  busyMs: number;
  idleMs: number;
  /** True when the window did not overlap the profile and the whole profile was used. */
  wholeProfile: boolean;
  selfByCategory: ProfileEntry[];
  inclusiveByCategory: ProfileEntry[];
  selfByFunction: ProfileEntry[];
  inclusiveBySrcFunction: ProfileEntry[];
}

/** "@prisma/client", "src/db/messages.ts", "node:internal/streams", "(garbage collector)", … */
export function categoryOf(frame: CallFrame, root: string): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "/node_modules/".length).split("/");
    return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1] ?? ""}` : (parts[0] ?? url);
  }
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/");
  const path = url.startsWith("file://") ? url.slice("file://".length) : url;
  return path.startsWith(root) ? path.slice(root.length).replace(/^\//, "") : path;
}

function functionLabel(frame: CallFrame, root: string): string {
  // tsx emits each module on few lines, so line numbers mostly say nothing: only shown past 1.
  const line = frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : "";
  return `${frame.functionName || "(anonymous)"} ${categoryOf(frame, root)}${line}`;
}

function top(map: Map<string, number>, busyUs: number, n: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
}

/**
 * Reads a profile and aggregates the samples taken between fromUs and toUs (CLOCK_MONOTONIC
 * microseconds, e.g. process.hrtime.bigint() / 1000n of any process on the same Linux machine).
 */
export function summarizeProfile(file: string, root: string, fromUs: number, toUs: number, n = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  let wholeProfile = profile.endTime < fromUs || profile.startTime > toUs;
  const inWindow = (t: number) => wholeProfile || (t >= fromUs && t <= toUs);

  const selfCat = new Map<string, number>();
  const inclCat = new Map<string, number>();
  const selfFn = new Map<string, number>();
  const inclSrcFn = new Map<string, number>();
  let busyUs = 0;
  let idleUs = 0;
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);

  const pass = () => {
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      const dt = profile.timeDeltas[i] ?? 0;
      t += dt;
      if (!inWindow(t)) continue;
      const node = byId.get(profile.samples[i]!);
      if (!node) continue;
      const fn = node.callFrame.functionName;
      if (fn === "(idle)") {
        idleUs += dt;
        continue;
      }
      busyUs += dt;
      add(selfCat, categoryOf(node.callFrame, root), dt);
      add(selfFn, functionLabel(node.callFrame, root), dt);
      const cats = new Set<string>();
      const fns = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)!.callFrame;
        const cat = categoryOf(frame, root);
        cats.add(cat);
        if (cat.startsWith("src/")) fns.add(functionLabel(frame, root));
      }
      for (const c of cats) add(inclCat, c, dt);
      for (const f of fns) add(inclSrcFn, f, dt);
    }
  };
  pass();
  if (busyUs === 0 && !wholeProfile) {
    wholeProfile = true;
    pass();
  }
  return {
    file,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    wholeProfile,
    selfByCategory: top(selfCat, busyUs, n),
    inclusiveByCategory: top(inclCat, busyUs, n),
    selfByFunction: top(selfFn, busyUs, n),
    inclusiveBySrcFunction: top(inclSrcFn, busyUs, n),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  const section = (title: string, entries: ProfileEntry[]) =>
    [`  ${title}`, ...entries.map((e) => `    ${pct(e.share)} ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}`)].join("\n");
  return [
    `Gateway CPU profile (${s.file}${s.wholeProfile ? ", the whole run: no sample in the window" : ""}): ${s.busyMs.toFixed(0)} ms busy, ${s.idleMs.toFixed(0)} ms idle`,
    section("self time by package / file", s.selfByCategory),
    section("inclusive time by package / file (on the stack)", s.inclusiveByCategory),
    section("self time by function", s.selfByFunction),
    section("inclusive time by src/ function", s.inclusiveBySrcFunction),
  ].join("\n");
}
