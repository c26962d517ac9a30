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
// --parts adds, paced, the same statement with parts of it cut out (the statement the code builds,
// edited as text: a measurement of where its cost goes, not a design), and with the conversation's
// last_seq index dropped (its upsert then updates in place: HOT).
//
//   npm run bench:outbound-writes [-- --statements N --rounds R --gap-ms G --parts --json]
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
    parts: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(
    "Usage: npx tsx bench/outbound-writes.ts [--statements N] [--rounds R] [--gap-ms G] [--parts] [--smoke] [--json]\n\nPostgreSQL CPU per message: Balcony's outbound write beside a bare INSERT of the same row,\nback to back and G ms apart (default 2). --parts: also, G ms apart, the write with parts of its\nstatement cut out, and without the conversation's last_seq index.",
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
  /** Each scenario's floor: the bare INSERT in the same shape. */
  const floorOf = (name: string) => name.replace("Balcony", "floor");
  type Scenario = { name: string; size: number; gap: number; run: (ms: NewOutbound[]) => Promise<unknown>; floor?: string; before?: () => Promise<void>; after?: () => Promise<void> };
  const scenarios: Scenario[] = [
    { name: "floor, 1 per statement", size: 1, gap: 0, run: bare },
    { name: "Balcony, 1 per statement", size: 1, gap: 0, run: balcony },
    { name: `floor, ${paced}`, size: 1, gap: GAP_MS, run: bare },
    { name: `Balcony, ${paced}`, size: 1, gap: GAP_MS, run: balcony },
    { name: "floor, 1,000 per statement", size: BATCH, gap: 0, run: bare },
    { name: "Balcony, 1,000 per statement", size: BATCH, gap: 0, run: balcony },
  ];
  if (opt.parts) scenarios.push(...(await partScenarios(db.pool, balcony, message)).map((p) => ({ ...p, name: `Balcony ${p.name}, ${paced}`, size: 1, gap: GAP_MS, floor: `floor, ${paced}` })));
  const pgCores = (cpu: CpuSplit) => (cpu.cores[GROUPS.dbBackends] ?? 0) + (cpu.cores[GROUPS.dbRest] ?? 0);
  const figures = new Map<string, { pgUs: number[]; wallUs: number[] }>(scenarios.map((s) => [s.name, { pgUs: [], wallUs: [] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of scenarios) {
      await s.before?.();
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
      await s.after?.();
    }
  }
  const report: Record<string, unknown> = { statements: STATEMENTS, rounds: ROUNDS };
  out(`\nPostgreSQL CPU per accepted message (median of ${ROUNDS} round(s); ${STATEMENTS} one-message statements, ${Math.max(1, Math.round(STATEMENTS / 100))} of 1,000 per round)`);
  const width = Math.max(...scenarios.map((s) => s.name.length));
  out(`${"".padEnd(width)} ${"PG us/msg".padStart(10)} ${"wall us/msg".padStart(12)} ${"/ floor".padStart(8)}`);
  for (const s of scenarios) {
    const f = figures.get(s.name)!;
    const pgUs = median(f.pgUs);
    const floor = median(figures.get(s.floor ?? floorOf(s.name))!.pgUs);
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

/**
 * --parts: the outbound insert's one-message statement as the code builds it (captured from
 * Messages.insertOutboundChecked), with parts cut out of its text, and whole without the index
 * that keeps its conversation upsert from updating in place. Each runs through the real
 * insertOutboundChecked, its statement swapped for the variant's. A cut whose text is not found
 * fails the run: the statement changed and these cuts with it.
 */
async function partScenarios(
  pool: pg.Pool,
  balcony: (ms: NewOutbound[]) => Promise<void>,
  message: () => NewOutbound,
): Promise<{ name: string; run: (ms: NewOutbound[]) => Promise<void>; before?: () => Promise<void>; after?: () => Promise<void> }[]> {
  const query = pool.query.bind(pool) as (cfg: pg.QueryConfig | string, ...rest: unknown[]) => Promise<unknown>;
  let captured: string | null = null;
  let swap: { name: string; text: string } | null = null;
  (pool as unknown as { query: typeof query }).query = (cfg, ...rest) => {
    if (typeof cfg === "string" || cfg.name !== "insert-outbound-1") return query(cfg, ...rest);
    captured ??= cfg.text;
    return query(swap ? { ...cfg, ...swap } : cfg, ...rest);
  };
  await balcony([message()]);
  const full = captured as string | null;
  if (full === null) throw new Error("--parts: the one-message outbound insert (insert-outbound-1) did not run");
  const cut = (text: string, from: string, to: string, by = "") => {
    const i = text.indexOf(from);
    const j = i < 0 ? -1 : text.indexOf(to, i + from.length);
    if (j < 0) throw new Error(`--parts: the statement has no "${from}" ... "${to}" any more`);
    return text.slice(0, i) + by + text.slice(j);
  };
  const replace = (text: string, from: string | RegExp, by: string) => {
    const out = text.replace(from, by);
    if (out === text) throw new Error(`--parts: the statement has no ${String(from)} any more`);
    return out;
  };
  const noConversation = (t: string) => cut(t, "), conv AS (", "\n       SELECT id", ")");
  const noQueueRow = (t: string) => cut(t, "), queue AS (", "), conv AS (");
  // The account's checks (correction key, block, account row) and the room sender's CASE.
  const noChecks = (t: string) => cut(cut(t, "WHERE (u.key IS NULL", "ORDER BY u.n", "WHERE u.key IS NOT NULL OR true\n         "), "CASE WHEN u.type", ", u.type, u.body", "u.from_jid");
  const noCount = (t: string) => replace(t, /\(SELECT count\(\*\)::int FROM \(SELECT 1 FROM message_queue ORDER BY seq LIMIT (\$\d+)::int\) q\) AS queued, EXISTS \(SELECT 1 FROM outbox\) AS outbox/, "$1::int AS queued, false AS outbox");
  const noDequeue = (t: string) => replace(t, /DELETE FROM message_queue WHERE seq = ANY \(ARRAY\(SELECT seq FROM message WHERE id = ANY\((\$\d+)::uuid\[\]\)\)\)/, "SELECT $1::uuid[] AS ids");
  let n = 0;
  const variant = (name: string, text: string) => {
    const swapped = { name: `bench-parts-${++n}`, text };
    return { name, run: async (ms: NewOutbound[]) => {
      swap = swapped;
      try {
        await balcony(ms);
      } finally {
        swap = null;
      }
    } };
  };
  // Dropped and made again from its own definition (prisma/migrations), not a copy of it here.
  const INDEX = "conversation_account_id_last_seq_idx";
  const { rows } = await pool.query<{ def: string }>("SELECT pg_get_indexdef($1::regclass) AS def", [INDEX]);
  const indexDef = rows[0]!.def;
  return [
    variant("without its conversation upsert", noConversation(full)),
    variant("without its queue row", noQueueRow(full)),
    variant("without its checks", noChecks(full)),
    variant("without its count ahead", noCount(full)),
    variant("with those and its dequeue cut", noDequeue(noCount(noChecks(noConversation(noQueueRow(full)))))),
    {
      ...variant("without conversation's last_seq index (fillfactor 50: HOT)", full),
      before: async () => {
        await pool.query(`DROP INDEX ${INDEX}`);
        await pool.query("ALTER TABLE conversation SET (fillfactor = 50)");
        await pool.query("VACUUM FULL conversation");
      },
      after: async () => {
        await pool.query(indexDef);
        await pool.query("ALTER TABLE conversation RESET (fillfactor)");
        await pool.query("VACUUM FULL conversation");
      },
    },
  ];
}
