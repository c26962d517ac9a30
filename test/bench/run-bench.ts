// Runs a benchmark script (bench/<name>.ts) as its own process for the smoke tests, collecting its
// output. On the deadline it is either asked to stop (SIGTERM: the bench cleans up, and its
// watchdog if it dies outright; the run resolves with what it printed) or killed and the run fails.
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
