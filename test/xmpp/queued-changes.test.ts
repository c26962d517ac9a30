// Changes to a message that is still queued when the account makes them (README "Changing a message
// that is still queued"), end to end on Prosody and ejabberd with Juliet, a real XMPP user,
// receiving: a retraction (XEP-0424) withdraws a message not written yet, so neither it nor the
// retraction goes out and it ends `failed` with its tombstone; a correction (XEP-0308) is folded
// into the message, which goes out once with its latest text; reactions (XEP-0444) follow the
// message, or go with it when it is withdrawn. One already written gets its retraction after it,
// whichever of the drain and the retraction comes first.
//
// The link is taken down in-process (XmppLink.stop(): the socket closes and the gateway stays the
// holder; a long XMPP_LINK_DOWN_GRACE keeps it from handing the lease over) and brought back with
// start(). A message is held written but unconfirmed by freezing the XMPP server (SIGSTOP, then
// SIGCONT): the gateway's barrier cannot come back meanwhile. "Nothing else went out" is proven by
// a sentinel message the account sends after the link is back (outbound stanzas go out in sequence
// order): once it arrived, anything before it did.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { XmlElement, XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver } from "../helpers/account-driver.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { isFrom, receivedFrom } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const NS = { correct: "urn:xmpp:message-correct:0", reactions: "urn:xmpp:reactions:0", retract: "urn:xmpp:message-retract:1" };
const WITHDRAWN = { type: "cancel", condition: "undefined-condition" };

/** A message stanza as a short name: "message:<id>" or "<control element>:<id it refers to>". */
function kindOf(s: XmlElement): string {
  const control = [NS.correct, NS.reactions, NS.retract]
    .map((ns) => s.children.find((c): c is XmlElement => typeof c !== "string" && c.attrs.xmlns === ns))
    .find((c) => c !== undefined);
  return control ? `${control.name}:${control.attrs.id}` : `message:${s.attrs.id}`;
}

