// The webhook dispatcher (src/services/webhook-dispatch.ts) against a real PostgreSQL with a fake
// WebhookPort that records every attempt and how many were in flight: one request at a time per
// endpoint, the global cap reached but never passed, each lane in sequence order exactly once,
// several dispatchers on one database never attempting the same event twice, a stop that aborts
// what is in flight without counting it as a failure, replays that reach what is in flight, and
// each attempt kept in its delivery's bounded history.
import { randomUUID } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendEvents } from "../../src/db/events.js";
import { Notifications } from "../../src/db/notify.js";
import { WebhookLanes } from "../../src/db/webhook-lanes.js";
import { Webhooks as WebhookStore } from "../../src/db/webhooks.js";
import { event } from "../../src/domain/events.js";
import type { WebhookPort, WebhookRequest, WebhookResult } from "../../src/services/ports.js";
import { WebhookDispatcher, type DispatchOptions } from "../../src/services/webhook-dispatch.js";
import { Webhooks } from "../../src/services/webhooks.js";
import { setup, teardown, waitFor, type Env, type TestAccount } from "./setup.js";

/** Records attempts; answers 200 after `delayMs`, or waits for the abort signal when `hang`. */
class FakeWebhooks implements WebhookPort {
  readonly attempts: { url: string; msgId: string; seq: number; account: string }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  readonly perUrl = new Map<string, number>();
  maxPerUrl = 0;
  hang = false;
  /** An attempt of this sequence number waits for release() (once); held attempts are released oldest first. */
  holdSeq: number | null = null;
  held = 0;
  private readonly releaseHeld: Array<() => void> = [];
  release(): void {
    this.releaseHeld.shift()?.();
  }
  constructor(private readonly delayMs: number) {}
  newSecret(): string {
    return `whsec_${Buffer.alloc(32, 1).toString("base64")}`;
  }
  async checkTarget(): Promise<void> {}
  async post(req: WebhookRequest, signal: AbortSignal): Promise<WebhookResult> {
    const body = JSON.parse(req.body) as { id: number; account: string };
    this.attempts.push({ url: req.url, msgId: req.msgId, seq: body.id, account: body.account });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const n = (this.perUrl.get(req.url) ?? 0) + 1;
    this.perUrl.set(req.url, n);
    this.maxPerUrl = Math.max(this.maxPerUrl, n);
    try {
      if (body.id === this.holdSeq) {
        this.holdSeq = null;
        this.held++;
        await new Promise<void>((resolve) => this.releaseHeld.push(resolve));
      }
      // The listener goes with the attempt: the signal lives as long as the dispatcher, and listeners
      // left on it piled up (a MaxListenersExceededWarning in every run).
      await new Promise<void>((resolve, reject) => {
        const aborted = () => reject(new Error("aborted"));
        signal.addEventListener("abort", aborted, { once: true });
        if (!this.hang)
          setTimeout(() => {
            signal.removeEventListener("abort", aborted);
            resolve();
          }, this.delayMs);
      });
      return { ok: true, status: 200, excerpt: "ok", error: null, ms: this.delayMs };
    } catch {
      return { ok: false, status: null, excerpt: null, error: "aborted: the gateway is shutting down", ms: 0 };
    } finally {
      this.inFlight--;
      this.perUrl.set(req.url, this.perUrl.get(req.url)! - 1);
    }
  }
}

/** Answers each endpoint's attempts from its plan, in order (a status, or an error without a response), then 200. */
class PlannedWebhooks extends FakeWebhooks {
  constructor(private readonly plans: Map<string, { status: number | null; ms: number }[]>) {
    super(0);
  }
  override async post(req: WebhookRequest): Promise<WebhookResult> {
    const body = JSON.parse(req.body) as { id: number; account: string };
    this.attempts.push({ url: req.url, msgId: req.msgId, seq: body.id, account: body.account });
    const next = this.plans.get(req.url)?.shift() ?? { status: 200, ms: 1 };
    if (next.status === null) return { ok: false, status: null, excerpt: null, error: "ECONNRESET: other side closed", ms: next.ms };
    return { ok: next.status < 300, status: next.status, excerpt: `status ${next.status}`, error: null, ms: next.ms };
  }
}

