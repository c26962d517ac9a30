// The stream cap in Redis (src/db/redis-slots.ts) when an instance dies: a real redis-server, and
// the dying instance a real process holding an account's places, SIGKILLed. Its places are free
// again within the liveness key's lifetime (LIVE_MS), not after its streams' slots run out (a few
// heartbeats: 45 s by default), so a client whose instance died can reconnect elsewhere at once.
// While the process lives, its places are kept.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { Redis } from "ioredis";
import { startRedis, type RedisServer } from "../../scripts/harness/redis.js";
import { LIVE_MS, RedisStreamSlots } from "../../src/db/redis-slots.js";

const ACCOUNT = 7;
const SLOT_TTL_MS = 45_000;

/** A process that takes `n` places of ACCOUNT (max 2), says "held", and waits to be killed. */
function holder(url: string, n: number) {
  const code = `
    import { Redis } from "ioredis";
    import { RedisStreamSlots } from "./src/db/redis-slots.ts";
    const slots = new RedisStreamSlots(new Redis(${JSON.stringify(url)}), 2, ${SLOT_TTL_MS}, () => {});
    for (let i = 0; i < ${n}; i++) await slots.acquire(${ACCOUNT});
    process.stdout.write("held\\n");
    setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
}

describe("stream places in Redis after an instance dies", () => {
  let redis: RedisServer;
  let client: Redis;
  let slots: RedisStreamSlots;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    slots = new RedisStreamSlots(client, 2, SLOT_TTL_MS, () => {});
  });
  after(async () => {
    await slots?.close();
    client?.disconnect();
    await redis?.stop();
  });

  it("a SIGKILLed instance's places are free within LIVE_MS; a live one's are kept", async () => {
    const child = holder(redis.url, 2);
    const [line] = (await once(child.stdout!, "data")) as [Buffer];
    assert.equal(line.toString().trim(), "held");
    // Alive: the account is full, whichever instance asks, for longer than a liveness key lives.
    const refusedUntil = Date.now() + LIVE_MS + 1000;
    while (Date.now() < refusedUntil) {
      await assert.rejects(slots.acquire(ACCOUNT), (err: Error & { code?: string }) => err.code === "too-many-streams");
      await new Promise((r) => setTimeout(r, 250));
    }
    child.kill("SIGKILL");
    await once(child, "exit");
    const killed = Date.now();
    let slot = null;
    while (!slot && Date.now() - killed < SLOT_TTL_MS / 3) {
      slot = await slots.acquire(ACCOUNT).catch(() => null);
      if (!slot) await new Promise((r) => setTimeout(r, 100));
    }
    const after = Date.now() - killed;
    assert.ok(slot, "a place came free");
    assert.ok(after <= LIVE_MS + 1500, `free ${after} ms after the kill`);
    // Both of the dead instance's places: a second stream fits too, and a third does not.
    assert.ok(await slots.acquire(ACCOUNT));
    await assert.rejects(slots.acquire(ACCOUNT), (err: Error & { code?: string }) => err.code === "too-many-streams");
  });
});
