// Turns on the event loop (src/http/loop-turns.ts): callers go one per turn, in the order they
// came, and I/O that is ready runs between two of them, not after all of them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";
import { takeTurn } from "../../src/http/loop-turns.js";

/** A connected pair of TCP sockets on the loopback interface. */
async function socketPair(): Promise<{ client: Socket; served: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = connect((server.address() as { port: number }).port, "127.0.0.1");
  await once(client, "connect");
  const [served] = await accepted;
  return { client, served, close: () => (client.destroy(), served.destroy(), server.close()) };
}

describe("loop turns", () => {
  it("let I/O that is ready run between two callers", async () => {
    const { client, served, close } = await socketPair();
    try {
      const order: string[] = [];
      const read = once(served, "data").then(() => order.push("data"));
      // On the loopback the bytes are in the peer's receive buffer once write returns: the next poll delivers them.
      client.write("x");
      const first = takeTurn().then(() => order.push("first"));
      const second = takeTurn().then(() => order.push("second"));
      await Promise.all([first, second, read]);
      assert.deepEqual(order, ["first", "data", "second"]);
    } finally {
      close();
    }
  });

  it("serve callers in the order they came, each on a turn of its own", async () => {
    // A ticker that counts the loop's turns: an immediate that queues itself runs once a turn.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: { caller: number; turn: number }[] = [];
    await Promise.all([0, 1, 2, 3, 4].map((caller) => takeTurn().then(() => seen.push({ caller, turn }))));
    ticking = false;
    assert.deepEqual(seen.map((s) => s.caller), [0, 1, 2, 3, 4]);
    const turns = seen.map((s) => s.turn);
    assert.equal(new Set(turns).size, 5, `one caller a turn: ${turns.join(", ")}`);
  });

  it("serve a caller who comes after the queue ran empty", async () => {
    await takeTurn();
    const late = await Promise.race([takeTurn().then(() => "served"), new Promise((r) => setTimeout(r, 1000, "stuck"))]);
    assert.equal(late, "served");
  });
});
