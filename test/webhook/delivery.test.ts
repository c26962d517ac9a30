// Webhook delivery end to end: a real XMPP user sends stanzas to hosted accounts, the gateway
// appends events and POSTs them to a real receiver process on loopback, and every delivery is
// verified with the independent `standardwebhooks` verifier (the Standard Webhooks reference
// library). Ordering, retries (status, timeout, closed connection), failure for good, the
// deliveries view with each attempt, replay, rotation, filters and deletion are checked against
// what the receiver actually got.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import { Webhook } from "standardwebhooks";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { connectUser, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../../scripts/harness/webhook-receiver.js";
import { startTestGateway, waitFor, type TestGateway } from "../helpers/gateway.js";
import { grantPresence } from "../helpers/xmpp-world.js";

interface Delivered {
  id: number;
  account: string;
  type: string;
  data: { body?: string; [k: string]: unknown };
  createdAt: string;
}

/** A delivery as GET /v1/webhooks/{id}/deliveries lists it (the fields these tests read). */
interface HistoryItem {
  eventId: number;
  status: string;
  attempts: number;
  responseStatus: number | null;
  error: string | null;
  lastAttemptAt: string;
  history: { at: string; responseStatus: number | null; error: string | null; durationMs: number }[];
}

/** Verifies one request with the reference verifier and returns its payload; throws if the signature does not verify. */
function verified(secret: string, r: ReceivedWebhook): Delivered {
  return new Webhook(secret).verify(r.body, r.headers) as Delivered;
}

/**
 * The gaps shorter than `minMs` between consecutive attempts of one event (same webhook-id), as
 * the receiver saw them arrive: WEBHOOK_RETRY_SCHEDULE is a minimum, jitter only lengthens it.
 */
function earlyRetries(got: ReceivedWebhook[], minMs: number): string[] {
  const early: string[] = [];
  for (let i = 1; i < got.length; i++) {
    const [prev, next] = [got[i - 1]!, got[i]!];
    const gap = next.at - prev.at;
    if (next.headers["webhook-id"] === prev.headers["webhook-id"] && gap < minMs) early.push(`${next.headers["webhook-id"]}: ${gap.toFixed(1)} ms`);
  }
  return early;
}

interface World {
  server: XmppServer;
  gw: TestGateway;
  juliet: XmppUser;
  receiver: WebhookReceiver;
}

/** Prosody with Juliet on it, a webhook receiver process, and a gateway with `env` (on top of a 1 s WEBHOOK_TIMEOUT). */
async function startWorld(env: Record<string, string>, resource: string): Promise<World> {
  const server = await startXmppServer("prosody");
  await server.registerUser("juliet", "pw-juliet");
  const receiver = await startWebhookReceiver();
  const gw = await startTestGateway(server, { WEBHOOK_ALLOW_PRIVATE: "127.0.0.1", WEBHOOK_TIMEOUT: "1s", ...env });
  return { server, receiver, gw, juliet: await connectUser(server, "juliet", "pw-juliet", resource) };
}

async function stopWorld(w: Partial<World>): Promise<void> {
  await w.juliet?.stop();
  await w.gw?.stop();
  await w.receiver?.stop();
  await w.server?.stop();
}

