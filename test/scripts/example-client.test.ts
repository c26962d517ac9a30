// The typed client's example (scripts/example-client.ts, on src/client.ts) run as a user would, as
// a child process against a real gateway and Prosody: Romeo's message reaches Juliet, a real XMPP
// user, and her receipt and reply come back on the stream the example prints, each a documented
// event of its type.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { StreamEvent } from "../../src/client.js";
import { xml, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { checkEvent } from "../helpers/event-schema.js";
import { uniq, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const RUN_TIMEOUT_MS = 60_000;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Starts the example; `done` resolves when it exits (killed after RUN_TIMEOUT_MS). */
function runExample(args: string[], env: Record<string, string>): { done: Promise<Run> } {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/example-client.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, BALCONY_URL: "", BALCONY_TOKEN: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<Run>((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
  return { done };
}

/** The example's "event <id> <type> <data JSON>" lines. */
function printedEvents(out: string): StreamEvent[] {
  return [...out.matchAll(/^event (\d+) (\S+) (.*)$/gm)].map((m) => ({ id: Number(m[1]), event: m[2], data: JSON.parse(m[3]!) }) as StreamEvent);
}

describe("scripts/example-client.ts (typed client)", () => {
  let world: XmppWorld<"juliet"> | undefined;
  let gw: TestGateway;
  let juliet: XmppUser;

  before(async () => {
    world = await startWorld("prosody", { juliet: "balcony" });
    gw = world.gw;
    juliet = world.users.juliet;
  });
  after(() => world?.stop());

  it("sends a message that reaches Juliet, and prints her receipt and reply as typed events", async () => {
    const romeo = uniq("romeo");
    const romeoJid = await gw.createAccount(romeo);
    const text = `But soft! ${uniq("")}`;
    const reply = "Romeo, Romeo! Wherefore art thou Romeo?";
    const run = runExample(["--to", "juliet@localhost", "--body", text, "--receipt", "--max-events", "10", "--timeout", "30"], {
      BALCONY_URL: gw.url,
      BALCONY_TOKEN: gw.token(romeo),
    });

    // Juliet, over XMPP: the message arrives from Romeo asking for a receipt; she sends it, then answers.
    const got = await juliet.waitFor((s) => s.is("message") && s.getChildText("body") === text, 20_000);
    assert.equal(got.attrs.from?.split("/")[0], romeoJid);
    assert.ok(got.getChild("request", "urn:xmpp:receipts"), `a receipt request: ${got.toString()}`);
    await juliet.send(xml("message", { to: got.attrs.from!, id: uniq("r-") }, xml("received", { xmlns: "urn:xmpp:receipts", id: got.attrs.id! })));
    await juliet.send(xml("message", { to: romeoJid, type: "chat", id: uniq("reply-") }, xml("body", {}, reply)));

    const { code, out, err } = await run.done;
    const log = `stdout:\n${out}\nstderr:\n${err}`;
    assert.equal(code, 0, log);
    const sentId = /^sent (\S+) to juliet@localhost: (queued|sent)$/m.exec(out)?.[1];
    assert.equal(sentId, got.attrs.id, `the message Juliet got is the one the example sent\n${log}`);

    const events = printedEvents(out);
    assert.ok(events.length > 0, log);
    for (const e of events) assert.equal(checkEvent(e.event, e.data), null, `event ${e.id} matches the documented ${e.event} event\n${log}`);
    const ids = events.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "event ids increase");

    const answer = events.find((e) => e.event === "message" && e.data.from.startsWith("juliet@localhost/"));
    assert.ok(answer?.event === "message", `Juliet's reply is a message event\n${log}`);
    assert.equal(answer.data.body, reply);
    assert.equal(answer.data.to.split("/")[0], romeoJid);
    assert.equal(answer.data.type, "chat");
    const receipt = events.find((e) => e.event === "receipt" && e.data.id === sentId);
    assert.ok(receipt?.event === "receipt", `the receipt for ${sentId}\n${log}`);
    assert.equal(receipt.data.from.split("/")[0], "juliet@localhost");
    assert.match(out, new RegExp(`^  ${answer.data.from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} says: ${reply.replace(/[?!]/g, "\\$&")}$`, "m"));
    assert.match(out, /^done: juliet@localhost replied and the receipt arrived$/m);
  });

  it("prints its usage with --help, and refuses to run without a token", async () => {
    const help = await runExample(["--help"], {}).done;
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /^usage: node --import tsx scripts\/example-client\.ts --to <jid>/);
    assert.match(help.out, /BALCONY_URL/);
    assert.match(help.out, /BALCONY_TOKEN/);
    const noToken = await runExample(["--to", "juliet@localhost"], { BALCONY_URL: gw.url }).done;
    assert.equal(noToken.code, 2, noToken.out);
    assert.match(noToken.err, /BALCONY_TOKEN is not set/);
  });
});
