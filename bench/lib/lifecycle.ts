// Cleanup of everything the message benchmark starts: each resource registers its undo here; they
// run in reverse order, once, each bounded, on success, error, Ctrl-C or the overall timeout. A
// detached watchdog (bench/reaper.ts) does it if this process is killed outright.
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { log, withTimeout } from "./util.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
let aborting = false;
/** Synchronous last resort on process exit (gateway processes; the harness kills its servers). */
export const exitKills = new Set<ChildProcess>();

/** Set on Ctrl-C or the overall timeout: the load and the waits stop early. */
export function isAborting(): boolean {
  return aborting;
}

export function checkAborted(): void {
  if (aborting) throw new Error("aborted");
}

export function onCleanup(what: string, fn: () => Promise<void> | void): void {
  cleanups.push({ what, fn });
}

/** Runs the cleanups registered above `floor`, newest first, each bounded: one failing stops none. */
async function unwind(floor: number): Promise<void> {
  while (cleanups.length > floor) {
    const { what, fn } = cleanups.pop()!;
    try {
      await withTimeout(Promise.resolve().then(fn), 15_000, `cleanup: ${what}`);
    } catch (error) {
      log(`cleanup of ${what} failed: ${(error as Error).message}`);
    }
  }
}

export function cleanup(): Promise<void> {
  cleaning ??= unwind(0);
  return cleaning;
}

/** Runs the cleanups registered since `mark()` returned (e.g. one server's resources), in reverse order. */
export function cleanupSince(mark: number): Promise<void> {
  return unwind(mark);
}

export function mark(): number {
  return cleanups.length;
}

export interface ReaperResource {
  gatewayPid?: number | undefined;
  serverWorkDir?: string;
  database?: string;
  baseUrl?: string;
  dir?: string;
}

/** The watchdog (bench/reaper.ts): cleans up after us if we die before cleanup() finished. */
export const reaper = (() => {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "reaper.ts")], {
    cwd: ROOT,
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
  child.on("error", (e) => log(`watchdog: ${e.message}`));
  const stdin = child.stdin!;
  stdin.on("error", () => undefined);
  (stdin as unknown as Socket).unref?.();
  return {
    tell(resource: ReaperResource): void {
      stdin.write(`${JSON.stringify(resource)}\n`);
    },
    done(): void {
      stdin.end(`${JSON.stringify({ done: true })}\n`);
    },
  };
})();

process.on("exit", () => {
  for (const child of exitKills) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  // The harness's own handler (registered first) kills the XMPP servers and re-raises the signal;
  // this persistent listener keeps the process alive until our cleanup (gateway, DB) is done.
  process.on(signal, () => {
    if (cleaning) return;
    aborting = true;
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
    });
  });
}

let overall: NodeJS.Timeout | undefined;
export function armOverallTimeout(ms: number): void {
  overall = setTimeout(() => {
    aborting = true;
    log(`overall timeout of ${ms / 1000} s reached: cleaning up`);
    void cleanup().finally(() => {
      reaper.done();
      process.exit(1);
    });
  }, ms);
}

export function disarmOverallTimeout(): void {
  clearTimeout(overall);
}

/**
 * A benchmark's last step: runs `main`, hands its result to `print`, then (on success, error or
 * abort alike) cleans up and exits, with 1 when anything failed.
 */
export async function runBench<R>(main: () => Promise<R>, print: (result: R) => void): Promise<never> {
  let exitCode = 0;
  try {
    print(await main());
  } catch (error) {
    if (isAborting()) log("aborted");
    else log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    exitCode = 1;
  } finally {
    disarmOverallTimeout();
    await cleanup();
    reaper.done();
  }
  process.exit(exitCode);
}

/** The report on stdout; with `json` the JSON line goes there instead and the text to stderr. */
export function printReport(text: string, json: string | null): void {
  if (json === null) {
    process.stdout.write(`${text}\n`);
    return;
  }
  process.stderr.write(`${text}\n`);
  process.stdout.write(`${json}\n`);
}
