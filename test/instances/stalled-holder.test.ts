// A link holder that hangs (SIGSTOP: it keeps its PostgreSQL connections and its TCP connection to
// the XMPP server, so its advisory lock never goes) is replaced once it has not proven it is alive
// for XMPP_LINK_LEASE_TIMEOUT (README "Running several instances"). Three gateway processes on one
// database behind HAProxy, XMPP_LINK_MODE=single, a real XMPP user. Faults are real signals:
// SIGSTOP, SIGCONT. On Prosody (component_conflict_resolve = "kick_old", the harness's config) the
// new holder's connection replaces the hung one's. ejabberd keeps the hung connection and balances
// the domain's traffic over both, the new holder's barrier pings and their answers too: a barrier
// pings again until one comes back (src/xmpp/link.ts), or the first batch after the takeover went
// out twice (same ids).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { api, connectionsTo, createAccount } from "../../scripts/harness/cluster.js";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { KINDS } from "../helpers/servers.js";
import { checkDelivered, newPostLog, postUntilAccepted, sleep, startTestbed, waitForBodies, waitForNewHolder, withReport, type Testbed } from "./helpers.js";

const LEASE_TIMEOUT_MS = 3000;
const ENV = {
  XMPP_LINK_LEASE_TIMEOUT: `${LEASE_TIMEOUT_MS}ms`,
  SESSION_GRACE_SECONDS: "600",
  RATE_LIMIT_PER_ACCOUNT: "0",
  RATE_LIMIT_PER_IP: "0",
};
/** "A few seconds" beyond the timeout: the standbys' 1 s poll, the kill, the new link's handshake. */
const TAKEOVER_LIMIT_MS = LEASE_TIMEOUT_MS + 4000;
const JULIET_JID = "juliet@localhost";

