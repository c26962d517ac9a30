// A fresh PostgreSQL database per test file, on the server named by TEST_DATABASE_URL
// (default: the local cluster, trust auth), dropped afterwards.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

/** The server's maintenance database, where test databases are created and dropped. */
export const BASE_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
/** How long drop() waits for the database's connections to close on their own before it ends them. */
const CLOSING_MS = 2000;

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `balcony_t_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: withDb(BASE_DATABASE_URL, name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: BASE_DATABASE_URL });
      await c.connect();
      try {
        // pg-pool's end() resolves once it has asked its clients to close, not once they have. A
        // backend that has not read its client's Terminate yet when FORCE ends it answers with a
        // FATAL, which that pool reports as an 'error' event: with no listener on the pool, an
        // uncaught exception in the test file (seen on a loaded machine). So wait for what is
        // closing to close, then force what stays (a process killed without closing, a leak).
        for (const until = Date.now() + CLOSING_MS; Date.now() < until; await sleep(10)) {
          const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name]);
          if (rows[0]!.n === 0) break;
        }
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
