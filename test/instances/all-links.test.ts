// Several instances with XMPP_LINK_MODE=all on ejabberd, which balances several connections of
// one component: three gateway processes on one database behind a real HAProxy, each holding its
// own component link, and a real ejabberd user. Inbound stanzas arrive on whichever link ejabberd
// picks; every instance's streams must still get their account's messages. Outbound, every
// instance drains the outbox on its own link, and its barriers must hold whichever link they land on.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { api, connectionsTo, createAccount } from "../../scripts/harness/cluster.js";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { SseClient } from "../helpers/sse.js";
import { messageBody, sleep, startTestbed, withReport, type Testbed } from "./helpers.js";

const PER_ACCOUNT = 10;
/** Test (h): 4 senders x 25 posts. */
const POSTS_PER_SENDER = 25;
/** Under the 10 s barrier timeout, with room for a busy machine; a confirmed batch takes milliseconds. */
const SENT_WITHIN_MS = 8000;

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

  // Every instance writes on its own link, and ejabberd routes each barrier ping (XmppLink.barrier)
  // and its answer to any of the three links: whichever instance gets another's must make it count.
  // A lost answer would show as a 10 s barrier timeout, a rolled-back batch and its resend.
  it("(h) ~100 posts spread over the instances reach juliet once each, in order per sender, all sent within seconds", () =>
    withReport(bed, "h-all-links-barriers", async () => {
      await bed.cluster.waitStable(20_000, "all");
      const prefix = `h${randomBytes(3).toString("hex")}`;
      const senders = await Promise.all([0, 1, 2, 3].map(async (i) => ({ local: `${prefix}s${i}`, token: await createAccount(bed.lb, `${prefix}s${i}`, "web") })));
      const juliet = bed.juliet.jid.split("/")[0]!;
      const sent = new Map<string, number>();
      const servedBy = new Map<string, number>();
      // When each message is first seen `sent`: each sender's history, polled on the instances in
      // turn while the posts go on, until all are (bounded well past a barrier timeout, so a slow
      // message is measured, not just reported missing).
      const sentAt = new Map<string, number>();
      let posting = true;
      const watch = (async () => {
        const deadline = Date.now() + 45_000;
        for (let round = 0; (posting || sentAt.size < sent.size) && Date.now() < deadline; round++) {
          await Promise.all(
            senders.map(async (s, k) => {
              const r = await api(bed.cluster.instances[(round + k) % 3]!.url, "GET", `/v1/messages?with=${encodeURIComponent(juliet)}&limit=100`, { token: s.token });
              assert.equal(r.status, 200, `history of ${s.local}`);
              for (const m of (r.body as { items: { id: string; status: string }[] }).items) if (m.status !== "queued" && !sentAt.has(m.id)) sentAt.set(m.id, Date.now());
            }),
          );
          await sleep(50);
        }
      })();
      // Each sender posts in turn (its order is the one juliet must see); the senders run at once.
      const posted = await Promise.all(
        senders.map(async (s) => {
          const ids: string[] = [];
          for (let n = 1; n <= POSTS_PER_SENDER; n++) {
            const r = await api(bed.lb, "POST", "/v1/messages", { token: s.token, body: { to: juliet, body: `${s.local}:${n}` } });
            assert.equal(r.status, 202, `post ${s.local}:${n}: ${r.status} ${JSON.stringify(r.body)}`);
            const by = r.headers.get("x-served-by") ?? "?";
            servedBy.set(by, (servedBy.get(by) ?? 0) + 1);
            sent.set((r.body as { id: string }).id, Date.now());
            ids.push((r.body as { id: string }).id);
          }
          return { ...s, ids };
        }),
      ).finally(() => (posting = false));
      await watch;
      assert.ok(servedBy.size >= 2, `posts spread over the instances: ${JSON.stringify([...servedBy])}`);
      // Sentinel: sent after every message left the queue; once it arrived, no copy is still coming.
      const sentinel = await api(bed.lb, "POST", "/v1/messages", { token: senders[0]!.token, body: { to: juliet, body: `${prefix}:sentinel` } });
      assert.equal(sentinel.status, 202);
      await bed.juliet.waitFor((st) => st.is("message") && st.getChildText("body") === `${prefix}:sentinel`, 20_000);
      await sleep(300);
      const copies = new Map<string, number>();
      const arrival: string[] = [];
      for (const st of bed.juliet.stanzas) {
        const id = st.attrs.id as string | undefined;
        if (!st.is("message") || !id || !sent.has(id)) continue;
        copies.set(id, (copies.get(id) ?? 0) + 1);
        if (copies.get(id) === 1) arrival.push(id);
      }
      const dup = [...copies].filter(([, c]) => c > 1);
      const missing = [...sent.keys()].filter((id) => !copies.has(id));
      const latencies = [...sent].map(([id, t]) => (sentAt.get(id) ?? Infinity) - t);
      const slowest = Math.max(...latencies);
      const median = [...latencies].sort((a, b) => a - b)[Math.floor(latencies.length / 2)]!;
      const slow = latencies.filter((ms) => ms > SENT_WITHIN_MS).length;
      console.log(
        `[instances h] ${sent.size} posts via HAProxy (${[...servedBy].map(([k, v]) => `${k}: ${v}`).join(", ")}); juliet got ${[...copies.values()].reduce((a, b) => a + b, 0)} copies ` +
          `(${dup.length} duplicated, ${missing.length} missing); to \`sent\`: median ${median} ms, slowest ${slowest} ms, ${slow} over ${SENT_WITHIN_MS} ms`,
      );
      assert.deepEqual({ duplicated: dup.length, missing: missing.length }, { duplicated: 0, missing: 0 }, `juliet receives each message exactly once (duplicated: ${JSON.stringify(dup.slice(0, 5))})`);
      for (const s of posted) {
        assert.deepEqual(arrival.filter((id) => s.ids.includes(id)), s.ids, `juliet got ${s.local}'s messages in the order posted`);
      }
      assert.ok(slow === 0, `every message reads sent within ${SENT_WITHIN_MS} ms of its 202 (no barrier timeout): ${slow} did not, slowest ${slowest} ms`);
    }));
});
