// bench/instances.ts with tiny numbers (three gateway processes on one PostgreSQL database,
// HAProxy, Prosody, a real receiving XMPP user; 1 s at 100 msg/s through each, one SIGKILL of the
// link holder): it exits 0 and reports, as JSON, a latency row for each instance and one through
// HAProxy with every message accepted and arrived, the failover it caused, and no message lost.
// The figures themselves are not judged: on a shared 2-core machine they are noise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runBench } from "./run-bench.js";

const TIMEOUT_MS = 200_000;

interface Report {
  latency: { target: string; sent: number; accepted: number; arrived: number; p50: number; p99: number }[];
  failover: { kills: number; ms: number[]; takers: string[]; sent: number; accepted: number };
  loss: { accepted: number; arrived: number; lost: number; idConflicts: number };
}

describe("bench/instances.ts with tiny numbers", () => {
  it("reports latency through each instance and HAProxy, one failover, and no message lost", { timeout: TIMEOUT_MS + 30_000 }, async () => {
    const { code, stdout, stderr } = await runBench("bench/instances.ts", ["--quick", "--rate", "100", "--seconds", "1", "--kills", "1", "--timeout", "180", "--json"], TIMEOUT_MS);
    assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr.slice(-3000)}`);
    const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as Report;

    // The holder, the two standbys (in that order), then the load balancer.
    assert.deepEqual(
      r.latency.map((l) => l.target.replace(/^g\d/, "g")),
      ["g (holder)", "g (standby)", "g (standby)", "HAProxy"],
    );
    assert.equal(new Set(r.latency.slice(0, 3).map((l) => l.target.slice(0, 2))).size, 3, "three distinct instances");
    for (const l of r.latency) {
      assert.ok(l.sent >= 50, `${l.target}: only ${l.sent} sent`);
      assert.equal(l.accepted, l.sent, `${l.target}: not every POST got its 202`);
      assert.equal(l.arrived, l.accepted, `${l.target}: not every accepted message arrived`);
      assert.ok(l.p50 > 0 && l.p99 >= l.p50, `${l.target}: p50 ${l.p50}, p99 ${l.p99}`);
    }

    assert.equal(r.failover.kills, 1);
    assert.equal(r.failover.ms.length, 1);
    assert.ok(r.failover.ms[0]! > 0, `failover took ${r.failover.ms[0]} ms`);
    const [from, to] = r.failover.takers[0]!.split("->");
    assert.ok(from && to && from !== to, `handover "${r.failover.takers[0]}"`);

    // The load through HAProxy went on across the kill, and every POST of it got its 202 (retried).
    assert.ok(r.failover.sent > 0, "no load during the failover");
    assert.equal(r.failover.accepted, r.failover.sent, "POSTs during the failover never accepted");

    // Everything the run accepted (the warm-up's too) arrived.
    const measured = r.latency.reduce((n, l) => n + l.accepted, 0) + r.failover.accepted;
    assert.ok(r.loss.accepted > measured, `accepted ${r.loss.accepted}, fewer than the phases' ${measured} and the warm-up`);
    assert.equal(r.loss.lost, 0);
    assert.equal(r.loss.arrived, r.loss.accepted);
    assert.equal(r.loss.idConflicts, 0);
  });
});