for (const kind of KINDS) {
  describe(`changes to queued messages (${kind})`, () => {
    let world: XmppWorld<"juliet"> | undefined;
    let gw: TestGateway;
    let juliet: XmppUser;

    before(async () => {
      world = await startWorld(kind, { juliet: "balcony" }, { env: { XMPP_LINK_DOWN_GRACE: "300s" } });
      gw = world.gw;
      juliet = world.users.juliet;
    });
    after(() => world?.stop());

    const account = () => accountDriver(gw, { waitMs: WAIT });
    const readyz = async () => (await gw.request("GET", "/readyz", { token: null })).status;

    async function linkDown(): Promise<void> {
      await gw.running.link.stop();
      await waitFor(async () => (await readyz()) === 503, WAIT, "the link down");
    }
    async function linkUp(): Promise<void> {
      await gw.running.link.start();
      await waitFor(async () => (await readyz()) === 200, WAIT, "the link back");
    }
    /** The account sends a plain message to Juliet; resolves once she has it, with the end index to check up to. */
    async function sentinel(r: AccountDriver): Promise<{ id: string; end: number }> {
      const id = await r.send({ to: JULIET, body: uniq("account sentinel ") });
      const s = await juliet.waitFor((x) => x.is("message") && x.attrs.id === id && isFrom(x, r.jid), WAIT);
      return { id, end: juliet.stanzas.indexOf(s) + 1 };
    }
    /** The message stanzas Juliet received from the account in [mark, end). */
    const got = (r: AccountDriver, mark: number, end: number) => receivedFrom(juliet, r.jid, mark, end).filter((s) => s.is("message"));
    const wire = (stanzas: XmlElement[]) => stanzas.map((s) => s.toString()).join("\n");
    /** Its status once the drain is done with it (`queued` until then). */
    async function settledStatus(r: AccountDriver, id: string): Promise<string> {
      let status = "queued";
      await waitFor(async () => (status = (await r.view(id)).status) !== "queued", WAIT, `${id} no longer queued`);
      return status;
    }
    /** Asserts that the message was withdrawn: the tombstone, `failed` with the withdrawal error, and the events saying so in order. */
    async function assertWithdrawn(r: AccountDriver, id: string): Promise<void> {
      assert.equal(await settledStatus(r, id), "failed");
      const v = await r.view(id);
      assert.equal(v.body, null, "the tombstone has no body");
      assert.ok(v.retracted, "still retracted");
      assert.deepEqual({ type: (v.error as typeof WITHDRAWN).type, condition: (v.error as typeof WITHDRAWN).condition }, WITHDRAWN, JSON.stringify(v.error));
      const status = await r.until(`the message-status of ${id}`, (e) => e.event === "message-status" && e.data.id === id);
      assert.deepEqual([status.data.status, (status.data.error as typeof WITHDRAWN).condition], ["failed", WITHDRAWN.condition]);
      const evs = (await r.events()).filter((e) => e.data.id === id && (e.event === "message-update" || e.event === "message-status"));
      assert.deepEqual(evs.map((e) => e.event), [...evs.slice(1).map(() => "message-update"), "message-status"], "the message's updates, then its failure");
      const last = evs.at(-2)?.data;
      assert.deepEqual([last?.status, typeof last?.retracted], ["queued", "string"], "the last update is the retraction's: a tombstone, still queued");
    }

    it("a message retracted while queued never goes out, nor its retraction; the messages around it do; it keeps its tombstone and ends failed", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      await linkDown();
      const first = await r.send({ to: JULIET, body: "before the secret" });
      const secret = await r.send({ to: JULIET, body: "the secret" });
      const last = await r.send({ to: JULIET, body: "behind the secret" });
      const res = await r.call("DELETE", `/v1/messages/${secret}`);
      assert.equal(res.status, 204, res.text);
      const tomb = await r.view(secret);
      assert.deepEqual([tomb.body, tomb.status, typeof tomb.retracted], [null, "queued", "string"], "a tombstone, still queued while the link is down");
      await linkUp();
      const s = await sentinel(r);
      const stanzas = got(r, mark, s.end);
      assert.deepEqual(stanzas.map(kindOf), [`message:${first}`, `message:${last}`, `message:${s.id}`], wire(stanzas));
      assert.ok(stanzas.every((x) => (x.getChildText("body") ?? "") !== ""), `no empty message: ${wire(stanzas)}`);
      assert.ok(!wire(juliet.stanzas).includes(">the secret<"), "the retracted text never reached Juliet");
      await assertWithdrawn(r, secret);
      assert.equal(await settledStatus(r, first), "sent");
      assert.equal(await settledStatus(r, last), "sent");
    });

    it("a message corrected while queued goes out once, with its latest text, and no correction after it; a reaction recorded meanwhile follows it", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      await linkDown();
      const original = await r.send({ to: JULIET, body: "I love thee" });
      for (const body of ["I love thee more", "I love thee most"]) {
        const fix = await r.call("POST", "/v1/messages", { to: JULIET, body, replace: original });
        assert.equal(fix.status, 202, fix.text);
        assert.deepEqual([fix.body.id, fix.body.status], [original, "queued"]);
      }
      const reacted = await r.call("POST", `/v1/messages/${original}/reactions`, { emojis: ["😍"] });
      assert.equal(reacted.status, 200, reacted.text);
      await linkUp();
      const s = await sentinel(r);
      const stanzas = got(r, mark, s.end);
      assert.deepEqual(stanzas.map(kindOf), [`message:${original}`, `reactions:${original}`, `message:${s.id}`], wire(stanzas));
      assert.equal(stanzas[0]!.getChildText("body"), "I love thee most", wire(stanzas));
      assert.equal(await settledStatus(r, original), "sent");
      const v = await r.view(original);
      assert.deepEqual([v.body, typeof v.edited, v.reactions], ["I love thee most", "string", { "😍": [r.jid] }]);
    });

    it("a correction accepted while queued, of a message that then bounced, answers as it did when sent again under its Idempotency-Key; a new correction is 409 message-failed", async () => {
      const r = await account();
      const nobody = `${uniq("nobody-")}@localhost`;
      const key = uniq("fix-before-bounce-");
      const correct = (body: string, headers: Record<string, string> = {}) => gw.request("POST", "/v1/messages", { token: r.token, body: { to: nobody, body, replace: id }, headers });
      await linkDown();
      const id = await r.send({ to: nobody, body: "hello?" });
      const first = await correct("hello, anyone?", { "idempotency-key": key });
      assert.equal(first.status, 202, first.text);
      await linkUp();
      // No such user: the server bounces it (RFC 6121 §8.5.2.2.1), and it fails.
      await waitFor(async () => (await r.view(id)).status === "failed", WAIT, `${id} failed`);
      const again = await correct("hello, anyone?", { "idempotency-key": key });
      assert.deepEqual([again.status, again.body, again.headers.get("idempotent-replayed")], [202, first.body, "true"], again.text);
      const fresh = await correct("is anyone there?");
      assert.deepEqual([fresh.status, fresh.body.code], [409, "message-failed"], fresh.text);
      assert.equal((await r.view(id)).body, "hello, anyone?", "the text the accepted correction gave it");
    });

    it("a message corrected, reacted to and then retracted while queued: nothing about it goes out, not even the corrected text", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      await linkDown();
      const m = await r.send({ to: JULIET, body: "a first thought" });
      const fix = await r.call("POST", "/v1/messages", { to: JULIET, body: "a second thought", replace: m });
      assert.equal(fix.status, 202, fix.text);
      assert.equal((await r.call("POST", `/v1/messages/${m}/reactions`, { emojis: ["👍"] })).status, 200);
      assert.equal((await r.call("DELETE", `/v1/messages/${m}`)).status, 204);
      await linkUp();
      const s = await sentinel(r);
      const stanzas = got(r, mark, s.end);
      assert.deepEqual(stanzas.map(kindOf), [`message:${s.id}`], wire(stanzas));
      assert.ok(!wire(juliet.stanzas).includes("thought"), "neither text reached Juliet");
      await assertWithdrawn(r, m);
      assert.deepEqual((await r.view(m)).reactions, {}, "the tombstone has no reactions");
    });

    /** Freezes the XMPP server (SIGSTOP; SIGCONT to thaw): what the gateway writes waits in its socket, and no barrier comes back. */
    function signalServer(signal: "SIGSTOP" | "SIGCONT"): void {
      const pid = Number(readFileSync(join(world!.server.workDir, `${kind}.pid`), "utf8").trim());
      assert.ok(pid > 0, `the ${kind} pid file names a process`);
      process.kill(pid, signal);
    }
    /** Message stanzas this gateway wrote to the link so far (its own metric). */
    async function written(): Promise<number> {
      const text = (await gw.request("GET", "/metrics", { token: null })).text;
      return Number(/^balcony_messages_written_total (\d+)/m.exec(text)?.[1] ?? "NaN");
    }

    /** Freezes the server (SIGSTOP: the caller sends SIGCONT), posts `body` and waits until it is written to the link; its id. */
    async function writtenToFrozenServer(r: Awaited<ReturnType<typeof account>>, body: string): Promise<string> {
      const before = await written();
      signalServer("SIGSTOP");
      const id = await r.send({ to: JULIET, body });
      await waitFor(async () => (await written()) > before, WAIT, "the message written to the link");
      return id;
    }

    it("a message written to the link but not yet confirmed when it is retracted goes out with its text, then its retraction; it reads sent", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      let id = "";
      try {
        // Written at once (the direct path) or claimed by the drain: either way on the socket before
        // the retraction, with no "sent" record yet (the server, frozen, confirms nothing).
        id = await writtenToFrozenServer(r, "written, not yet confirmed");
        assert.equal((await r.call("DELETE", `/v1/messages/${id}`)).status, 204);
        const tomb = await r.view(id);
        assert.deepEqual([tomb.status, typeof tomb.retracted], ["queued", "string"], "not recorded as sent yet");
      } finally {
        signalServer("SIGCONT");
      }
      const s = await sentinel(r);
      const stanzas = got(r, mark, s.end);
      assert.deepEqual(stanzas.map(kindOf), [`message:${id}`, `retract:${id}`, `message:${s.id}`], wire(stanzas));
      assert.equal(stanzas[0]!.getChildText("body"), "written, not yet confirmed", wire(stanzas));
      assert.equal(await settledStatus(r, id), "sent");
    });

    it("a message written just before the link dropped (never confirmed), then retracted in the outage: its retraction still goes out; it reads sent", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      let id = "";
      try {
        id = await writtenToFrozenServer(r, "maybe delivered");
        // The barrier behind it fails as the link goes: the gateway cannot know whether the server routed it.
        await gw.running.link.stop();
      } finally {
        signalServer("SIGCONT");
      }
      await waitFor(() => gw.running.link.xmpp.status === "offline", WAIT, "the link closed");
      assert.equal((await r.call("DELETE", `/v1/messages/${id}`)).status, 204);
      await linkUp();
      const s = await sentinel(r);
      const kinds = got(r, mark, s.end).map(kindOf);
      // The server had the message in its socket when the link closed: Juliet may have it or not.
      // Either way the retraction reaches her, after the message if she got it, and nothing else.
      assert.deepEqual(kinds.filter((k) => k !== `message:${id}`), [`retract:${id}`, `message:${s.id}`], kinds.join(" "));
      assert.ok(kinds.indexOf(`message:${id}`) < kinds.indexOf(`retract:${id}`), kinds.join(" "));
      const copies = got(r, mark, s.end).filter((x) => kindOf(x) === `message:${id}`);
      assert.ok(copies.every((x) => x.getChildText("body") === "maybe delivered"), `never an empty copy: ${wire(copies)}`);
      console.log(`[queued-changes ${kind}] unconfirmed then retracted: the message reached Juliet ${copies.length} time(s)`);
      assert.equal(await settledStatus(r, id), "sent");
    });

    /**
     * For each message: either it went out (once, with its text) and then its retraction, and it
     * reads `sent`; or neither went out and it reads `failed`, withdrawn. Never an empty message,
     * never one without its retraction, never a retraction of a message Juliet did not get.
     */
    async function assertEachSentThenRetractedOrWithdrawn(r: AccountDriver, posted: { id: string; body: string }[], mark: number): Promise<{ sent: number; withdrawn: number }> {
      const s = await sentinel(r);
      const stanzas = got(r, mark, s.end);
      const count = { sent: 0, withdrawn: 0 };
      for (const p of posted) {
        const originals = stanzas.filter((x) => kindOf(x) === `message:${p.id}`);
        const retractions = stanzas.filter((x) => kindOf(x) === `retract:${p.id}`);
        const status = await settledStatus(r, p.id);
        if (originals.length === 0) {
          assert.equal(retractions.length, 0, `no retraction of ${p.body}, which never went out: ${wire(stanzas)}`);
          assert.equal(status, "failed", `${p.body} never went out: withdrawn`);
          count.withdrawn++;
          continue;
        }
        assert.deepEqual(originals.map((x) => x.getChildText("body")), [p.body], `${p.body} went out once, with its text: ${wire(stanzas)}`);
        assert.equal(retractions.length, 1, `${p.body} went out: its retraction follows: ${wire(stanzas)}`);
        assert.ok(stanzas.indexOf(retractions[0]!) > stanzas.indexOf(originals[0]!), `the retraction after the message: ${wire(stanzas)}`);
        assert.equal(status, "sent", `${p.body} went out`);
        count.sent++;
      }
      const ours = new Set(posted.flatMap((p) => [`message:${p.id}`, `retract:${p.id}`]).concat(`message:${s.id}`));
      assert.deepEqual(stanzas.map(kindOf).filter((k) => !ours.has(k)), [], "nothing else went out");
      return count;
    }

    it("retracted right after it was accepted, with the link up: sent then retracted, or withdrawn, never an empty message", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      const posted: { id: string; body: string }[] = [];
      for (let i = 0; i < 20; i++) {
        const body = `quick ${i}`;
        const id = await r.send({ to: JULIET, body });
        assert.equal((await r.call("DELETE", `/v1/messages/${id}`)).status, 204);
        posted.push({ id, body });
      }
      const count = await assertEachSentThenRetractedOrWithdrawn(r, posted, mark);
      console.log(`[queued-changes ${kind}] link up: ${count.sent} sent then retracted, ${count.withdrawn} withdrawn`);
    });

    it("retracted while the link comes back and the drain sends the queue: each sent then retracted, or withdrawn, never an empty message", async () => {
      const r = await account();
      const mark = juliet.stanzas.length;
      await linkDown();
      const posted: { id: string; body: string }[] = [];
      for (let i = 0; i < 40; i++) {
        const body = `racing ${i}`;
        posted.push({ id: await r.send({ to: JULIET, body }), body });
      }
      // A quarter retracted before the link returns (withdrawn for sure); the others all at once
      // as it returns, racing the drain that starts as soon as it is up.
      for (const p of posted.slice(0, 10)) assert.equal((await r.call("DELETE", `/v1/messages/${p.id}`)).status, 204);
      const up = gw.running.link.start();
      const racing = await Promise.all(posted.slice(10).map((p) => r.call("DELETE", `/v1/messages/${p.id}`)));
      assert.deepEqual(racing.map((x) => x.status), racing.map(() => 204));
      await up;
      await waitFor(async () => (await readyz()) === 200, WAIT, "the link back");
      const count = await assertEachSentThenRetractedOrWithdrawn(r, posted, mark);
      console.log(`[queued-changes ${kind}] link coming back: ${count.sent} sent then retracted, ${count.withdrawn} withdrawn`);
    });
  });
}
