// PostgreSQL's CPU per accepted outbound message (issue 10: "no second write per message"),
// beside its floor: a bare one-statement INSERT of the same row, the least a durable message can
// cost. Balcony's write is the statement of src/db/messages.ts (Messages.insertOutboundChecked:
// the row, its message_queue entry, its conversation, the check of what is queued ahead) plus its
// "sent" record (confirmed messages leave the queue riding on a later insert, as the direct
// path does under load). One message per statement (a POST at low load) and 1,000 (a
// batch); and one per statement with a pause between statements (--gap-ms, default 2: about
// 500 msg/s, one at a time), where PostgreSQL sleeps between statements and wakes for each, as
// it does for POSTs at 500 msg/s: what the same statement costs it then, beside back to back.
// The CPU is every PostgreSQL process's, from /proc, so run it on a quiet machine.
//
//   npm run bench:outbound-writes [-- --statements N --rounds R --gap-ms G --json]
//   npm run bench:outbound-writes -- --smoke      (seconds: for tests and CI)
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { createTestDatabase } from "../scripts/harness/database.js";
import { openDatabase } from "../src/db/client.js";
import { Messages, type NewOutbound } from "../src/db/messages.js";
import { migrate } from "../src/db/migrate.js";
import { rowsFrom, type Column } from "../src/db/rows.js";
import { GROUPS, withCpu, type CpuSplit } from "./lib/cpu.js";
import { log, median, sleep } from "./lib/util.js";

