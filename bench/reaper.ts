// The benchmark's watchdog: a detached process that removes what the benchmark started if the
// benchmark dies without cleaning up (SIGKILL, a crash, or `npm run bench` + Ctrl-C, where the
// tsx CLI SIGKILLs its child when the child's event loop does not acknowledge the signal within
// 30 ms).
//
// The benchmark writes one JSON object per line on our stdin as it starts things:
//   { "gatewayPid": 123 } (one line per gateway process)   { "serverWorkDir": "/tmp/balcony-prosody-…" }
//   { "database": "balcony_t_…", "baseUrl": "postgresql://…/postgres" }   { "dir": "/tmp/…" }
//   { "done": true }        (it cleaned up itself: nothing to do)
// When stdin ends without "done", the benchmark is gone: kill and remove everything listed.
import { readdirSync, readFileSync, rmSync } from "node:fs";
import pg from "pg";

interface Resources {
  gatewayPids: number[];
  serverWorkDirs: string[];
  databases: { name: string; baseUrl: string }[];
  dirs: string[];
}

const res: Resources = { gatewayPids: [], serverWorkDirs: [], databases: [], dirs: [] };
let done = false;
let buffer = "";

function cmdline(pid: string | number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

async function reap(): Promise<void> {
  for (const pid of res.gatewayPids) if (cmdline(pid).includes("src/server.ts")) kill(pid);
  for (const dir of res.serverWorkDirs) {
    for (const entry of readdirSync("/proc")) {
      if (/^\d+$/.test(entry) && cmdline(entry).includes(dir)) kill(Number(entry));
    }
  }
  for (const { name, baseUrl } of res.databases) {
    if (!/^[a-z0-9_]+$/.test(name)) continue;
    const client = new pg.Client({ connectionString: baseUrl });
    try {
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch {
      // nothing more we can do
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  // Give killed servers a moment to release their files before removing their directories.
  await new Promise((r) => setTimeout(r, 500));
  for (const dir of [...res.serverWorkDirs, ...res.dirs]) rmSync(dir, { recursive: true, force: true });
}

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  buffer += chunk;
  let nl: number;
  while ((nl = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    try {
      const m = JSON.parse(line) as { gatewayPid?: number; serverWorkDir?: string; database?: string; baseUrl?: string; dir?: string; done?: boolean };
      if (m.gatewayPid !== undefined) res.gatewayPids.push(m.gatewayPid);
      if (m.serverWorkDir) res.serverWorkDirs.push(m.serverWorkDir);
      if (m.database && m.baseUrl) res.databases.push({ name: m.database, baseUrl: m.baseUrl });
      if (m.dir) res.dirs.push(m.dir);
      if (m.done) done = true;
    } catch {
      // ignore malformed lines
    }
  }
});
process.stdin.on("end", () => {
  if (done) process.exit(0);
  const timer = setTimeout(() => process.exit(1), 30_000);
  void reap().finally(() => {
    clearTimeout(timer);
    process.exit(0);
  });
});
// Detached from the benchmark's terminal: a Ctrl-C there must not stop us.
process.on("SIGINT", () => undefined);
process.on("SIGHUP", () => undefined);
