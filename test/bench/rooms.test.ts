// bench/rooms.ts with tiny numbers (5 joins per side, 3 rooms, 150 group messages through a real
// Prosody, a real gateway process, PostgreSQL, a raw occupant and an SSE client): it exits 0 and
// prints its table with every figure a positive number beside its ceiling/reference and ratio, and
// every message exactly once at the account. The figures themselves are not judged: on a shared
// 2-core machine they are noise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { figureTable, num, runBench as run } from "./run-bench.js";

const TIMEOUT_MS = 150_000;

const runBench = (args: string[]) => run("bench/rooms.ts", args, TIMEOUT_MS);

describe("bench/rooms.ts with tiny numbers", () => {
  it("prints join times and room throughput beside the reference and ceiling, every message exactly once", { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const { code, stdout, stderr } = await runBench(["--joins", "5", "--join-warmup", "1", "--rooms", "3", "--messages", "150", "--warmup", "15", "--loss-timeout", "10", "--timeout", "140"]);
    assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr.slice(-3000)}`);
    const row = figureTable(stdout);

    // Figures compared with the same run's reference/ceiling: all three cells are positive numbers.
    for (const prefix of ["join p50, ms (5 fresh rooms)", "join p99, ms (5 fresh rooms)", "join max, ms (5 fresh rooms)", "room messages/s (3 rooms, 150 messages)"]) {
      const cells = row(prefix);
      for (const [i, cell] of cells.entries()) assert.ok(num(cell) > 0, `${prefix}: cell ${i} is "${cell}"`);
    }
    // The ratio is the value over the ceiling/reference (to the printed precision).
    const [tput, ceiling, ratio] = row("room messages/s").map(num);
    assert.ok(Math.abs(tput! / ceiling! - ratio!) < 0.02 + 0.01 * ratio!, `ratio ${ratio} vs ${tput}/${ceiling}`);
    // The gateway does real work for every message: its CPU per message cannot be zero.
    assert.ok(num(row("gateway CPU per message, ms")[0]) > 0, `gateway CPU: "${row("gateway CPU per message, ms")[0]}"`);
    const pg = num(row("Postgres CPU per message, ms")[0]);
    assert.ok(pg >= 0 && Number.isFinite(pg), `Postgres CPU: "${row("Postgres CPU per message, ms")[0]}"`);

    assert.deepEqual(row("messages lost").slice(0, 2), ["0", "0"], "the account or the raw occupant lost messages");
    assert.deepEqual(row("messages duplicated").slice(0, 2), ["0", "0"], "the account or the raw occupant got a message twice");
    assert.match(stdout, /Balcony statuses \{"201":5\}/);
    assert.match(stdout, /Messages: Balcony 150\/150 in/);
    assert.match(stdout, /ceiling 150\/150 in/);
    assert.match(stdout, /event log \(JSON\): 150 message events for 150\/150 messages, 0 duplicated, 0 not groupchat/);
    assert.match(stdout, /^result: every message arrived exactly once at the account$/m);
  });
});
