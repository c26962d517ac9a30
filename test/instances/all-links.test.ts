// Several instances with XMPP_LINK_MODE=all on ejabberd, which balances several connections of
// one component: three gateway processes on one database behind a real HAProxy, each holding its
// own component link, and a real ejabberd user. Inbound stanzas arrive on whichever link ejabberd
// picks; every instance's streams must still get their account's messages.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { api, connectionsTo, createAccount } from "../../scripts/harness/cluster.js";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { SseClient } from "../helpers/sse.js";
import { messageBody, sleep, startTestbed, withReport, type Testbed } from "./helpers.js";

const PER_ACCOUNT = 10;

describe("several instances behind HAProxy (ejabberd, XMPP_LINK_MODE=all)", () => {
  let bed: Testbed;
  before(async () => {
    bed = await startTestbed("ejabberd", { env: { XMPP_LINK_MODE: "all", SSE_HEARTBEAT: "5s", RATE_LIMIT_PER_ACCOUNT: "0", RATE_LIMIT_PER_IP: "0" } });
  });
  after(async () => {
    await bed?.stop();
  });

  it("(g) every instance holds a link, and inbound stanzas reach streams held on every instance", () =>
    withReport(bed, "g-all-links", async () => {
      await bed.cluster.waitStable(20_000, "all");
      const rs = await Promise.all([0, 1, 2].map((i) => bed.cluster.readyz(i)));
      assert.deepEqual(
        rs.map((r) => [r.status, r.xmpp]),
        [
          [200, "up"],
          [200, "up"],
          [200, "up"],
        ],
        "every instance reports its own link up",
      );
      // ejabberd holds three connections of the component, one per instance.
      const pids = bed.cluster.instances.map((inst) => inst.proc!.child.pid!).sort();
      assert.deepEqual((await connectionsTo(bed.server.componentPort)).sort(), pids, "one component connection per instance");

      const prefix = `g${randomBytes(3).toString("hex")}`;
      const domain = bed.server.componentDomain;
      const accounts = [0, 1, 2].map((i) => ({ local: `${prefix}i${i}`, jid: `${prefix}i${i}@${domain}` }));
      const tokens = await Promise.all(accounts.map((a) => createAccount(bed.lb, a.local, "web")));
      // One stream per instance, opened on that instance directly.
      const streams = await Promise.all(accounts.map((_, i) => SseClient.open(`${bed.cluster.instances[i]!.url}/v1/events`, { authorization: `Bearer ${tokens[i]}` })));
      try {
        streams.forEach((s, i) => assert.equal(s.status, 200, `stream on ${bed.cluster.instances[i]!.name}`));
        await sleep(200);
        // Juliet (a real ejabberd user) writes to each account in turn.
        for (let n = 1; n <= PER_ACCOUNT; n++) {
          for (const a of accounts) await bed.juliet.send(xml("message", { to: a.jid, type: "chat", id: `${a.local}-${n}` }, xml("body", {}, `${a.local}:${n}`)));
        }
        const bodies = (s: SseClient) => s.events.filter((e) => e.event === "message").map((e) => messageBody(e));
        await Promise.all(
          streams.map((s, i) =>
            s.waitFor((ev) => ev.filter((e) => e.event === "message").length >= PER_ACCOUNT, 20_000, `${PER_ACCOUNT} messages on ${bed.cluster.instances[i]!.name}`),
          ),
        );
        await sleep(300);
        // Exactly once each. Not necessarily in order: ejabberd's default balancing (random) spreads one
        // sender's stanzas over the connections, so they reach the instances, and the log, in any order.
        // (ejabberd's domain_balancing by source keeps a sender on one connection, but in 23.01 it needs
        // component_number, and then stanzas hashed to the slot of a disconnected instance are dropped
        // without a bounce.)
        const reordered: string[] = [];
        streams.forEach((s, i) => {
          const want = Array.from({ length: PER_ACCOUNT }, (_, k) => `${accounts[i]!.local}:${k + 1}`);
          const got = bodies(s);
          assert.deepEqual([...got].sort(), [...want].sort(), `the stream on ${bed.cluster.instances[i]!.name} got its account's messages, once each`);
          if (JSON.stringify(got) !== JSON.stringify(want)) reordered.push(`${bed.cluster.instances[i]!.name}: ${got.map((b) => b!.split(":")[1]).join(",")}`);
        });
        // And out: each account answers through its own instance; juliet gets all three.
        for (const [i, a] of accounts.entries()) {
          const r = await api(bed.cluster.instances[i]!.url, "POST", "/v1/messages", { token: tokens[i], body: { to: "juliet@localhost", body: `from ${a.local}` } });
          assert.equal(r.status, 202);
        }
        for (const a of accounts) await bed.juliet.waitFor((s) => s.is("message") && s.getChildText("body") === `from ${a.local}`, 10_000);
        console.log(
          `[instances g] 3 instances, 3 component connections on ejabberd; ${3 * PER_ACCOUNT} messages from juliet reached the stream on each instance, once each; 3 answers out; ` +
            (reordered.length ? `out of juliet's order with ejabberd's default random balancing: ${reordered.join("; ")}` : "all in juliet's order"),
        );
      } finally {
        for (const s of streams) await s.close();
      }
    }));
});