for (const kind of KINDS) {
  describe(`a SIGSTOPped link holder is replaced (${kind}, XMPP_LINK_MODE=single)`, () => {
    let bed: Testbed;
    before(async () => {
      bed = await startTestbed(kind, { env: ENV });
    });
    after(async () => {
      await bed?.stop();
    });

    it("a standby takes the link within XMPP_LINK_LEASE_TIMEOUT + 4 s; what was posted meanwhile arrives once and in order; the resumed holder sends nothing and ends a standby", () =>
      withReport(bed, "stalled-holder", async () => {
        await bed.cluster.ensureAll();
        const holder = await bed.cluster.waitStable(20_000);
        const others = [0, 1, 2].filter((i) => i !== holder);
        const old = bed.cluster.instances[holder]!;
        const oldPid = old.proc!.child.pid!;
        const prefix = `s${randomBytes(3).toString("hex")}`;
        const token = await createAccount(bed.lb, prefix);
        const log = newPostLog();
        const juliet = bed.juliet;
        const post = (key: string) => postUntilAccepted(bed.lb, token, key, JULIET_JID, key, log, Date.now() + 60_000);

        // The holder works before it hangs. It is stopped only once the warm message counts as sent
        // (its barrier ping came back): one still queued is the new holder's to send again (at least
        // once, same id: README "Reliability and security"), which is not what this test is about.
        const warmId = await post(`${prefix}-warm`);
        await waitForBodies(juliet, [`${prefix}-warm`], 10_000);
        let warmStatus = "";
        for (let i = 0; i < 100 && warmStatus !== "sent"; i++) {
          if (i > 0) await sleep(100);
          warmStatus = ((await api(bed.lb, "GET", `/v1/messages/${warmId}`, { token })).body as { status: string }).status;
        }
        assert.equal(warmStatus, "sent", "the warm message is confirmed sent before the holder hangs");

        old.proc!.child.kill("SIGSTOP");
        const stoppedAt = Date.now();
        let resumed = false;
        try {
          // Posted one after another through the balancer while the holder hangs (a request HAProxy
          // sent to it before its health check failed times out and is retried with the same key).
          const keys = Array.from({ length: 10 }, (_, n) => `${prefix}-${String(n).padStart(2, "0")}`);
          const posting = (async () => {
            for (const k of keys) await post(k);
          })();
          posting.catch(() => undefined); // awaited below; not an unhandled rejection if an assertion fails first
          const fo = await waitForNewHolder(bed, others, stoppedAt, 20_000);
          console.log(`[stalled-holder] ${old.name} SIGSTOPped; ${bed.cluster.instances[fo.index]!.name} holds the link after ${fo.ms} ms`);
          assert.ok(fo.ms <= TAKEOVER_LIMIT_MS, `takeover took ${fo.ms} ms (limit ${TAKEOVER_LIMIT_MS})`);
          // The takeover is logged (warn) with the hung holder's backend pid and its last beat's age, by
          // the standby that ended the hung lease (another standby may take the lease first, and be up
          // before that standby's log line is out).
          const warnings = () =>
            others.flatMap((i) => bed.cluster.instances[i]!.proc!.output().split("\n")).flatMap((l) => {
              try {
                const rec = JSON.parse(l) as { level?: number; msg?: string; oldBackendPid?: number; heartbeatAgeMs?: number };
                return rec.level === 40 && /XMPP_LINK_LEASE_TIMEOUT/.test(rec.msg ?? "") ? [rec] : [];
              } catch {
                return [];
              }
            });
          for (let i = 0; warnings().length === 0 && i < 50; i++) await sleep(100);
          const takeover = warnings();
          assert.ok(takeover.length >= 1, "a takeover warning on a standby within 5 s of the takeover");
          assert.ok(typeof takeover[0]!.oldBackendPid === "number" && takeover[0]!.heartbeatAgeMs! > LEASE_TIMEOUT_MS, JSON.stringify(takeover[0]));
          await posting;
          // Inbound while the old holder still hangs: ejabberd keeps its connection and routes some
          // of these to it; they wait in its socket until it resumes, and must not be lost then.
          const account = `${prefix}@${bed.server.componentDomain}`;
          const inbound = Array.from({ length: 6 }, (_, n) => `${prefix}-in-${n}`);
          for (const b of inbound) await juliet.send(xml("message", { to: account, type: "chat", id: b }, xml("body", {}, b)));
          await waitForBodies(juliet, keys, 20_000);
          const got = juliet.stanzas.filter((s) => s.is("message")).map((s) => s.getChildText("body") ?? "");
          assert.deepEqual(
            got.filter((b) => keys.includes(b)),
            keys,
            "the messages posted while the holder hung reach juliet once each, in the order they were posted",
          );
          const { problems } = checkDelivered(juliet, log, keys, (k) => k);
          assert.deepEqual(problems, [], "one id per key, carried by the copy juliet got");

          // The old holder resumes: it must find its lease gone, send nothing, and end a standby.
          const newHolder = bed.cluster.instances[fo.index]!;
          // Each link-up is logged: a resumed holder that reconnected would kick the new one off
          // Prosody (kick_old), and the new one, reconnecting, would kick it back.
          const linkUps = (inst: typeof old) => inst.proc!.output().split("\n").filter((l) => l.includes('"component link online"')).length;
          const [oldUps, newUps] = [linkUps(old), linkUps(newHolder)];
          old.proc!.child.kill("SIGCONT");
          resumed = true;
          const resumedAt = Date.now();
          const samples: string[] = [];
          let oldState: string | null = null;
          for (;;) {
            const states = await bed.cluster.states();
            samples.push(bed.cluster.describe(states));
            assert.equal(states[fo.index], "up", `${newHolder.name} must keep the link while ${old.name} resumes: ${samples.join(" | ")}`);
            oldState = states[holder]!;
            if (oldState === "standby" && Date.now() - resumedAt > 2000) break;
            assert.ok(Date.now() - resumedAt < 15_000, `15 s after SIGCONT ${old.name} is not a standby: ${samples.slice(-5).join(" | ")}`);
            await sleep(100);
          }
          assert.equal(linkUps(old), oldUps, `${old.name} connected its link again after SIGCONT`);
          assert.equal(linkUps(newHolder), newUps, `${newHolder.name}'s link went down and up again after ${old.name}'s SIGCONT`);
          assert.deepEqual(await connectionsTo(bed.server.componentPort), [newHolder.proc!.child.pid], `only ${newHolder.name} holds a component connection (${old.name} was pid ${oldPid})`);
          // The sentinel, posted after the resume, arrives; nothing before it arrived twice.
          const sentinel = `${prefix}-sentinel`;
          await post(sentinel);
          await waitForBodies(juliet, [sentinel], 20_000);
          await sleep(500);
          const all = juliet.stanzas.filter((s) => s.is("message")).map((s) => s.getChildText("body") ?? "").filter((b) => b.startsWith(prefix));
          assert.deepEqual(all, [`${prefix}-warm`, ...keys, sentinel], "every message once, in order, none resent by the resumed holder");
          // Juliet's messages to the account, sent while it hung, are each in the account's log once.
          let logged: string[] = [];
          for (let i = 0; i < 100 && logged.length < inbound.length; i++) {
            if (i > 0) await sleep(100);
            const r = await api(bed.lb, "GET", "/v1/events?since=0&limit=1000", { token, headers: { accept: "application/json" } });
            const items = (r.body as { items: { event: string; data: { body?: string | Record<string, string> } }[] }).items;
            // A body is one string, or one per language (API.md).
            const text = (b: string | Record<string, string> | undefined) => (typeof b === "string" ? b : Object.values(b ?? {})[0]);
            logged = items.flatMap((e) => (e.event === "message" && inbound.includes(text(e.data.body) ?? "") ? [text(e.data.body)!] : []));
          }
          assert.deepEqual([...logged].sort(), inbound, "juliet's messages sent during the hang reach the account's log once each");
          console.log(`[stalled-holder] ${old.name} resumed and is a standby; ${all.length} messages each once in order; states after SIGCONT: ${samples.at(-1)}`);
          console.log(`[stalled-holder] takeover log: ${JSON.stringify(takeover[0])}`);
          console.log(`[stalled-holder] link events:\n${bed.cluster.linkEvents().filter((l) => new Date(l.slice(0, 24)).getTime() >= stoppedAt - 1000).join("\n")}`);
        } finally {
          if (!resumed) old.proc?.child.kill("SIGCONT");
        }
      }));
  });
}
