/**
 * The harness's ports (scripts/harness/ports.ts), across real processes: a port handed out to one
 * test file's process is not handed to another's while it lives (the kernel alone would: it only
 * knows the port is free until the server it is for binds it), and a process that answers on a
 * port is told apart from the one whose port it is.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { freePort, freePorts, listensOn, releasePort, reservePort } from "../../scripts/harness/ports.js";

/**
 * Another process running ports.ts: it reads commands on stdin ("reserve P", "listen P") and
 * answers each with one line.
 */
const PEER = `
import { reservePort } from "./scripts/harness/ports.ts";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.split(" ");
  if (cmd === "reserve") console.log(String(reservePort(Number(arg))));
  else if (cmd === "listen") createServer().listen(Number(arg), "127.0.0.1", () => console.log("listening"));
}
`;

interface Peer {
  child: ChildProcess;
  ask(line: string): Promise<string>;
}

const peers: ChildProcess[] = [];

async function startPeer(): Promise<Peer> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", PEER], { stdio: ["pipe", "pipe", "inherit"] });
  peers.push(child);
  let buffered = "";
  const waiting: ((line: string) => void)[] = [];
  child.stdout!.on("data", (d: Buffer) => {
    buffered += d.toString();
    for (let i; (i = buffered.indexOf("\n")) >= 0; ) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  return {
    child,
    ask: (line) =>
      new Promise((resolve, reject) => {
        waiting.push(resolve);
        child.once("exit", (code) => reject(new Error(`peer exited (${code}) before answering "${line}"`)));
        child.stdin!.write(`${line}\n`);
      }),
  };
}

async function ended(peer: Peer, how: "exit" | "SIGKILL"): Promise<void> {
  const exited = once(peer.child, "exit");
  if (how === "exit") peer.child.stdin!.end();
  else peer.child.kill("SIGKILL");
  await exited;
}

describe("the harness's ports", () => {
  after(() => {
    for (const c of peers) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });

  it("ports handed out here cannot be reserved by another process while this one lives", async () => {
    const ports = [...(await freePorts(3)), await freePort()];
    assert.equal(new Set(ports).size, 4, `distinct: ${ports.join(", ")}`);
    const peer = await startPeer();
    for (const p of ports) assert.equal(await peer.ask(`reserve ${p}`), "false", `port ${p} is this process's`);
    // The control: a port this process gives back is the peer's for the asking.
    releasePort(ports[0]!);
    assert.equal(await peer.ask(`reserve ${ports[0]}`), "true");
    assert.equal(reservePort(ports[0]!), false, "now the peer's");
    await ended(peer, "exit");
  });

  it("a reservation goes with its process: at exit, and when it is killed", async () => {
    for (const how of ["exit", "SIGKILL"] as const) {
      const port = await freePort();
      releasePort(port);
      const peer = await startPeer();
      assert.equal(await peer.ask(`reserve ${port}`), "true");
      assert.equal(reservePort(port), false, `the live peer holds ${port}`);
      await ended(peer, how);
      assert.equal(reservePort(port), true, `${port} is free again after the peer's ${how}`);
    }
  });

  it("listensOn tells the process listening on a port (or its launcher) from another", async () => {
    const [port] = await freePorts(1);
    const [listener, other] = [await startPeer(), await startPeer()];
    assert.equal(await listener.ask(`listen ${port}`), "listening");
    assert.equal(listensOn(listener.child.pid!, port!), true, "the peer that listens there");
    assert.equal(listensOn(other.child.pid!, port!), false, "another process answering nothing there");
    // A server started through a launcher (tsx's CLI) runs in a child of the process started.
    assert.equal(listensOn(process.pid, port!), true, "this process, the listener's parent");
    await ended(listener, "SIGKILL");
    assert.equal(listensOn(process.pid, port!), false, "nothing listens there any more");
    await ended(other, "exit");
  });
});
