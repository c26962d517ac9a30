// Ports for the servers the harness starts, and which process listens on a port.
//
// The kernel hands out a free port (listen on port 0), but the harness closes that socket before
// the server it is for binds the port, seconds later (a gateway compiles under tsx first), and the
// test files run in parallel processes: the kernel may hand the same port to another file
// meanwhile. Then one of the two servers fails to bind, and the harness that polls the port can
// take the other file's server for its own (a /readyz 200 from another test's gateway, behind this
// test's HAProxy: its requests answered from another database). So every port handed out here is
// reserved across processes until this process exits: a file named after it in a shared
// directory, created exclusively, holding the pid. A reservation whose process is gone (killed
// before its exit handler ran) is taken over.
import { mkdirSync, readdirSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DIR = join(tmpdir(), "balcony-harness-ports");
/** How many ports the kernel is asked for before giving up on finding unreserved ones. */
const ATTEMPTS = 50;

const mine = new Set<number>();
process.on("exit", () => {
  for (const port of mine) release(port);
});

const fileOf = (port: number) => join(DIR, String(port));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function create(port: number): boolean {
  try {
    writeFileSync(fileOf(port), String(process.pid), { flag: "wx" });
    mine.add(port);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return false;
  }
}

/**
 * Reserves `port` for this process until it exits (or release()); false if a live process holds
 * it. Two processes taking over the same stale reservation at the same moment could both win; for
 * that, the kernel would have to hand both the same port just then.
 */
export function reservePort(port: number): boolean {
  if (mine.has(port)) return true;
  mkdirSync(DIR, { recursive: true });
  if (create(port)) return true;
  let owner = NaN;
  try {
    owner = Number(readFileSync(fileOf(port), "utf8"));
  } catch {
    /* released meanwhile */
  }
  if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
  try {
    unlinkSync(fileOf(port));
  } catch {
    /* another process took it over first */
  }
  return create(port);
}

/** Gives a reservation back (at exit, every one this process holds). */
export function releasePort(port: number): void {
  if (mine.delete(port)) release(port);
}

function release(port: number): void {
  try {
    if (readFileSync(fileOf(port), "utf8") === String(process.pid)) unlinkSync(fileOf(port));
  } catch {
    /* gone already */
  }
}

function listenOnAny(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => resolve(server));
  });
}

/** `n` distinct free ports on `host`, each reserved for this process (see above). */
export async function freePorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < n; attempt++) {
    if (attempt >= ATTEMPTS) throw new Error(`no ${n} free unreserved ports on ${host} after ${ATTEMPTS} tries`);
    // All held at once, so the kernel hands out distinct ones.
    const servers = await Promise.all(Array.from({ length: n - ports.length }, () => listenOnAny(host)));
    for (const s of servers) {
      const port = (s.address() as AddressInfo).port;
      // Not one this process reserved before: its server may not have bound it yet.
      if (!mine.has(port) && reservePort(port)) ports.push(port);
    }
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return ports;
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return (await freePorts(1, host))[0]!;
}

/** Inodes of the TCP sockets listening on `port`, any address (/proc/net/tcp and tcp6; state 0A is LISTEN). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(`:${hex}`) && f[3] === "0A") inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** `pid` and its descendants (a server started through a launcher, e.g. tsx's CLI, runs in a child of it). */
function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${all[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${all[i]}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) all.push(Number(c));
      } catch {
        /* exited meanwhile */
      }
    }
  }
  return all;
}

/**
 * Whether the process `pid` (or one of its descendants) is what listens on `port`: a server that
 * answers there may be another's, if this one could not bind it. Linux only (/proc).
 */
export function listensOn(pid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return false;
  for (const p of tree(pid)) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return true;
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return false;
}