const { values: opt } = parseArgs({
  options: {
    statements: { type: "string" },
    rounds: { type: "string" },
    "gap-ms": { type: "string" },
    smoke: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(
    "Usage: npx tsx bench/outbound-writes.ts [--statements N] [--rounds R] [--gap-ms G] [--smoke] [--json]\n\nPostgreSQL CPU per message: Balcony's outbound write beside a bare INSERT of the same row,\nback to back and G ms apart (default 2).",
  );
  process.exit(0);
}
/** One-message statements per measurement (batch scenarios run a hundredth as many 1,000-message statements). */
const STATEMENTS = Number(opt.statements ?? (opt.smoke ? 400 : 3000));
const ROUNDS = Number(opt.rounds ?? (opt.smoke ? 1 : 3));
const BATCH = 1000;
/** The pause between the paced scenarios' statements. */
const GAP_MS = Number(opt["gap-ms"] ?? 2);
if (!(GAP_MS > 0)) throw new Error(`--gap-ms: a positive number of milliseconds, not ${opt["gap-ms"]}`);
/** The link holder vacuums the queue at its 5 s sweep (src/services/queue-tidy.ts): about this often here. */
const VACUUM_EVERY = 500;
const out = opt.json ? console.error : console.log;

const tdb = await createTestDatabase();
// The gateway's hot statements run on their generic plan (pg_stat_statements with track_planning,
// one 500 msg/s run of bench/messages.ts: 13 plans in 3,253 executions of the one-message insert).
// This fixed loop would otherwise make PostgreSQL plan the statement on every call (custom plans
// look cheaper for its parameters), about 300 us a statement that the gateway does not pay.
const admin = new pg.Client({ connectionString: tdb.url });
await admin.connect();
await admin.query(`ALTER DATABASE ${tdb.name} SET plan_cache_mode = force_generic_plan`);
await admin.end();
const db = openDatabase(tdb.url, 2);
try {
  await migrate(db.pool);
  const { rows } = await db.pool.query<{ id: number }>("INSERT INTO account (localpart) VALUES ('bench') RETURNING id");
  const accountId = rows[0]!.id;
  const messages = new Messages(db.prisma, db.pool);
  const message = (): NewOutbound => ({
    id: randomUUID(),
    accountId,
    peer: "juliet@example.net",
    from: "bench@gateway.example",
    to: "juliet@example.net",
    type: "chat",
    body: "Good night, good night! Parting is such sweet sorrow",
    idempotencyKey: randomUUID(),
    requestHash: "bench",
  });
  // The same row's columns, bound the way Balcony binds them (src/db/rows.ts): scalars for one row.
  const bareColumns: Column<NewOutbound>[] = [
    { name: "id", type: "uuid", value: (m) => m.id },
    { name: "body", type: "json", value: (m) => JSON.stringify(m.body) },
    { name: "key", type: "text", value: (m) => m.idempotencyKey },
  ];
  const bare = (ms: NewOutbound[]) => {
    const u = rowsFrom(bareColumns, ms, 4);
    return db.pool.query({
      name: `bench-bare-${ms.length === 1 ? 1 : "n"}`,
      text: `INSERT INTO message (id, account_id, direction, peer, "to", "from", type, body, status, idempotency_key, request_hash)
        SELECT u.id, $1, 'out', $2, $2, $3, 'chat', u.body, 'queued', u.key, 'bench' FROM ${u.from}`,
      values: [accountId, ms[0]!.peer, ms[0]!.from, ...u.values],
    });
  };
  // The direct path's bookkeeping as the gateway does it (src/services/delivery.ts): one
  // message a statement arrives every 2 ms at 500/s and a barrier confirms about 10 ms of them,
  // so every fifth insert carries the "sent" records of the five before it; a batch carries the
  // previous batch's. Each counts the queue up to what the holder tracks, plus one.
  let previous: string[] = [];
  let tracked = 0;
  const balcony = async (ms: NewOutbound[]) => {
    const carry = ms.length > 1 || previous.length >= 5 ? previous : [];
    await messages.insertOutboundChecked(ms, { markSent: carry, countQueuedUpTo: tracked + 1 });
    previous = carry.length ? ms.map((m) => m.id) : [...previous, ...ms.map((m) => m.id)];
    tracked = previous.length;
  };

  const paced = `1 per statement, ${GAP_MS} ms apart`;
  const scenarios = [
    { name: "floor, 1 per statement", size: 1, gap: 0, run: bare },
    { name: "Balcony, 1 per statement", size: 1, gap: 0, run: balcony },
    { name: `floor, ${paced}`, size: 1, gap: GAP_MS, run: bare },
    { name: `Balcony, ${paced}`, size: 1, gap: GAP_MS, run: balcony },
    { name: "floor, 1,000 per statement", size: BATCH, gap: 0, run: bare },
    { name: "Balcony, 1,000 per statement", size: BATCH, gap: 0, run: balcony },
  ];
  /** Each scenario's floor: the bare INSERT in the same shape. */
  const floorOf = (name: string) => name.replace("Balcony", "floor");
  const pgCores = (cpu: CpuSplit) => (cpu.cores[GROUPS.dbBackends] ?? 0) + (cpu.cores[GROUPS.dbRest] ?? 0);
  const figures = new Map<string, { pgUs: number[]; wallUs: number[] }>(scenarios.map((s) => [s.name, { pgUs: [], wallUs: [] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of scenarios) {
      const n = s.size === 1 ? STATEMENTS : Math.max(1, Math.round(STATEMENTS / 100));
      for (let i = 0; i < Math.min(n, 20); i++) await s.run(Array.from({ length: s.size }, message)); // warm-up
      previous = [];
      tracked = 0;
      await db.pool.query("VACUUM ANALYZE message, message_queue, conversation");
      const { cpu } = await withCpu({ serverKind: "none", serverWorkDir: "\u0000", dbName: tdb.name }, async () => {
        for (let i = 1; i <= n; i++) {
          await s.run(Array.from({ length: s.size }, message));
          if (s.gap) await sleep(s.gap);
          if (i % Math.max(1, Math.round(VACUUM_EVERY / s.size)) === 0) await db.pool.query("VACUUM message_queue");
        }
      });
      const count = n * s.size;
      const f = figures.get(s.name)!;
      f.pgUs.push((pgCores(cpu) * cpu.seconds * 1e6) / count);
      f.wallUs.push((cpu.seconds * 1e6) / count);
      log(`round ${round}/${ROUNDS}: ${s.name}: ${count} messages, PostgreSQL ${f.pgUs.at(-1)!.toFixed(1)} us/msg`);
    }
  }
  const report: Record<string, unknown> = { statements: STATEMENTS, rounds: ROUNDS };
  out(`\nPostgreSQL CPU per accepted message (median of ${ROUNDS} round(s); ${STATEMENTS} one-message statements, ${Math.max(1, Math.round(STATEMENTS / 100))} of 1,000 per round)`);
  const width = Math.max(...scenarios.map((s) => s.name.length));
  out(`${"".padEnd(width)} ${"PG us/msg".padStart(10)} ${"wall us/msg".padStart(12)} ${"/ floor".padStart(8)}`);
  for (const s of scenarios) {
    const f = figures.get(s.name)!;
    const pgUs = median(f.pgUs);
    const floor = median(figures.get(floorOf(s.name))!.pgUs);
    const ratio = pgUs / floor;
    report[s.name] = { pgUs, wallUs: median(f.wallUs), perRound: f.pgUs, ratio };
    out(`${s.name.padEnd(width)} ${pgUs.toFixed(1).padStart(10)} ${median(f.wallUs).toFixed(1).padStart(12)} ${ratio.toFixed(2).padStart(7)}x`);
  }
  // What waking costs: the same bare statement paced against back to back.
  const wake = median(figures.get(`floor, ${paced}`)!.pgUs) / median(figures.get("floor, 1 per statement")!.pgUs);
  report.pacedOverBackToBack = wake;
  out(`the floor ${GAP_MS} ms apart / back to back: ${wake.toFixed(2)}x (PostgreSQL waking for each statement)`);
  if (opt.json) console.log(JSON.stringify(report));
} finally {
  await db.close();
  await tdb.drop();
}
