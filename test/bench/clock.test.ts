// bench/lib/util.ts's now and the gateway's loop probe (bench/lib/loop-probe.mjs, another process)
// read one clock, so a stall's time and a message's send and arrival subtract. A wall-clock step
// between two processes' starts (what made each one's performance.timeOrigin differ) cannot be
// produced here; this checks that the probe's reading falls between two of the bench's.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { now } from "../../bench/lib/util.js";

describe("the benches' clock", () => {
  it("reads the same in another process's loop probe (bench/lib/loop-probe.mjs)", () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-clock-"));
    try {
      const file = join(dir, "loop.txt");
      const before = now();
      execFileSync(process.execPath, ["--import", new URL("../../bench/lib/loop-probe.mjs", import.meta.url).href, "-e", ""], { env: { ...process.env, BENCH_LOOP_FILE: file } });
      const after = now();
      const start = /^start (\S+)$/m.exec(readFileSync(file, "utf8"));
      assert.ok(start, "the probe wrote its start");
      const at = Number(start[1]);
      assert.ok(before <= at && at <= after, `probe read ${at}, main ${before}..${after}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