const OPTIONS: DispatchOptions = { retryScheduleMs: [50, 50], timeoutMs: 1000, disableAfterMs: 60_000, concurrency: 3 };
const quiet = { debug() {}, info() {}, warn() {} };

describe("webhook dispatcher", () => {
  let env: Env;
  let notifications: Notifications;
  let store: WebhookStore;
  let lanes: WebhookLanes;
  beforeEach(async () => {
    // Each test starts with no endpoint: none inherits another's lanes.
    await env.db.pool.query("DELETE FROM webhook");
  });
  before(async () => {
    env = await setup();
    notifications = new Notifications(env.tdb.url, () => undefined);
    await notifications.start();
    store = new WebhookStore(env.db.pool);
    lanes = new WebhookLanes(env.db.pool);
  });
  after(async () => {
    await notifications?.stop();
    await teardown(env);
  });

  const dispatcher = (port: FakeWebhooks, opts: Partial<DispatchOptions> = {}) =>
    new WebhookDispatcher(lanes, port, notifications, env.domain, { ...OPTIONS, ...opts }, { attempt() {} }, quiet, async () => {});
  const roster = (a: TestAccount, i: number) => ({ accountId: a.id, ...event("roster", { jid: `c${i}@example.net`, removed: true, ver: String(i) }) });
  /** Appends `n` events to each account, interleaved across accounts, in small transactions. */
  async function append(accounts: TestAccount[], n: number): Promise<void> {
    for (let i = 0; i < n; i++) await env.db.transaction((tx) => appendEvents(tx, accounts.map((a) => roster(a, i))));
  }
  /** The sequence numbers each (endpoint, account) was sent, in the order sent. */
  function byLane(port: FakeWebhooks): Map<string, number[]> {
    const m = new Map<string, number[]>();
    for (const a of port.attempts) m.set(`${a.url} ${a.account}`, [...(m.get(`${a.url} ${a.account}`) ?? []), a.seq]);
    return m;
  }

  it("sends each lane in sequence order exactly once, one request per endpoint, up to the global cap", async () => {
    const accounts = await Promise.all(Array.from({ length: 6 }, () => env.account("wh")));
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    for (const [i, a] of accounts.entries()) await service.create(a.id, { url: `http://hooks.test/${i}` });
    const port = new FakeWebhooks(15);
    const d = dispatcher(port);
    await d.start();
    await append(accounts, 8);
    const delivered = async () =>
      (await env.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_delivery WHERE status = 'delivered' AND account_id = ANY($1)", [accounts.map((a) => a.id)])).rows[0]!.n;
    await waitFor(async () => (await delivered()) === 48, "48 deliveries recorded", 15_000);
    await d.stop();
    const lanesSeen = byLane(port);
    assert.equal(lanesSeen.size, 6);
    for (const [lane, seqs] of lanesSeen) assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8], lane);
    assert.equal(port.maxPerUrl, 1, "one request in flight per endpoint");
    assert.equal(port.maxInFlight, 3, "the cap is reached and never passed");
    assert.equal(port.attempts.length, 48, "no attempt beyond the 48 events");
  });

  it("two dispatchers on one database never attempt the same event twice", async () => {
    const accounts = await Promise.all(Array.from({ length: 4 }, () => env.account("pair")));
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    for (const [i, a] of accounts.entries()) await service.create(a.id, { url: `http://pair.test/${i}` });
    await service.create(null, { url: "http://pair.test/every" });
    const [p1, p2] = [new FakeWebhooks(3), new FakeWebhooks(3)];
    const [d1, d2] = [dispatcher(p1), dispatcher(p2)];
    await Promise.all([d1.start(), d2.start()]);
    await append(accounts, 25);
    // 4 own endpoints x 25 events, and the every-account endpoint gets all 100.
    await waitFor(() => p1.attempts.length + p2.attempts.length >= 200, "200 deliveries", 20_000);
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all([d1.stop(), d2.stop()]);
    const all = [...p1.attempts, ...p2.attempts];
    assert.equal(all.length, 200);
    assert.equal(new Set(all.map((a) => a.msgId)).size, 200, "every webhook-id once");
    assert.ok(p1.attempts.length > 0 && p2.attempts.length > 0, `both took part (${p1.attempts.length}, ${p2.attempts.length})`);
  });

  it("stop() aborts what is in flight without recording a failure, and hands the endpoint back", async () => {
    const a = await env.account("stop");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://stop.test/" });
    const port = new FakeWebhooks(0);
    port.hang = true;
    const d = dispatcher(port);
    await d.start();
    await append([a], 1);
    await waitFor(() => port.attempts.length === 1, "the attempt in flight");
    await d.stop();
    const { rows } = await env.db.pool.query("SELECT status FROM webhook_delivery WHERE webhook_id = $1", [hook.id]);
    assert.deepEqual(rows, [], "nothing recorded for the aborted attempt");
    const lease = await env.db.pool.query<{ lease_owner: string | null; seq: number; attempts: number }>(
      "SELECT w.lease_owner, l.seq, l.attempts FROM webhook w JOIN webhook_lane l ON l.webhook_id = w.id WHERE w.id = $1",
      [hook.id],
    );
    assert.deepEqual(lease.rows, [{ lease_owner: null, seq: 0, attempts: 0 }]);
    // The next dispatcher sends it at once (no lease to wait out), with the same webhook-id.
    const next = new FakeWebhooks(0);
    const d2 = dispatcher(next);
    await d2.start();
    await waitFor(() => next.attempts.length === 1, "the event sent again");
    await d2.stop();
    assert.equal(next.attempts[0]!.msgId, port.attempts[0]!.msgId);
  });

  it("an endpoint held by a dispatcher whose instance died is taken over within seconds, not when its lease runs out", async () => {
    const a = await env.account("dead");
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    const hooks = [await service.create(a.id, { url: "http://dead.test/1" }), await service.create(a.id, { url: "http://dead.test/2" })];
    // The first instance: its own listening connection, one endpoint at a time, a request that
    // never ends and a 30 s timeout (its lease: 65 s).
    const ownListener = new Notifications(env.tdb.url, () => undefined);
    await ownListener.start();
    const stuck = new FakeWebhooks(0);
    stuck.hang = true;
    const d1 = new WebhookDispatcher(lanes, stuck, ownListener, env.domain, { ...OPTIONS, timeoutMs: 30_000, concurrency: 1 }, { attempt() {} }, quiet, async () => {});
    const live = new FakeWebhooks(0);
    const d2 = dispatcher(live);
    try {
      await d1.start();
      await append([a], 1);
      await waitFor(() => stuck.attempts.length === 1, "the first instance's attempt in flight");
      const first = stuck.attempts[0]!;
      // The claim takes either endpoint (no order): the one the first instance took is the held one.
      const held = hooks.find((h) => h.url === first.url)!;
      const other = hooks.find((h) => h.url !== first.url)!;
      // The second instance starts while the first is alive: it takes the other endpoint (the
      // sentinel: it has claimed since), not the one the first holds.
      await d2.start();
      await waitFor(() => live.attempts.length === 1, "the other endpoint's event at the second instance");
      assert.equal(live.attempts[0]!.url, other.url);
      assert.equal(stuck.attempts.length, 1);
      const owner = await env.db.pool.query<{ lease_owner: string }>("SELECT lease_owner FROM webhook WHERE id = $1", [held.id]);
      assert.notEqual(owner.rows[0]?.lease_owner, null, "the first instance still holds its endpoint");
      // The first instance dies: its connections close (its lease runs for another minute).
      await ownListener.stop();
      const t0 = Date.now();
      await waitFor(() => live.attempts.length === 2, "the held endpoint's event at the second instance", 5_000);
      assert.deepEqual(live.attempts[1], { ...first }, "the same event, the same webhook-id, to the same endpoint");
      assert.ok(Date.now() - t0 < 5_000);
    } finally {
      await d1.stop();
      await d2.stop();
    }
  });

  it("an endpoint a dead instance held with nothing due waits for its next event, without a busy loop, and that event goes to the live one", async () => {
    const a = await env.account("idle-dead");
    await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://idle-dead.test/" });
    const ownListener = new Notifications(env.tdb.url, () => undefined);
    await ownListener.start();
    const first = new FakeWebhooks(0);
    const d1 = new WebhookDispatcher(lanes, first, ownListener, env.domain, { ...OPTIONS, timeoutMs: 30_000 }, { attempt() {} }, quiet, async () => {});
    // The live instance's own lanes, counting how often its timer asks when to look again.
    const counted = new WebhookLanes(env.db.pool);
    let asked = 0;
    const nextWake = counted.nextWake.bind(counted);
    counted.nextWake = (owner, pollMs) => (asked++, nextWake(owner, pollMs));
    const live = new FakeWebhooks(0);
    const d2 = new WebhookDispatcher(counted, live, notifications, env.domain, OPTIONS, { attempt() {} }, quiet, async () => {});
    try {
      await d1.start();
      await append([a], 1);
      await waitFor(() => first.attempts.length === 1, "the first event at the first instance");
      // Delivered and settled; the first instance keeps the endpoint for its next event (idle hold), and dies.
      await ownListener.stop();
      await d2.start();
      const before = asked;
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(asked - before <= 2, `the live instance's timer asked ${asked - before} times in 1.5 s`);
      assert.equal(live.attempts.length, 0, "nothing was due");
      await append([a], 1);
      await waitFor(() => live.attempts.length === 1, "the next event at the live instance");
      assert.equal(first.attempts.length, 1);
    } finally {
      await d1.stop();
      await d2.stop();
    }
  });

  it("a lease of an instance from before liveness locks (its owner names none) is left until it runs out: a rolling upgrade takes nothing", async () => {
    const a = await env.account("oldver");
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    const old = await service.create(a.id, { url: "http://oldver.test/held" });
    await service.create(a.id, { url: "http://oldver.test/other" });
    await env.db.pool.query("UPDATE webhook SET lease_owner = $2, lease_until = now() + interval '1 hour' WHERE id = $1", [old.id, randomUUID()]);
    const live = new FakeWebhooks(0);
    const d = dispatcher(live);
    try {
      await d.start();
      await append([a], 1);
      // The sentinel: the other endpoint's copy of the event came, so this dispatcher claimed since.
      await waitFor(() => live.attempts.length === 1, "the other endpoint's event");
      assert.deepEqual(live.attempts.map((x) => x.url), ["http://oldver.test/other"]);
      // One claim takes every free endpoint with something due: the one that took the other one left this lease as it was.
      const lease = await env.db.pool.query<{ lease_owner: string }>("SELECT lease_owner FROM webhook WHERE id = $1", [old.id]);
      assert.ok(!lease.rows[0]!.lease_owner.startsWith("live:"), `still the old instance's lease (${lease.rows[0]!.lease_owner})`);
      // The old instance's lease runs out: the endpoint is taken then.
      await env.db.pool.query("UPDATE webhook SET lease_until = now() - interval '1 second' WHERE id = $1", [old.id]);
      await append([a], 1);
      await waitFor(() => live.attempts.filter((x) => x.url === "http://oldver.test/held").length === 2, "both events at the endpoint once its lease ran out", 5_000);
    } finally {
      await d.stop();
    }
  });

  it("an idle worker gives its endpoint back after the idle hold although the timer keeps waking it (another instance holds a lease)", async () => {
    const a = await env.account("hold");
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    await service.create(a.id, { url: "http://hold.test/x" });
    const y = await env.account("hold-y");
    await service.create(y.id, { url: "http://hold.test/y" });
    const z = await env.account("hold-z");
    await service.create(z.id, { url: "http://hold.test/z" });
    // The other instance: one slot, taken by y's endpoint, whose request never ends. While it holds
    // that lease, this instance's timer looks every 2 s (is its owner alive?) and wakes its workers.
    const stuck = new FakeWebhooks(0);
    stuck.hang = true;
    const other = dispatcher(stuck, { concurrency: 1 });
    const port = new FakeWebhooks(0);
    // This instance's reads of what is due take 150 ms: a woken worker then starts its next hold
    // after the timer set its next wake, so the timer always comes first (on a loaded machine it may).
    const slow = new WebhookLanes(env.db.pool);
    const due = slow.due.bind(slow);
    slow.due = async (id, limit) => (await new Promise((r) => setTimeout(r, 150)), due(id, limit));
    const d = new WebhookDispatcher(slow, port, notifications, env.domain, { ...OPTIONS, concurrency: 1 }, { attempt() {} }, quiet, async () => {});
    try {
      await other.start();
      await append([y], 1);
      await waitFor(() => stuck.attempts.length === 1, "y's event held at the other instance");
      await d.start();
      // This instance's one slot: x's endpoint, delivered and then held idle.
      await append([a], 1);
      await waitFor(() => port.attempts.length === 1, "x's event");
      // z's event: only this instance has a slot, once x's worker has given its endpoint back.
      await new Promise((r) => setTimeout(r, 3000));
      await append([z], 1);
      await waitFor(() => port.attempts.some((x) => x.url === "http://hold.test/z"), "z's event, x's endpoint given back after its hold", 5_000);
    } finally {
      await d.stop();
      await other.stop();
    }
  });

  it("a retry that falls due while the timer asks when to look next is claimed then, not a sweep later", async () => {
    const a = await env.account("due-meanwhile");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://due-meanwhile.test/" });
    await append([a], 1);
    // This instance's question "when is something next due?" takes 600 ms to answer; event 1 waits
    // for its retry, due 300 ms from now: due by the time the answer is read, which therefore
    // leaves it out (it counts what is due later), so the look that asked must be the one to claim it.
    const slow = new WebhookLanes(env.db.pool);
    const nextWake = slow.nextWake.bind(slow);
    slow.nextWake = async (owner, pollMs) => (await new Promise((r) => setTimeout(r, 600)), nextWake(owner, pollMs));
    const port = new FakeWebhooks(0);
    const d = new WebhookDispatcher(slow, port, notifications, env.domain, OPTIONS, { attempt() {} }, quiet, async () => {});
    try {
      await env.db.pool.query("UPDATE webhook_lane SET attempts = 1, next_attempt_at = now() + interval '300 milliseconds' WHERE webhook_id = $1", [hook.id]);
      // The start is the timer's first look; the next one is SWEEP_MS (10 s) away.
      await d.start();
      await waitFor(() => port.attempts.length === 1, "the retry, claimed by the look it fell due during", 3_000);
      assert.equal(port.attempts[0]!.seq, 1);
    } finally {
      await d.stop();
    }
  });

  it("a replay while an attempt is in flight sends again what that attempt carried", async () => {
    const a = await env.account("inflight");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://inflight.test/" });
    const port = new FakeWebhooks(0);
    port.holdSeq = 3;
    const d = dispatcher(port);
    await d.start();
    // One transaction: the three events are one page, settled at its end (or after 200 ms).
    await env.db.transaction((tx) => appendEvents(tx, [0, 1, 2].map((i) => roster(a, i))));
    try {
      await waitFor(() => port.attempts.length === 3, "the third attempt in flight");
      // Nothing of the page is settled yet: the lane is still at 0, before `since`.
      assert.equal((await env.db.pool.query("SELECT seq FROM webhook_lane WHERE webhook_id = $1", [hook.id])).rows[0]?.seq, 0);
      assert.equal(await store.replay(hook.id, 1, null), 1);
      port.release();
      await waitFor(() => port.attempts.length >= 5, "events 2 and 3 sent again");
      // A sentinel: the next event comes after the replayed ones, with nothing between them.
      await append([a], 1);
      await waitFor(() => port.attempts.length >= 6, "the sentinel");
    } finally {
      await d.stop();
    }
    assert.deepEqual(port.attempts.map((x) => x.seq), [1, 2, 3, 2, 3, 4]);
  });

  it("a worker that stood still past its lease, the endpoint claimed again meanwhile, stops: no second request in flight, its successor's lease kept", async () => {
    const a = await env.account("superseded");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://superseded.test/" });
    const port = new FakeWebhooks(0);
    port.holdSeq = 1;
    const d = dispatcher(port);
    await d.start();
    const lease = async () => (await env.db.pool.query<{ lease_owner: string | null }>("SELECT lease_owner FROM webhook WHERE id = $1", [hook.id])).rows[0]!.lease_owner;
    try {
      await append([a], 3);
      await waitFor(() => port.held === 1, "the first worker's attempt of event 1 in flight");
      const owner = await lease();
      assert.ok(owner, "the endpoint is leased");
      // The first worker stands still (its attempt held) past its lease: the endpoint is claimed
      // again here, and the second worker sends 1 to 3, then holds event 4 in flight.
      await env.db.pool.query("UPDATE webhook SET lease_until = now() - interval '1 second' WHERE id = $1", [hook.id]);
      port.holdSeq = 4;
      d.pump();
      await waitFor(() => port.attempts.length === 4, "events 1 to 3 sent again by the second worker");
      await append([a], 1);
      await waitFor(() => port.held === 2, "the second worker's attempt of event 4 in flight");
      // The first worker goes on: it must stop, neither sending event 4 beside the second worker's
      // attempt nor giving back the lease the second worker holds.
      port.release();
      await new Promise((r) => setTimeout(r, 2_600)); // past the idle hold the first worker would end with
      assert.equal(await lease(), owner, "the second worker's lease is kept");
      port.release();
      // A sentinel: event 5 arrives, once, after event 4.
      await append([a], 1);
      await waitFor(() => port.attempts.some((x) => x.seq === 5), "the sentinel");
    } finally {
      await d.stop();
    }
    assert.deepEqual(port.attempts.map((x) => x.seq), [1, 1, 2, 3, 4, 5]);
    assert.equal(port.maxPerUrl, 2, "two requests in flight only while the first worker stood still");
  });

  it("keeps each attempt of a delivery in its history, oldest first, the last 10, in the row the purge removes", async () => {
    const a = await env.account("history");
    const service = new Webhooks(store, new FakeWebhooks(0), env.domain);
    const done = await service.create(a.id, { url: "http://history.test/done" });
    const waiting = await service.create(a.id, { url: "http://history.test/waiting" });
    // 12 attempts each: `done` fails 11 times (a connection error among them) and then succeeds;
    // `waiting` fails all 12 and waits an hour for the 13th.
    const fails = (n: number) => Array.from({ length: n }, (_, i) => ({ status: i === 5 ? null : 500 + i, ms: 10.4 + i }));
    const port = new PlannedWebhooks(new Map([[done.url, fails(11)], [waiting.url, fails(12)]]));
    const d = dispatcher(port, { retryScheduleMs: [...Array<number>(11).fill(10), 3_600_000], disableAfterMs: 3_600_000 });
    await d.start();
    try {
      await append([a], 1);
      const listed = async (id: string, status: "pending" | "delivered" | "failed" | null) => (await service.deliveries({ admin: true }, id, status, null, 10)).items;
      // `waiting` is pending from its first attempt: its 12th is the one to wait for (a CI run read 11: `done` had finished first).
      await waitFor(async () => (await listed(done.id, "delivered")).length === 1 && (await listed(waiting.id, "pending"))[0]?.attempts === 12, "both deliveries at their 12th attempt", 15_000);
    } finally {
      await d.stop();
    }
    const [delivered] = (await service.deliveries({ admin: true }, done.id, "delivered", null, 10)).items;
    const [pending] = (await service.deliveries({ admin: true }, waiting.id, "pending", null, 10)).items;
    // Attempts 3 to 12 of each, in the order they were made.
    const expected = (last: { status: number | null; ms: number }) =>
      [...fails(11), last].slice(2).map((x) => ({ responseStatus: x.status, error: x.status === null ? "ECONNRESET: other side closed" : null, durationMs: Math.round(x.ms) }));
    for (const [what, item, last] of [
      ["delivered", delivered, { status: 200, ms: 1 }],
      ["pending", pending, fails(12)[11]!],
    ] as const) {
      assert.equal(item?.attempts, 12, what);
      assert.deepEqual(
        item.history.map(({ at: _at, ...x }) => x),
        expected(last),
        `${what}: the last 10 attempts, oldest first`,
      );
      const times = item.history.map((h) => Date.parse(h.at));
      assert.deepEqual(times, [...times].sort((x, y) => x - y), `${what}: in the order made`);
      assert.equal(item.history.at(-1)!.at, item.lastAttemptAt, `${what}: the newest is the last attempt`);
      assert.deepEqual([item.responseStatus, item.error], [item.history.at(-1)!.responseStatus, item.history.at(-1)!.error]);
    }
    // The other filters do not list them.
    assert.deepEqual((await service.deliveries({ admin: true }, done.id, "pending", null, 10)).items, []);
    assert.deepEqual((await service.deliveries({ admin: true }, waiting.id, "delivered", null, 10)).items, []);
    // The history is part of the delivery's row: the purge takes it with it.
    await store.purgeDeliveries(new Date(Date.now() + 60_000));
    const left = await env.db.pool.query("SELECT history FROM webhook_delivery WHERE webhook_id = ANY($1)", [[done.id, waiting.id]]);
    assert.deepEqual(left.rows, []);
  });

  it("settling a move read before a replay: below the replay's since as asked, past it capped there", async () => {
    const a = await env.account("cap");
    const other = await env.account("cap");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://cap.test/" });
    await append([a], 8);
    const owner = "test-owner";
    const [leased] = await lanes.claim(owner, 60_000, 10);
    assert.equal(leased?.id, hook.id);
    const lane = async () => (await env.db.pool.query<{ seq: number; epoch: number; replay_cap: number | null }>("SELECT seq, epoch, replay_cap FROM webhook_lane WHERE webhook_id = $1", [hook.id])).rows[0]!;
    const move = (from: number, to: number, epoch: number) => lanes.settle(hook.id, owner, 60_000, true, { afterMs: 60_000, holdMs: 60_000, now: null }, [{ accountId: a.id, from, to, epoch, attempts: 0, delayMs: 0 }], []);
    const [read] = await lanes.due(hook.id, 10);
    assert.deepEqual([read?.seq, read?.epoch], [0, 0]);

    // Only lanes with events after `since` count (another account's endpoint is not this one's).
    assert.equal(await store.replay(hook.id, 3, null), 1);
    assert.equal(await store.replay(hook.id, 8, other.id), 0);
    assert.deepEqual((await move(0, 2, 0)).moved, [a.id], "below the cap: moved as asked");
    assert.deepEqual((await move(2, 6, 0)).moved, [], "past the cap: not as asked");
    assert.deepEqual(await lane(), { seq: 3, epoch: 1, replay_cap: 3 });
    // A move read in the lane's epoch goes past the old cap and clears it...
    assert.deepEqual((await move(3, 5, 1)).moved, [a.id]);
    assert.deepEqual(await lane(), { seq: 5, epoch: 1, replay_cap: null });
    // ...so the next replay caps at its own since, not at the lowest one ever asked.
    assert.equal(await store.replay(hook.id, 6, null), 1);
    assert.deepEqual((await move(5, 8, 1)).moved, []);
    assert.deepEqual(await lane(), { seq: 6, epoch: 2, replay_cap: 6 });
    // A replay before the lane's position moves it back: a move from the old position is void.
    assert.equal(await store.replay(hook.id, 4, null), 1);
    assert.deepEqual((await move(6, 8, 2)).moved, []);
    assert.deepEqual(await lane(), { seq: 4, epoch: 3, replay_cap: 4 });
    // An event waiting for its retry is tried at once after a replay from before it, afresh.
    const failed = await lanes.settle(hook.id, owner, 60_000, false, { afterMs: 60_000, holdMs: 60_000, now: null }, [{ accountId: a.id, from: 4, to: 4, epoch: 3, attempts: 2, delayMs: 3_600_000 }], []);
    assert.deepEqual(failed.moved, [a.id]);
    assert.deepEqual(await lanes.due(hook.id, 10), [], "waiting for its retry");
    assert.equal(await store.replay(hook.id, 4, null), 1);
    assert.deepEqual(
      (await lanes.due(hook.id, 10)).map((l) => [l.seq, l.attempts, l.epoch]),
      [[4, 0, 4]],
    );
  });

  it("keeps a failure streak while failures come within their hold, the longest any asked for; a failure after a quiet spell starts a new one", async () => {
    const a = await env.account("streak");
    const hook = await new Webhooks(store, new FakeWebhooks(0), env.domain).create(a.id, { url: "http://streak.test/" });
    await append([a], 1);
    const owner = "test-owner";
    assert.equal((await lanes.claim(owner, 60_000, 10))[0]?.id, hook.id);
    // Settles a failed attempt (no lane moves: the streak is the endpoint row's) and reads the row back.
    const fail = async (afterMs: number, holdMs: number) => {
      const s = await lanes.settle(hook.id, owner, 60_000, false, { afterMs, holdMs, now: null }, [], []);
      const { rows } = await env.db.pool.query<{ since: Date | null; hold_s: number | null; disabled_reason: string | null }>(
        "SELECT failing_since AS since, EXTRACT(EPOCH FROM failing_until - now())::float8 AS hold_s, disabled_reason FROM webhook WHERE id = $1",
        [hook.id],
      );
      return { disabled: s.disabled, ...rows[0]! };
    };
    /** As if `ms` had passed since the streak's failures (the row's times moved back). */
    const elapse = (ms: number) =>
      env.db.pool.query("UPDATE webhook SET failing_since = failing_since - $2 * interval '1 millisecond', failing_until = failing_until - $2 * interval '1 millisecond' WHERE id = $1", [hook.id, ms]);

    // A retry an hour away (a Retry-After) holds the streak that long; a failure for good on
    // another lane meanwhile, holding it a minute, does not cut that short.
    const first = await fail(3_600_000, 3_600_000);
    assert.ok(first.since && first.hold_s! > 3590, `held an hour: ${first.hold_s}`);
    const second = await fail(3_600_000, 60_000);
    assert.equal(second.since?.getTime(), first.since.getTime(), "the same streak");
    assert.ok(second.hold_s! > 3590, `still held an hour: ${second.hold_s}`);

    // 59 minutes on (that retry), past a WEBHOOK_DISABLE_AFTER of 30 minutes: within the hold, the
    // streak goes on, and is too long.
    await elapse(59 * 60_000);
    const disabled = await fail(30 * 60_000, 60_000);
    assert.equal(disabled.since?.getTime(), first.since.getTime() - 59 * 60_000, "the same streak");
    assert.equal(disabled.disabled, true);
    assert.equal(disabled.disabled_reason, `every attempt failed since ${disabled.since!.toISOString().slice(0, 19)}Z`);

    // Enabled again, then failing; two hours without an attempt (longer than the hold), then a
    // failure: a new streak, which a WEBHOOK_DISABLE_AFTER of an hour does not disable.
    await store.update(hook.id, { enabled: true });
    await env.db.pool.query("UPDATE webhook SET lease_owner = $2, lease_until = now() + interval '1 minute' WHERE id = $1", [hook.id, owner]);
    const before = await fail(3_600_000, 60_000);
    await elapse(2 * 3_600_000);
    const after = await fail(3_600_000, 60_000);
    assert.equal(after.disabled, false, "a quiet spell ended the streak");
    // The old streak's start is two hours back now; the new one's is after that failure's.
    assert.ok(after.since!.getTime() >= before.since!.getTime(), "a new streak, begun now");
    // failing_until is kept to the millisecond, rounded (TIMESTAMP(3)): a read within half a
    // millisecond of the failure may find a hold that much over the minute.
    assert.ok(after.hold_s! > 50 && after.hold_s! <= 60.0005, `held for this failure's minute: ${after.hold_s}`);
    // A success ends the streak; the next failure starts one.
    await lanes.settle(hook.id, owner, 60_000, true, { afterMs: 1, holdMs: 1, now: null }, [], []);
    assert.deepEqual((await env.db.pool.query("SELECT failing_since, failing_until FROM webhook WHERE id = $1", [hook.id])).rows, [{ failing_since: null, failing_until: null }]);
  });
});
