// Runs a benchmark script (bench/<name>.ts) as its own process for the smoke tests, collecting its
// output. On the deadline it is either asked to stop (SIGTERM: the bench cleans up, and its
// watchdog if it dies outright; the run resolves with what it printed) or killed and the run fails.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBench(script: string, args: string[], timeoutMs: number, onTimeout: "terminate" | "fail" = "terminate"): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      if (onTimeout === "terminate") return child.kill("SIGTERM");
      child.kill("SIGKILL");
      reject(new Error(`${script} ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The "figure  value  ceiling/reference  ratio" table a benchmark prints (bench/rooms.ts,
 * bench/webhooks.ts), cells split on the column gaps (two spaces or more): `row(prefix)` gives the
 * three cells of the row whose label starts with `prefix`, and fails the test if there is none.
 */
export function figureTable(stdout: string): (prefix: string) => string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => /^figure\s{2,}value\s{2,}ceiling\/reference\s{2,}ratio$/.test(l));
  assert.ok(start >= 0, `no table header in:\n${stdout}`);
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break;
    const [label, ...cells] = line.split(/\s{2,}/);
    rows.set(label!, cells);
  }
  return (prefix) => {
    const found = [...rows].find(([label]) => label.startsWith(prefix));
    assert.ok(found, `no row "${prefix}" in:\n${stdout}`);
    assert.equal(found[1].length, 3, `row "${found[0]}" should have value, ceiling/reference and ratio: ${JSON.stringify(found[1])}`);
    return found[1];
  };
}

/** A printed number ("12,345", "0.42"); NaN for "-" or anything else. */
export const num = (cell: string | undefined) => (cell !== undefined && /^\d[\d,]*(\.\d+)?$/.test(cell) ? Number(cell.replaceAll(",", "")) : NaN);
