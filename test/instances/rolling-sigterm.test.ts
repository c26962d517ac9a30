// A rolling restart behind HAProxy (README "Running several instances"): two gateway processes on
// one database behind a real HAProxy (scripts/harness/haproxy.ts, the README's configuration), a
// real Prosody with juliet logged in. Six undici clients, each on its own keep-alive connection to
// the balancer, post messages with no Idempotency-Key as fast as they can, which HAProxy must not
// resend once an instance may have taken them; meanwhile each instance in turn, twice, gets SIGTERM, exits
// and is started again. Every request gets its 202 (HAProxy resends only what a refused
// connection never delivered), every 202 is stored and reaches juliet, and each instance exits 0.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { Client } from "undici";
import { createAccount } from "../../scripts/harness/cluster.js";
import { sleep, startTestbed, waitForBodies, withReport, type Testbed } from "./helpers.js";

const ENV = {
  // Every client shares the balancer's address, and one account posts all: no limit in the way.
  RATE_LIMIT_PER_ACCOUNT: "0",
  RATE_LIMIT_PER_IP: "0",
  // The default drain (5 s), not the harness's shorter one.
  SHUTDOWN_DRAIN: "",
};
const CLIENTS = 6;

interface Outcome {
  client: number;
  end: number;
  status: number | null;
  id?: string;
  body: string;
  error?: string;
  /** The instance that answered (X-Served-By). */
  by?: string;
}

describe("rolling SIGTERM behind HAProxy (Prosody, two instances)", () => {
  let bed: Testbed;
  before(async () => {
    bed = await startTestbed("prosody", { size: 2, env: ENV });
  });
  after(async () => {
    await bed?.stop();
  });

  it("each instance SIGTERMed and started again under keep-alive load: no request fails, every 202 stored and delivered, each exits 0", () =>
    withReport(bed, "rolling-sigterm", async () => {
      await bed.cluster.waitStable(20_000);
      const token = await createAccount(bed.lb, "romeo");
      const outcomes: Outcome[] = [];
      let stop = false;
      const poster = async (c: number) => {
        const client = new Client(bed.lb, { pipelining: 1 });
        try {
          for (let n = 0; !stop; n++) {
            const o: Outcome = { client: c, end: 0, status: null, body: `r${c}-${n}` };
            try {
              const r = await client.request({
                path: "/v1/messages",
                method: "POST",
                headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
                body: JSON.stringify({ to: "juliet@localhost", body: o.body }),
                headersTimeout: 15_000,
              });
              o.status = r.statusCode;
              o.by = String(r.headers["x-served-by"] ?? "");
              const body = (await r.body.json()) as { id?: string };
              if (o.status === 202) o.id = body.id;
            } catch (err) {
              const e = err as { code?: string; cause?: { code?: string } };
              o.error = e.cause?.code ?? e.code ?? String(err);
              await sleep(50);
            }
            o.end = Date.now();
            outcomes.push(o);
          }
        } finally {
          await client.destroy();
        }
      };
      const accepted = () => outcomes.filter((o) => o.status === 202).length;
      const clients = Array.from({ length: CLIENTS }, (_, c) => poster(c));
      const steps: string[] = [];
      try {
        for (const i of [0, 1, 0, 1]) {
          const name = bed.cluster.instances[i]!.name;
          const mark = accepted();
          const by = () => outcomes.filter((o) => o.by === name).length;
          const servedBefore = by();
          await bed.haproxy.waitForServers("gateways", [name], "UP", 20_000);
          // Load on this instance too, through the balancer, before its signal.
          const deadline = Date.now() + 20_000;
          while ((accepted() < mark + 150 || by() < servedBefore + 30) && Date.now() < deadline) await sleep(20);
          const at = Date.now();
          const exit = await bed.cluster.kill(i, "SIGTERM");
          const exitMs = Date.now() - at;
          await bed.cluster.restart(i);
          await bed.haproxy.waitForServers("gateways", [name], "UP", 20_000);
          steps.push(`${name}: exit ${exit} ${exitMs} ms after SIGTERM, back in HAProxy's rotation ${Date.now() - at} ms after it`);
          assert.equal(exit, "0", `${name} exited cleanly`);
        }
        const mark = accepted();
        while (accepted() < mark + 100) await sleep(20);
      } finally {
        stop = true;
        await Promise.all(clients);
      }

      const ok = outcomes.filter((o) => o.status === 202);
      const failed = outcomes.filter((o) => o.status !== 202);
      console.log(
        `[rolling-sigterm] ${steps.join("; ")}; ${outcomes.length} POSTs from ${CLIENTS} keep-alive clients through HAProxy: ${ok.length} got 202 ` +
          `(${JSON.stringify(Object.fromEntries(["g1", "g2"].map((n) => [n, ok.filter((o) => o.by === n).length])))}), ${failed.length} failed ` +
          `${JSON.stringify(failed.slice(0, 10).map((o) => o.error ?? `${o.status} by ${o.by}`))}`,
      );
      assert.deepEqual(failed.map((o) => o.error ?? `${o.status} by ${o.by}`), [], "every request got its 202");

      const c = new pg.Client({ connectionString: bed.db.url });
      await c.connect();
      const ids = ok.map((o) => o.id!);
      const stored = (await c.query<{ n: string }>(`SELECT count(*) AS n FROM message WHERE id = ANY($1::uuid[])`, [ids])).rows[0]!.n;
      await c.end();
      assert.equal(new Set(ids).size, ids.length);
      assert.equal(Number(stored), ids.length, "every 202 is stored");
      await waitForBodies(bed.juliet, ok.map((o) => o.body), 30_000);
    }));
});