describe("webhook delivery (prosody)", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let receiver: WebhookReceiver;

  before(async () => {
    ({ server, gw, juliet, receiver } = await startWorld(
      {
        WEBHOOK_RETRY_SCHEDULE: "300ms,300ms,300ms",
        // Long enough for the retry tests' failure streaks (about 2 s, but a loaded CI machine stretched
        // one past 3 s and the endpoint was disabled mid-test), short enough for the disabling test.
        WEBHOOK_DISABLE_AFTER: "8s",
      },
      "wh",
    ));
  });
  after(() => stopWorld({ server, gw, juliet, receiver }));

  const say = (localpart: string, text: string) => juliet.send(xml("message", { to: `${localpart}@${gw.domain}`, type: "chat", id: `m-${text}` }, xml("body", {}, text)));

  async function hook(localpart: string, name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
    const r = await gw.request("POST", "/v1/webhooks", { token: gw.token(localpart), body: { url: receiver.url(name), ...extra } });
    assert.equal(r.status, 201, r.text);
    return r.body as { id: string; secret: string };
  }

  it("delivers inbound messages in order, signed per Standard Webhooks, with the event as the stream shows it", async () => {
    await gw.createAccount("romeo");
    const { id, secret } = await hook("romeo", "order");
    for (let i = 0; i < 20; i++) await say("romeo", `order-${i}`);
    const got = await receiver.waitFor("order", 20);
    const payloads = got.map((r) => verified(secret, r));
    assert.deepEqual(payloads.map((p) => p.data.body), Array.from({ length: 20 }, (_, i) => `order-${i}`));
    assert.ok(payloads.every((p) => p.type === "message" && p.account === `romeo@${gw.domain}`));
    // Ids are the log's sequence numbers, increasing; webhook-id is per event and endpoint.
    for (let i = 1; i < payloads.length; i++) assert.ok(payloads[i]!.id > payloads[i - 1]!.id);
    assert.equal(new Set(got.map((r) => r.headers["webhook-id"])).size, 20);
    // The same event on the JSON view of the log.
    const log = await gw.request("GET", `/v1/events?since=${payloads[0]!.id - 1}&limit=1`, { token: gw.token("romeo"), headers: { accept: "application/json" } });
    assert.deepEqual({ id: log.body.items[0].id, type: log.body.items[0].event, data: log.body.items[0].data }, { id: payloads[0]!.id, type: "message", data: payloads[0]!.data });
    const view = await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=delivered`, { token: gw.token("romeo") });
    assert.equal(view.status, 200);
    assert.equal(view.body.items.length, 20);
    assert.ok(view.body.items.every((d: { attempts: number; responseStatus: number }) => d.attempts === 1 && d.responseStatus === 200));
  });

  it("retries a failing event (500, timeout, closed connection) with the same webhook-id before anything after it", async () => {
    await gw.createAccount("benvolio");
    const { id, secret } = await hook("benvolio", "retry");
    await receiver.plan("retry", ["500", "timeout", "close"]);
    await say("benvolio", "first");
    await say("benvolio", "second");
    const got = await receiver.waitFor("retry", 5).catch(async (e: Error) => {
      const status = (await gw.request("GET", `/v1/webhooks/${id}`, { token: gw.token("benvolio") })).body;
      throw new Error(`${e.message}; endpoint: ${JSON.stringify(status)}`);
    });
    assert.deepEqual(got.map((r) => r.behaviour), ["500", "timeout", "close", "ok", "ok"]);
    const bodies = got.map((r) => verified(secret, r).data.body);
    assert.deepEqual(bodies, ["first", "first", "first", "first", "second"]);
    assert.equal(new Set(got.slice(0, 4).map((r) => r.headers["webhook-id"])).size, 1, "one webhook-id across the attempts");
    // The receiver answered before the gateway recorded the outcome: wait for the record.
    const fourth = async () => (await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token: gw.token("benvolio") })).body.items.find((d: { attempts: number }) => d.attempts === 4);
    await waitFor(async () => (await fourth()) !== undefined, 3000, "the fourth attempt recorded");
    assert.equal((await fourth())?.status, "delivered");
    // Each attempt is listed, the closed connection as an error without a response.
    const history = ((await fourth()) as HistoryItem).history;
    assert.deepEqual(history.map((h) => h.responseStatus), [500, null, null, 200]);
    assert.deepEqual(history.map((h) => h.error === null), [true, false, false, true]);
    assert.match(history[1]!.error!, /^timeout/);
    assert.doesNotMatch(history[2]!.error!, /^timeout/, "the closed connection is recorded as what it was");
  });

  it("waits as long as a failure's Retry-After asks before the next attempt (Standard Webhooks), not the schedule's 300 ms", async () => {
    await gw.createAccount("abraham");
    const { secret } = await hook("abraham", "later");
    await receiver.plan("later", ["503;retry-after=2", "500"]);
    await say("abraham", "patience");
    const got = await receiver.waitFor("later", 3);
    assert.deepEqual(got.map((r) => [r.behaviour, verified(secret, r).data.body]), [["503;retry-after=2", "patience"], ["500", "patience"], ["ok", "patience"]]);
    const [first, second, third] = got.map((r) => r.at);
    assert.ok(second! - first! >= 2000, `the second attempt came ${(second! - first!).toFixed(0)} ms after the first`);
    // The sentinel: without a Retry-After the schedule's 300 ms holds again.
    assert.ok(third! - second! < 2000, `the third attempt came ${(third! - second!).toFixed(0)} ms after the second`);
  });

  it("disables an endpoint that answers 410 Gone at once (Standard Webhooks) and, enabled again, resumes at that event", async () => {
    await gw.createAccount("sampson");
    const { id, secret } = await hook("sampson", "gone");
    await receiver.plan("gone", ["410"]);
    await say("sampson", "g1");
    await say("sampson", "g2");
    const token = gw.token("sampson");
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${id}`, { token })).body.status === "disabled", 10_000, "endpoint disabled");
    assert.match((await gw.request("GET", `/v1/webhooks/${id}`, { token })).body.disabledReason, /410 Gone/);
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { status: "enabled" } })).body.status, "enabled");
    const got = await receiver.waitFor("gone", 3);
    // One attempt before the disabling (not the schedule's four), then the same event again and the next.
    assert.deepEqual(got.map((r) => [r.behaviour, verified(secret, r).data.body]), [["410", "g1"], ["ok", "g1"], ["ok", "g2"]]);
  });

  it("lists each attempt of a delivery (500, timeout, then 200) in its history, and ?status= still filters deliveries", async () => {
    await gw.createAccount("mercutio");
    const { id } = await hook("mercutio", "history");
    // "first": 500, no answer within WEBHOOK_TIMEOUT, then 200. "second": four 500s, failed for good.
    await receiver.plan("history", ["500", "timeout", "ok", "500", "500", "500", "500"]);
    await say("mercutio", "first");
    await say("mercutio", "second");
    const got = await receiver.waitFor("history", 7);
    assert.deepEqual(got.map((r) => r.behaviour), ["500", "timeout", "ok", "500", "500", "500", "500"]);
    const token = gw.token("mercutio");
    const list = async (q: string): Promise<HistoryItem[]> => {
      const r = await gw.request("GET", `/v1/webhooks/${id}/deliveries${q}`, { token });
      assert.equal(r.status, 200, r.text);
      return r.body.items;
    };
    // The receiver has the last attempt before the gateway records it: wait for the record.
    await waitFor(async () => (await list("?status=failed")).length === 1, 5000, "the second event failed for good");
    const [first, second] = [got[0]!, got[3]!].map((r) => JSON.parse(r.body).id as number);

    const [delivered] = await list("?status=delivered");
    // One item per event, its fields as before, and its three attempts oldest first.
    assert.deepEqual(
      [delivered?.eventId, delivered?.status, delivered?.attempts, delivered?.responseStatus, delivered?.error],
      [first, "delivered", 3, 200, null],
    );
    assert.deepEqual(
      delivered!.history.map((h) => [h.responseStatus, h.error === null ? null : h.error.split(":")[0]]),
      [[500, null], [null, "timeout"], [200, null]],
    );
    const [, timedOut] = delivered!.history;
    assert.ok(timedOut!.durationMs >= 900, `the timed-out attempt took ${timedOut!.durationMs} ms, not about WEBHOOK_TIMEOUT (1 s)`);
    const at = delivered!.history.map((h) => Date.parse(h.at));
    // Each attempt at least the 300 ms retry delay after the previous one ended (jitter only adds).
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 300, `attempt ${i + 1} ${at[i]! - at[i - 1]!} ms after attempt ${i}`);
    assert.equal(delivered!.history.at(-1)!.at, delivered!.lastAttemptAt);

    const [failed] = await list("?status=failed");
    assert.deepEqual([failed?.eventId, failed?.status, failed?.attempts, failed?.responseStatus], [second, "failed", 4, 500]);
    assert.deepEqual(failed!.history.map((h) => [h.responseStatus, h.error]), Array(4).fill([500, null]));
    assert.deepEqual(await list("?status=pending"), []);
    assert.deepEqual((await list("")).map((d) => d.eventId), [second, first], "one item per delivery, newest first");
  });

  it("counts a 2xx whose body is still coming at WEBHOOK_TIMEOUT as delivered, once (API.md: any 2xx within the timeout)", async () => {
    await gw.createAccount("potpan");
    const { id, secret } = await hook("potpan", "trickle");
    // The status and the body's first bytes at once, the rest 2.5 s later: past the 1 s timeout.
    await receiver.plan("trickle", ["trickle:2500"]);
    await say("potpan", "t1");
    await say("potpan", "t2");
    // t2 delivered proves t1 was settled; t1 not sent again proves it was settled as delivered.
    const got = await receiver.waitFor("trickle", 2);
    assert.deepEqual(got.map((r) => [r.behaviour, verified(secret, r).data.body]), [["trickle:2500", "t1"], ["ok", "t2"]]);
    const token = gw.token("potpan");
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=delivered`, { token })).body.items.length === 2, 5000, "both delivered");
    const items = (await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token })).body.items as HistoryItem[];
    assert.deepEqual(items.map((d) => [d.status, d.attempts, d.responseStatus, d.error]), [["delivered", 1, 200, null], ["delivered", 1, 200, null]]);
    assert.equal(await receiver.count("trickle"), 2, "t1 was not sent again");
  });

  it("fails an event for good when the schedule runs out, records why, and goes on with the next", async () => {
    await gw.createAccount("tybalt");
    const { id, secret } = await hook("tybalt", "give-up");
    await receiver.plan("give-up", ["500", "500", "503", "500"]);
    await say("tybalt", "doomed");
    await say("tybalt", "after");
    const got = await receiver.waitFor("give-up", 5);
    assert.deepEqual(got.map((r) => verified(secret, r).data.body), ["doomed", "doomed", "doomed", "doomed", "after"]);
    const failed = await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=failed`, { token: gw.token("tybalt") });
    assert.equal(failed.body.items.length, 1);
    assert.deepEqual(
      { attempts: failed.body.items[0].attempts, status: failed.body.items[0].responseStatus, excerpt: failed.body.items[0].responseExcerpt, next: failed.body.items[0].nextAttemptAt },
      { attempts: 4, status: 500, excerpt: "status 500", next: null },
    );
    assert.equal(failed.body.items[0].webhookId, got[0]!.headers["webhook-id"]);
    assert.deepEqual(earlyRetries(got, 300), [], "a retry came before the scheduled 300 ms");
  });

  it("delivers only the subscribed event types (a later subscribed event proves the others were passed over)", async () => {
    await gw.createAccount("paris");
    const { secret } = await hook("paris", "filtered", { events: ["roster"] });
    await say("paris", "not for this hook");
    // The message is in the log before the roster change: the lane reaches the roster event only past it.
    await waitFor(async () => (await gw.request("GET", "/v1/events?since=0", { token: gw.token("paris"), headers: { accept: "application/json" } })).body.items.length === 1, 5000, "message logged");
    assert.equal((await gw.request("PUT", "/v1/roster/nurse@localhost", { token: gw.token("paris"), body: { name: "Nurse" } })).status, 201);
    await receiver.waitFor("filtered", 1);
    await new Promise((r) => setTimeout(r, 300));
    const all = await receiver.log("filtered");
    assert.deepEqual(all.map((r) => verified(secret, r).type), ["roster"]);
  });

  it("signs with both secrets after a rotation, each verifiable on its own", async () => {
    await gw.createAccount("capulet");
    const { id, secret: old } = await hook("capulet", "rotate");
    const rotated = await gw.request("POST", `/v1/webhooks/${id}/rotate-secret`, { token: gw.token("capulet") });
    assert.equal(rotated.status, 200);
    const fresh = rotated.body.secret as string;
    assert.notEqual(fresh, old);
    await say("capulet", "rotated");
    const [r] = await receiver.waitFor("rotate", 1);
    assert.equal(r!.headers["webhook-signature"]!.split(" ").length, 2);
    assert.equal(verified(fresh, r!).data.body, "rotated");
    assert.equal(verified(old, r!).data.body, "rotated");
    assert.throws(() => verified(`whsec_${Buffer.alloc(32, 7).toString("base64")}`, r!), "a third secret does not verify");
  });

  it("rotated again within the overlap, signs with the first secret too until its own overlap ends (a client that retried a rotation whose answer it lost still has it)", async () => {
    await gw.createAccount("lawrence");
    const token = gw.token("lawrence");
    const { id, secret: first } = await hook("lawrence", "rotate-twice");
    const r1 = await gw.request("POST", `/v1/webhooks/${id}/rotate-secret`, { token });
    const r2 = await gw.request("POST", `/v1/webhooks/${id}/rotate-secret`, { token });
    assert.deepEqual([r1.status, r2.status], [200, 200]);
    await say("lawrence", "twice");
    const [r] = await receiver.waitFor("rotate-twice", 1);
    assert.equal(r!.headers["webhook-signature"]!.split(" ").length, 3);
    for (const secret of [r2.body.secret as string, r1.body.secret as string, first]) assert.equal(verified(secret, r!).data.body, "twice");
  });

  it("replays from a sequence number with the same webhook-ids", async () => {
    await gw.createAccount("montague");
    const { id } = await hook("montague", "replay");
    for (const t of ["r1", "r2", "r3"]) await say("montague", t);
    const first = await receiver.waitFor("replay", 3);
    const ids = first.map((r) => JSON.parse(r.body).id as number);
    // The case of a lane already past `since`: wait until all three are recorded as delivered (a
    // replay while one is in flight is the next test's).
    const delivered = async () => (await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=delivered`, { token: gw.token("montague") })).body.items.length;
    await waitFor(async () => (await delivered()) === 3, 5000, "the three deliveries settled");
    const res = await gw.request("POST", `/v1/webhooks/${id}/replay`, { token: gw.token("montague"), body: { since: ids[0] } });
    assert.equal(res.status, 202);
    assert.equal(res.body.lanes, 1);
    const again = (await receiver.waitFor("replay", 5)).slice(3);
    assert.deepEqual(again.map((r) => r.headers["webhook-id"]), first.slice(1).map((r) => r.headers["webhook-id"]));
  });

  it("replays an event whose delivery is in flight (the receiver already has it)", async () => {
    await gw.createAccount("balthasar");
    const { id, secret } = await hook("balthasar", "inflight");
    // The second delivery is answered only after 900 ms (under WEBHOOK_TIMEOUT): the replay comes meanwhile.
    await receiver.plan("inflight", ["ok", "slow:900"]);
    for (const t of ["f1", "f2"]) await say("balthasar", t);
    const first = await receiver.waitFor("inflight", 2);
    const ids = first.map((r) => JSON.parse(r.body).id as number);
    const res = await gw.request("POST", `/v1/webhooks/${id}/replay`, { token: gw.token("balthasar"), body: { since: ids[0] } });
    const asked = Date.now();
    assert.equal(res.status, 202);
    assert.equal(res.body.lanes, 1);
    // A sentinel after the replayed event: nothing else comes between them.
    await receiver.waitFor("inflight", 3);
    await say("balthasar", "f3");
    const all = await receiver.waitFor("inflight", 4);
    assert.ok(all[1]!.answeredAt! > asked, "the second delivery was still in flight when the replay was asked for");
    assert.deepEqual(all.map((r) => verified(secret, r).data.body), ["f1", "f2", "f2", "f3"]);
    assert.equal(all[2]!.headers["webhook-id"], all[1]!.headers["webhook-id"]);
  });

  it("stops delivering to a deleted endpoint (another endpoint of the account gets the events after it)", async () => {
    await gw.createAccount("escalus");
    const gone = await hook("escalus", "deleted");
    await hook("escalus", "kept");
    await say("escalus", "before");
    await receiver.waitFor("deleted", 1);
    await receiver.waitFor("kept", 1);
    assert.equal((await gw.request("DELETE", `/v1/webhooks/${gone.id}`, { token: gw.token("escalus") })).status, 204);
    for (const t of ["after-1", "after-2"]) await say("escalus", t);
    await receiver.waitFor("kept", 3);
    assert.equal(await receiver.count("deleted"), 1);
    assert.equal((await gw.request("GET", `/v1/webhooks/${gone.id}`, { token: gw.token("escalus") })).status, 404);
  });

  it("disables an endpoint that fails for WEBHOOK_DISABLE_AFTER and resumes where it stopped when enabled again", async () => {
    await gw.createAccount("friar");
    const { id, secret } = await hook("friar", "disable");
    await receiver.plan("disable", Array<string>(100).fill("500"));
    // 16 events x 4 attempts at least 300 ms apart: failures for longer than WEBHOOK_DISABLE_AFTER.
    const texts = Array.from({ length: 16 }, (_, i) => `d${String(i + 1).padStart(2, "0")}`);
    for (const t of texts) await say("friar", t);
    const token = gw.token("friar");
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${id}`, { token })).body.status === "disabled", 40_000, "endpoint disabled");
    const view = (await gw.request("GET", `/v1/webhooks/${id}`, { token })).body;
    assert.match(view.disabledReason, /every attempt failed since/);
    assert.ok(view.failingSince);
    const tried = await receiver.count("disable");
    // Dozens of retries, each drawn its own jitter: none came before the scheduled 300 ms.
    assert.deepEqual(earlyRetries(await receiver.log("disable"), 300), [], "retries came before the scheduled 300 ms");
    await receiver.plan("disable", []);
    // Disabled: nothing more goes out, though events are waiting (the enable below proves they are).
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(await receiver.count("disable"), tried);
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { status: "enabled" } })).body.status, "enabled");
    await waitFor(async () => (await receiver.log("disable")).some((r) => r.behaviour === "ok" && verified(secret, r).data.body === "d16"), 20_000, "the last event delivered after enabling");
    // After enabling, the lane went on from the event it stopped at, in order, to the end.
    const resumed = (await receiver.log("disable")).slice(tried).map((r) => verified(secret, r).data.body!);
    assert.ok(resumed.length >= 1);
    assert.deepEqual(resumed, [...resumed].sort());
    assert.equal(resumed.at(-1), "d16");
  });

  // WEBHOOK_DISABLE_AFTER measures how long attempts kept failing (README "Failing endpoints
  // stop"): a failure holds the streak for the schedule's longest gap (300 ms + 20 % jitter) and a
  // lease (2 x 1 s + 5 s), about 7.4 s here, or for its own retry's wait if longer (a Retry-After).
  it("counts a failure streak only while attempts keep failing: a quiet spell ends it, a Retry-After's wait does not", async () => {
    await gw.createAccount("nurse");
    const token = gw.token("nurse");
    const { id, secret } = await hook("nurse", "quiet");
    const items = async (): Promise<HistoryItem[]> => (await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token })).body.items;
    const view = async () => (await gw.request("GET", `/v1/webhooks/${id}`, { token })).body;
    // On a failure: what the receiver saw (when, what), the endpoint's row, its lanes and deliveries.
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${new Date().toISOString()} ${what}`);
    const evidence = async (): Promise<string> => {
      const got = await receiver.log("quiet");
      const t0 = got[0]?.at ?? 0;
      const lines = got.map((r, i) => {
        const p = verified(secret, r);
        const answered = r.answeredAt === undefined ? "unanswered" : `answered +${(r.answeredAt - r.at).toFixed(0)} ms`;
        return `  #${i} ${new Date(r.at).toISOString()} (+${(r.at - t0).toFixed(0)} ms) ${p.type} ${p.data.body ?? ""} seq ${p.id} ${r.behaviour} ${answered} ${r.headers["webhook-id"]}`;
      });
      const q = async (sql: string) => JSON.stringify((await gw.running.db.pool.query(sql, [id])).rows);
      return [
        `receiver (${got.length}):`,
        ...lines,
        `test: ${marks.join("; ")}`,
        `now ${new Date().toISOString()}`,
        `webhook: ${await q("SELECT failing_since, failing_until, disabled_at, disabled_reason, lease_owner, lease_until FROM webhook WHERE id = $1")}`,
        `lanes: ${await q("SELECT l.*, a.last_seq FROM webhook_lane l JOIN account a ON a.id = l.account_id WHERE l.webhook_id = $1")}`,
        `deliveries: ${JSON.stringify(await items())}`,
      ].join("\n");
    };
    try {
      // Every attempt fails: q1 and q2 for good (4 attempts each), q3 first asking to wait 9 s.
      await receiver.plan("quiet", [...Array<string>(8).fill("500"), "503;retry-after=9", ...Array<string>(10).fill("500")]);
      mark("say q1");
      await say("nurse", "q1");
      await waitFor(async () => (await items())[0]?.status === "failed", 10_000, "q1 failed for good");
      const q1 = (await items())[0]!;
      mark("q1 failed seen");
      // Nothing to send for longer than WEBHOOK_DISABLE_AFTER and than a failure holds the streak.
      await new Promise((r) => setTimeout(r, 8500));
      mark("say q2");
      await say("nurse", "q2");
      await waitFor(async () => (await items()).length === 2, 10_000, "q2's first attempt recorded");
      // Read after q2's first failure was recorded: a new streak, not the old one gone too long.
      const failing = await view();
      mark(`q2 first seen, failingSince ${failing.failingSince}`);
      assert.equal(failing.status, "enabled", `disabled: ${failing.disabledReason}`);
      assert.ok(Date.parse(failing.failingSince) > Date.parse(q1.lastAttemptAt) + 8000, `a streak begun after the quiet spell: ${failing.failingSince}`);
      await waitFor(async () => (await items())[0]?.status === "failed", 10_000, "q2 failed for good");
      mark("q2 failed seen");
      // A pause longer than the schedule's gaps (360 ms) but well within the hold: the streak goes on.
      // (With 3 s it failed once, on a machine running four suites at once: more of the hold is left.)
      // With this 1 s, q3's retry falls due about when the 10 s sweep set at q2's last retry comes:
      // a retry due between that sweep's claim and its next-wake read once went 10 s late (476eb0b).
      await new Promise((r) => setTimeout(r, 1000));
      mark("say q3");
      await say("nurse", "q3");
      await waitFor(async () => (await view()).status === "disabled", 25_000, "endpoint disabled");
      const disabled = await view();
      assert.equal(disabled.disabledReason, `every attempt failed since ${(failing.failingSince as string).slice(0, 19)}Z`, "the streak begun by q2");
      const got = await receiver.log("quiet");
      assert.deepEqual(
        got.map((r) => `${verified(secret, r).data.body} ${r.behaviour}`),
        [...Array<string>(4).fill("q1 500"), ...Array<string>(4).fill("q2 500"), "q3 503;retry-after=9", "q3 500"],
        "disabled by q3's retry, after the wait its receiver asked for",
      );
      assert.ok(got[9]!.at - got[8]!.at >= 9000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await evidence()}`, { cause: e });
    }
  });

  it("delivers every account's events to an admin's every-account endpoint, accounts created later (and made again) included", async () => {
    await gw.createAccount("lady-old");
    const r = await gw.request("POST", "/v1/webhooks", { body: { url: receiver.url("star"), account: "*", events: ["message"] } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.account, "*");
    await gw.createAccount("lady-new");
    await say("lady-old", "to old");
    await say("lady-new", "to new");
    const got = (await receiver.waitFor("star", 2)).map((x) => verified(r.body.secret, x));
    assert.deepEqual(got.map((p) => `${p.account} ${p.data.body}`).sort(), [`lady-new@${gw.domain} to new`, `lady-old@${gw.domain} to old`]);
    // Made again under a deleted account's name: its log is numbered on from the old one's, and its
    // lane starts at that log's start, so no resync comes before its first event.
    assert.equal((await gw.request("DELETE", "/v1/accounts/lady-old")).status, 204);
    await gw.createAccount("lady-old");
    await say("lady-old", "to old again");
    const next = (await receiver.waitFor("star", 3)).map((x) => verified(r.body.secret, x));
    assert.deepEqual(next.slice(2).map((p) => `${p.account} ${p.type} ${p.data.body}`), [`lady-old@${gw.domain} message to old again`]);
    assert.equal((await gw.request("DELETE", `/v1/webhooks/${r.body.id}`)).status, 204);
  });

  it("answers a XEP-0184 receipt request once the message is delivered to a webhook (no stream open)", async () => {
    await gw.createAccount("apothecary");
    // Juliet may see its presence: receipts go to such a sender only (XEP-0184 §8). Before the hook, which starts after it.
    await grantPresence(gw, "apothecary", juliet);
    const { secret } = await hook("apothecary", "receipt");
    await receiver.plan("receipt", ["500"]);
    await juliet.send(xml("message", { to: `apothecary@${gw.domain}`, type: "chat", id: "wants-receipt" }, xml("body", {}, "did you get it?"), xml("request", { xmlns: "urn:xmpp:receipts" })));
    // The retry may wait out a worker's idle hold (2 s) on a loaded machine; CI once took over 10 s here.
    const received = await juliet.waitFor((s) => s.getChild("received", "urn:xmpp:receipts")?.attrs.id === "wants-receipt", 30_000);
    assert.equal(received.attrs.from, `apothecary@${gw.domain}`);
    // Only after a delivery that succeeded: the first attempt failed, the receipt waited for the second.
    const got = await receiver.log("receipt");
    assert.deepEqual(got.map((r) => r.behaviour), ["500", "ok"]);
    assert.equal(verified(secret, got[1]!).data.body, "did you get it?");
    assert.ok(received && got[1]!.answeredAt !== undefined);
  });
});

describe("webhook delivery (prosody): enabled again or moved, an endpoint does not wait out a long retry", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let receiver: WebhookReceiver;

  before(async () => {
    // A first retry a minute away: a test that waited for it would time out.
    ({ server, gw, juliet, receiver } = await startWorld({ WEBHOOK_RETRY_SCHEDULE: "60s", WEBHOOK_DISABLE_AFTER: "30s" }, "wh2"));
  });
  after(() => stopWorld({ server, gw, juliet, receiver }));

  const say = (localpart: string, text: string) => juliet.send(xml("message", { to: `${localpart}@${gw.domain}`, type: "chat", id: `m-${text}` }, xml("body", {}, text)));
  const pending = async (id: string, token: string): Promise<HistoryItem[]> => (await gw.request("GET", `/v1/webhooks/${id}/deliveries?status=pending`, { token })).body.items;

  it("PATCH status enabled sends the event it stopped at now, not at the retry the disabling failure scheduled", async () => {
    await gw.createAccount("balthasar");
    const token = gw.token("balthasar");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("reenable") } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    await receiver.plan("reenable", ["410"]);
    await say("balthasar", "e1");
    await waitFor(async () => (await gw.request("GET", `/v1/webhooks/${id}`, { token })).body.status === "disabled", 10_000, "endpoint disabled");
    await waitFor(async () => (await pending(id, token)).length === 1, 5000, "e1 pending");
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { status: "enabled" } })).body.status, "enabled");
    const got = await receiver.waitFor("reenable", 2, 10_000);
    assert.deepEqual(got.map((r) => [r.behaviour, verified(secret, r).data.body]), [["410", "e1"], ["ok", "e1"]]);
    await waitFor(async () => (await pending(id, token)).length === 0, 5000, "e1 settled");
  });

  it("PATCH url sends an event waiting for its retry to the new URL now", async () => {
    await gw.createAccount("abram");
    const token = gw.token("abram");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("old-home") } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    await receiver.plan("old-home", ["500"]);
    await say("abram", "u1");
    await receiver.waitFor("old-home", 1);
    await waitFor(async () => (await pending(id, token)).length === 1, 5000, "u1 pending");
    assert.ok((await gw.request("GET", `/v1/webhooks/${id}`, { token })).body.failingSince, "failing at the old URL");
    const moved = await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { url: receiver.url("new-home") } });
    assert.equal(moved.status, 200, moved.text);
    // A new URL starts with no failure streak: the old one's must not disable it at its first failure.
    assert.equal(moved.body.failingSince, null);
    const [got] = await receiver.waitFor("new-home", 1, 10_000);
    assert.equal(verified(secret, got!).data.body, "u1");
    assert.equal(await receiver.count("old-home"), 1);
  });

  it("PATCH url while an attempt to the old URL is in flight: that attempt's failure schedules nothing, the new URL gets the event now", async () => {
    await gw.createAccount("gregory");
    const token = gw.token("gregory");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("stuck-home") } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    // No answer: the attempt is in flight until WEBHOOK_TIMEOUT (1 s), then fails (a 60 s retry).
    await receiver.plan("stuck-home", ["timeout"]);
    await say("gregory", "s1");
    await receiver.waitFor("stuck-home", 1);
    const moved = await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { url: receiver.url("next-home") } });
    assert.equal(moved.status, 200, moved.text);
    const [got] = await receiver.waitFor("next-home", 1, 10_000);
    assert.equal(verified(secret, got!).data.body, "s1");
  });

  it("PATCH events while an event waits for its retry: the lane starts afresh (the next event goes now, its attempts its own) and the left-out event's delivery is failed, saying why", async () => {
    await gw.createAccount("sampson");
    const token = gw.token("sampson");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("refilter"), events: ["message", "roster"] } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    await receiver.plan("refilter", ["500"]);
    await say("sampson", "f1");
    await waitFor(async () => (await pending(id, token)).length === 1, 5000, "f1 pending");
    const patched = await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { events: ["roster"] } });
    assert.equal(patched.status, 200, patched.text);
    assert.ok(patched.body.failingSince, "the endpoint's failure streak stays");
    assert.equal((await gw.request("PUT", "/v1/roster/nurse@localhost", { token, body: { name: "Nurse" } })).status, 201);
    // Now, not at the 60 s retry the message's failure scheduled.
    const got = await receiver.waitFor("refilter", 2, 10_000);
    assert.deepEqual(got.map((g) => [g.behaviour, verified(secret, g).type]), [["500", "message"], ["ok", "roster"]]);
    let items: (HistoryItem & { type: string })[] = [];
    await waitFor(async () => (items = (await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token })).body.items).every((d: HistoryItem) => d.status !== "pending"), 5000, "both settled");
    assert.deepEqual(
      items.map((d) => [d.type, d.status, d.attempts, d.error]),
      [
        ["roster", "delivered", 1, null],
        ["message", "failed", 1, "no longer among the endpoint's events (a PATCH changed them)"],
      ],
    );
  });

  it("a PATCH that repeats the endpoint's state (enabled, the same url) leaves a waiting retry where it is", async () => {
    await gw.createAccount("peter");
    const token = gw.token("peter");
    const url = receiver.url("same-home");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url } });
    assert.equal(r.status, 201, r.text);
    const { id } = r.body as { id: string };
    await receiver.plan("same-home", ["500"]);
    await say("peter", "p1");
    await waitFor(async () => (await pending(id, token)).length === 1, 5000, "p1 pending");
    const again = await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { url, status: "enabled", description: "saved whole" } });
    assert.equal(again.status, 200, again.text);
    assert.ok(again.body.failingSince, "still failing");
    const { rows } = await gw.running.db.pool.query<{ attempts: number; wait: number }>(
      "SELECT attempts, extract(epoch FROM next_attempt_at - now())::float8 AS wait FROM webhook_lane WHERE webhook_id = $1 AND attempts > 0",
      [id],
    );
    assert.equal(rows.length, 1, "one lane waiting for its retry");
    assert.equal(rows[0]!.attempts, 1);
    assert.ok(rows[0]!.wait > 30, `its retry is still about 60 s away, not ${rows[0]!.wait} s`);
    assert.equal(await receiver.count("same-home"), 1);
  });
});

describe("webhook delivery (prosody): events purged before the endpoint got them", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let receiver: WebhookReceiver;

  before(async () => {
    // The purge runs every 300 ms and takes what is older than 4 s (and held by no enabled endpoint).
    ({ server, gw, juliet, receiver } = await startWorld({ WEBHOOK_RETRY_SCHEDULE: "300ms", EVENT_RETENTION: "4s", MAINTENANCE_INTERVAL: "300ms" }, "wh3"));
  });
  after(() => stopWorld({ server, gw, juliet, receiver }));

  it("enabled again after its events were purged, an endpoint gets a resync first (whatever its types), then the events kept; a replay from before the kept log too", async () => {
    await gw.createAccount("rosaline");
    const token = gw.token("rosaline");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("purged"), events: ["roster"] } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { status: "disabled" } })).status, 200);
    for (const contact of ["a", "b", "c"]) assert.equal((await gw.request("PUT", `/v1/roster/${contact}@localhost`, { token, body: { name: contact } })).status, 201);
    const stored = async () => (await gw.running.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = 'rosaline'")).rows[0]!.n;
    // A disabled endpoint holds nothing back: the purge takes the three.
    await waitFor(async () => (await stored()) === 0, 10_000, "the three events purged");
    assert.equal((await gw.request("PATCH", `/v1/webhooks/${id}`, { token, body: { status: "enabled" } })).status, 200);
    assert.equal((await gw.request("PUT", "/v1/roster/d@localhost", { token, body: { name: "d" } })).status, 201);
    const got = (await receiver.waitFor("purged", 2, 10_000)).map((g) => verified(secret, g));
    const kept = got[1]!;
    assert.deepEqual(
      got.map((p) => [p.id, p.type, p.data]),
      [
        [kept.id - 1, "resync", { reason: "events purged from the retained log before this endpoint got them", from: kept.id - 1 }],
        [kept.id, "roster", kept.data],
      ],
    );
    assert.equal((kept.data as { item?: { jid: string } }).item?.jid, "d@localhost");
    // A replay from before what is kept (before d goes too): the same resync (the same webhook-id), then d again.
    assert.equal((await gw.request("POST", `/v1/webhooks/${id}/replay`, { token, body: { since: 0 } })).status, 202);
    const again = await receiver.waitFor("purged", 4, 10_000);
    assert.deepEqual(
      again.slice(2).map((g) => [g.headers["webhook-id"], verified(secret, g).type]),
      got.map((p, i) => [again[i]!.headers["webhook-id"], p.type]),
    );
    const deliveries = async () => (await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token })).body.items.map((d: HistoryItem & { type: string }) => [d.eventId, d.type, d.status]);
    await waitFor(async () => (await deliveries()).every((d: string[]) => d[2] === "delivered"), 5000, "the deliveries settled");
    assert.deepEqual(await deliveries(), [
      [kept.id, "roster", "delivered"],
      [kept.id - 1, "resync", "delivered"],
    ]);
  });

  it("a resync that names an event the endpoint got is a message of its own: a webhook-id none of them had, and a delivery record of its own", async () => {
    await gw.createAccount("tybalt");
    const token = gw.token("tybalt");
    const r = await gw.request("POST", "/v1/webhooks", { token, body: { url: receiver.url("had"), events: ["roster"] } });
    assert.equal(r.status, 201, r.text);
    const { id, secret } = r.body as { id: string; secret: string };
    for (const contact of ["a", "b", "c"]) assert.equal((await gw.request("PUT", `/v1/roster/${contact}@localhost`, { token, body: { name: contact } })).status, 201);
    const had = await receiver.waitFor("had", 3, 10_000);
    const last = verified(secret, had[2]!);
    const stored = async () => (await gw.running.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM event e JOIN account a ON a.id = e.account_id WHERE a.localpart = 'tybalt'")).rows[0]!.n;
    // Delivered, they are the purge's to take: aged, at its next pass, while their delivery records stay.
    await gw.running.db.pool.query("UPDATE event SET created_at = now() - interval '1 hour' WHERE account_id = (SELECT id FROM account WHERE localpart = 'tybalt')");
    await waitFor(async () => (await stored()) === 0, 10_000, "the three events purged");
    assert.equal((await gw.request("POST", `/v1/webhooks/${id}/replay`, { token, body: { since: 0 } })).status, 202);
    const resync = (await receiver.waitFor("had", 4, 10_000))[3]!;
    const payload = verified(secret, resync);
    assert.deepEqual([payload.type, payload.id], ["resync", last.id], "it names the last event gone, as a stream's resync does");
    const ids = had.map((g) => g.headers["webhook-id"]);
    assert.equal(new Set([...ids, resync.headers["webhook-id"]]).size, 4, `a webhook-id of its own: ${resync.headers["webhook-id"]} beside ${ids.join(", ")}`);
    // Its record is its own (type, time): listed, not purged at once with the event it took the place of.
    await waitFor(
      async () => ((await gw.request("GET", `/v1/webhooks/${id}/deliveries`, { token })).body.items as (HistoryItem & { type: string; webhookId: string; eventId: number })[]).some(
        (d) => d.type === "resync" && d.eventId === last.id && d.webhookId === resync.headers["webhook-id"] && d.status === "delivered",
      ),
      5000,
      "the resync's delivery listed under its webhook-id",
    );
  });
});

// Endpoints that share one host (an integration platform's: one receiver, a path per endpoint):
// each request goes out at once, not queued behind the others for a connection, so an endpoint
// that answers well within WEBHOOK_TIMEOUT of getting its request is delivered at its first
// attempt. Twelve endpoints answering 1.2 s after their request, with a 2 s timeout: with 8
// connections a host, four waited for one and timed out.
describe("webhook delivery (prosody): endpoints on one host", () => {
  let server: XmppServer;
  let gw: TestGateway;
  let juliet: XmppUser;
  let receiver: WebhookReceiver;

  before(async () => {
    ({ server, gw, juliet, receiver } = await startWorld({ WEBHOOK_TIMEOUT: "2s", WEBHOOK_RETRY_SCHEDULE: "30s" }, "wh4"));
  });
  after(() => stopWorld({ server, gw, juliet, receiver }));

  it("sends every endpoint's request at once: each answering 200 1.2 s after it got it is delivered at the first attempt", async () => {
    const hooks: { lp: string; id: string }[] = [];
    for (let i = 0; i < 12; i++) {
      const lp = `host${i}`;
      await gw.createAccount(lp);
      await receiver.plan(lp, ["slow:1200"]);
      const r = await gw.request("POST", "/v1/webhooks", { token: gw.token(lp), body: { url: receiver.url(lp) } });
      assert.equal(r.status, 201, r.text);
      hooks.push({ lp, id: r.body.id as string });
    }
    await Promise.all(hooks.map(async (h) => assert.equal((await gw.request("PUT", "/v1/roster/a@localhost", { token: gw.token(h.lp), body: { name: "a" } })).status, 201)));
    type Delivery = { status: string; attempts: number; error: string | null };
    const first = async () => Promise.all(hooks.map(async (h) => ((await gw.request("GET", `/v1/webhooks/${h.id}/deliveries`, { token: gw.token(h.lp) })).body.items[0] ?? null) as Delivery | null));
    // Settled: delivered, or failed once and waiting 30 s for its retry.
    await waitFor(async () => (await first()).every((d) => d !== null && (d.status === "delivered" || d.attempts >= 1)), 15_000, "every endpoint's first attempt settled");
    const outcomes = (await first()).map((d, i) => `${hooks[i]!.lp}: ${d!.status} ${d!.attempts} ${d!.error ?? ""}`.trim());
    assert.deepEqual(outcomes, hooks.map((h) => `${h.lp}: delivered 1`));
    const arrived = await Promise.all(hooks.map((h) => receiver.log(h.lp)));
    assert.deepEqual(arrived.map((l) => l.length), hooks.map(() => 1), "one request each, none repeated");
  });
});
