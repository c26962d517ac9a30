// What wakes the link holder's drain (src/services/delivery.ts), wired as src/gateway.ts wires it:
// a transaction that records stanzas kicks the drain at its commit, so the holder ignores the
// outbox NOTIFY that names it and drains once; a NOTIFY from elsewhere still wakes it. The drain's
// last pass reads the queue only when one of this instance's inserts waited for it.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CHANNELS, Notifications } from "../../src/db/notify.js";
import { presence } from "../../src/domain/stanza.js";
import { setTimeout as sleep } from "node:timers/promises";
import { setup, teardown, waitFor, type Env } from "./setup.js";

/** Long enough for an empty drain step (a few ms) that a wrong wake-up would start. */
const SETTLE_MS = 300;

describe("the drain's wake-ups", () => {
  let env: Env;
  let notifications: Notifications;
  const heard: (string | null)[] = [];

  before(async () => {
    env = await setup();
    notifications = new Notifications(env.tdb.url, (m, err) => env.log.warn({ err: String(err ?? "") }, m));
    await notifications.start();
    notifications.on(CHANNELS.outbox, (origin) => env.delivery.woken(origin));
    notifications.on(CHANNELS.outbox, (payload) => void heard.push(payload));
  });
  after(async () => {
    await notifications?.stop();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  it("a recording on the holder is one drain step: its own NOTIFY wakes nothing, and no last pass reads the queue; a NOTIFY from elsewhere drains", async () => {
    const a = await env.account("romeo");
    const steps = () => env.delivery.stats.drainSteps;
    await sleep(SETTLE_MS);
    const start = steps();
    const probe = presence(a.jid, "juliet@example.net", "probe");
    await env.delivery.transaction((tx, send) => send(a.id, [probe]));
    await waitFor(() => env.out.sent.length === 1, "the probe on the link");
    await waitFor(() => heard.includes(env.delivery.origin), "the recording's own NOTIFY");
    await sleep(SETTLE_MS);
    assert.equal(steps() - start, 1, "one step: the claim that sent the probe");

    // The sentinel: another instance's recording (its NOTIFY names it) wakes a drain step here.
    await env.db.pool.query("SELECT pg_notify($1, 'another-instance')", [CHANNELS.outbox]);
    await waitFor(() => steps() - start === 2, "a drain step for the other instance's NOTIFY");
    await sleep(SETTLE_MS);
    assert.equal(steps() - start, 2);
    assert.deepEqual(env.out.sent, [probe]);
  });
});
