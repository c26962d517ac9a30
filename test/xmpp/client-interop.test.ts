// Interop with an independent XMPP client: slixmpp 1.8.3 (Debian's python3-slixmpp, run by
// /usr/bin/python3 through scripts/harness/slixmpp-client.py) logged in as Juliet on Prosody and
// ejabberd. A conversation with message features (API.md "Message features (1.1)") must look the
// same to slixmpp's plugins as to Balcony's REST views, in both directions:
// - Balcony → client: what xep_0308, xep_0444, xep_0461, xep_0066, xep_0333, xep_0359 (and, where
//   slixmpp 1.8.3 has no plugin for the version Balcony speaks, the raw element) parsed of the
//   account's stanzas names the same messages, bodies, emojis, reply targets and URLs as the views.
// - Client → Balcony: what the plugins built (send_reactions, send_reply, send_marker, the replace
//   and oob stanza plugins, send_retraction) changes the stored messages and appears in the
//   message-update events the way the client meant it.
//
// Known version skew, asserted so that a change on either side shows: slixmpp 1.8.3 speaks
// XEP-0424 in its old form (<apply-to xmlns="urn:xmpp:fasten:0"><retract
// xmlns="urn:xmpp:message-retract:0"/></apply-to>) while Balcony sends v0.4
// (<retract xmlns="urn:xmpp:message-retract:1" id/>): Balcony takes both forms in, but slixmpp does
// not recognise v0.4, so its users see the XEP-0428 fallback body. slixmpp's xep_0461 strips reply quotes marked in
// the protoXEP namespace urn:xmpp:feature-fallback:0, not XEP-0428's urn:xmpp:fallback:0 that
// Balcony uses, so its helper cannot strip Balcony's quote (the ranges are checked here instead).
//
// "Nothing else" is proven by sentinels: a plain message the account sends after everything (the
// client has received all before it once it has that one), and a plain message the client sends
// after everything (Balcony has handled all before it once its event is in the log).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { startXmppServer, type XmppServer } from "../../scripts/harness/xmpp-server.js";
import { accountDriver, type AccountDriver, type Ev } from "../helpers/account-driver.js";
import { startTestGateway, uniq, type TestGateway } from "../helpers/gateway.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const PYTHON = "/usr/bin/python3"; // Debian's interpreter, which has python3-slixmpp (not pyenv's python3)
const DRIVER = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "harness", "slixmpp-client.py");
const NS = {
  reply: "urn:xmpp:reply:0",
  retract1: "urn:xmpp:message-retract:1",
};
/** slixmpp 1.8.3's xep_0424 DEFAULT_FALLBACK: the body of its (v0) retraction. */
const SLIX_RETRACT_FALLBACK = "This person attempted to retract a previous message, but your client does not support it.";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A message stanza as scripts/harness/slixmpp-client.py reports what slixmpp's plugins parsed. */
interface SlixMessage {
  type: "message";
  id: string | null;
  from: string;
  to: string;
  mtype: string;
  body: string | null;
  /** The plugin events slixmpp raised for the stanza (message_correction, reactions, message_reply, message_retract, marker_*). */
  events: string[];
  originId: string | null;
  replace: string | null;
  reactions: { id: string; values: string[]; set: string[] } | null;
  reply: { id: string; to: string } | null;
  featureFallbackStripped: string | null;
  fallback: boolean;
  fallbacks: { for: string | null; bodies: { start: string | null; end: string | null }[] }[];
  retract: { id: string } | null;
  retract1: { id: string | null } | null;
  oob: { url: string; desc: string | null } | null;
  oobCount: number;
  markable: boolean;
  markers: Record<string, string>;
  store: boolean;
  xml: string;
}
interface Done {
  type: "done";
  ref: number;
  op: string;
  id: string;
  xml: string;
}
type Line = { type: string; ref?: number; error?: string } & Record<string, unknown>;

const bare = (jid: string) => jid.split("/")[0]!;
const assertIso = (v: unknown, what: string) => assert.ok(typeof v === "string" && ISO.test(v) && !Number.isNaN(Date.parse(v)), `${what}: an ISO time, got ${JSON.stringify(v)}`);
/** Reactions with each list of JIDs sorted, keys in order (neither order is part of the contract). */
const sortedReactions = (r: unknown) =>
  Object.fromEntries(
    Object.entries((r ?? {}) as Record<string, string[]>)
      .map(([k, v]) => [k, [...v].sort()] as const)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
/** What a message stanza the client received is: "message:<id>" or "<feature>:<id it refers to>". */
function kindOf(m: SlixMessage): string {
  if (m.replace) return `replace:${m.replace}`;
  if (m.reactions) return `reactions:${m.reactions.id}`;
  if (m.retract1) return `retract1:${m.retract1.id}`;
  if (m.retract) return `retract0:${m.retract.id}`;
  const marker = Object.entries(m.markers)[0];
  if (marker) return `${marker[0]}:${marker[1]}`;
  return `message:${m.id}`;
}

/** The slixmpp driver as a child process: JSON commands in, JSON lines out. */
class Slix {
  jid = "";
  readonly lines: Line[] = [];
  #child: ChildProcessWithoutNullStreams;
  #stderr = "";
  #exited = false;
  #wake = new Set<() => void>();
  #ref = 0;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    createInterface({ input: child.stdout }).on("line", (l) => {
      try {
        this.lines.push(JSON.parse(l) as Line);
      } catch {
        this.lines.push({ type: "unparsable", error: l });
      }
      this.#notify();
    });
    child.stderr.on("data", (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
    child.on("exit", () => {
      this.#exited = true;
      this.#notify();
    });
  }

  static async start(server: XmppServer, user: string, password: string, resource: string): Promise<Slix> {
    const config = { jid: `${user}@${server.userDomain}/${resource}`, password, host: server.host, port: server.c2sPort };
    const slix = new Slix(spawn(PYTHON, [DRIVER, JSON.stringify(config)], { stdio: ["pipe", "pipe", "pipe"] }));
    const ready = await slix.waitLine((l) => l.type === "ready", 15_000, "the driver's ready line");
    slix.jid = String(ready.jid);
    return slix;
  }

  /** Every message stanza received so far, in order. */
  get messages(): SlixMessage[] {
    return this.lines.filter((l) => l.type === "message") as unknown as SlixMessage[];
  }

  /** The first line (received or future) `pred` accepts; fails at the timeout, or at once when the driver is gone or reported an error. */
  waitLine(pred: (l: Line) => unknown, timeoutMs: number, what: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => finish(new Error(this.#describe(`timed out after ${timeoutMs} ms waiting for ${what}`))), timeoutMs);
      const check = () => {
        const found = this.lines.find(pred);
        if (found) return finish(null, found);
        const failed = this.lines.find((l) => (l.type === "error" && l.ref === undefined) || l.type === "fatal" || l.type === "unparsable");
        if (failed) return finish(new Error(this.#describe(`the driver failed (${JSON.stringify(failed)}) waiting for ${what}`)));
        if (this.#exited) finish(new Error(this.#describe(`the driver exited waiting for ${what}`)));
      };
      const finish = (error: Error | null, line?: Line) => {
        clearTimeout(deadline);
        this.#wake.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      this.#wake.add(check);
      check();
    });
  }

  /** The first message stanza at index >= mark that `pred` accepts. */
  async waitMessage(mark: number, pred: (m: SlixMessage) => unknown, what: string): Promise<SlixMessage> {
    const line = await this.waitLine((l) => l.type === "message" && this.messages.indexOf(l as unknown as SlixMessage) >= mark && pred(l as unknown as SlixMessage), WAIT, what);
    return line as unknown as SlixMessage;
  }

  /** Runs a driver command; resolves with the stanza it sent (its id and XML). */
  async do(op: string, args: Record<string, unknown>): Promise<Done> {
    const ref = ++this.#ref;
    this.#child.stdin.write(`${JSON.stringify({ op, ref, ...args })}\n`);
    const answer = await this.waitLine((l) => l.ref === ref, WAIT, `the answer to ${op} #${ref}`);
    assert.equal(answer.type, "done", `${op} ${JSON.stringify(args)}: ${JSON.stringify(answer)}`);
    return answer as unknown as Done;
  }

  /** Asks the driver to disconnect and exit; kills it (by its own handle) if it does not. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.stdin.end(`${JSON.stringify({ op: "stop" })}\n`);
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  #notify(): void {
    for (const wake of [...this.#wake]) wake();
  }

  #describe(what: string): string {
    const recent = this.lines.slice(-6).map((l) => `  ${JSON.stringify(l).slice(0, 600)}`);
    return [`slixmpp driver (${this.jid || "not ready"}): ${what}`, `the last lines:`, ...recent, `stderr: ${this.#stderr.slice(-1500)}`].join("\n");
  }
}

for (const kind of KINDS) {
  describe(`interop with slixmpp (${kind})`, () => {
    let server: XmppServer;
    let gw: TestGateway;
    let slix: Slix;

    before(async () => {
      server = await startXmppServer(kind);
      await server.registerUser("juliet", "pw-juliet");
      gw = await startTestGateway(server);
      slix = await Slix.start(server, "juliet", "pw-juliet", "slix");
    });
    after(async () => {
      await slix?.stop();
      await gw?.stop();
      await server?.stop();
    });

    /** A fresh account per test (session "phone"). */
    const account = () => accountDriver(gw, { waitMs: WAIT });
    type Account = AccountDriver;

    /** The client sends a chat message to the account (through its plugins); resolves once it is in the log. */
    async function clientSays(r: Account, body: string, extra: Record<string, unknown> = {}) {
      const done = await slix.do("send", { to: r.jid, body, ...extra });
      const event = await r.until(`the client's message ${done.id} as an event`, (e) => e.event === "message" && e.data.stanzaId === done.id);
      return { stanzaId: done.id, id: String(event.data.id), event, sent: done };
    }
    /** The first message stanza from the account the client received at index >= mark that `pred` accepts. */
    const fromAccount = (r: Account, mark: number, pred: (m: SlixMessage) => unknown, what: string) =>
      slix.waitMessage(mark, (m) => bare(m.from) === r.jid && pred(m), `${what} (from ${r.jid})`);
    /** The kinds of the message stanzas from the account the client received at index >= mark, up to and including `last`. */
    const kindsFrom = (r: Account, mark: number, last: SlixMessage) =>
      slix.messages
        .slice(mark, slix.messages.indexOf(last) + 1)
        .filter((m) => bare(m.from) === r.jid)
        .map(kindOf);

    it("Balcony → slixmpp: the plugins parse the account's message, correction, reactions, reply, attachment, displayed marker and retraction as naming the same messages, text, emojis, reply target and URL as the REST views", async () => {
      const r = await account();
      const mark = slix.messages.length;
      // The client's own markable message: what the account reacts and replies to and marks displayed.
      const herText = "But soft! What light 🌹 through yonder window breaks?\nIt is the east";
      const hers = await clientSays(r, herText, { markable: true });
      assert.equal(hers.event.data.body, herText);

      // A message: xep_0359 origin-id and the stanza id are the message id; markable (xep_0333).
      const text1 = "It is my lady, O, it is my love!";
      const first = await r.send({ to: JULIET, body: text1 });
      const m1 = await fromAccount(r, mark, (m) => m.id === first, "the account's message");
      assert.deepEqual(
        { id: m1.id, originId: m1.originId, body: m1.body, mtype: m1.mtype, markable: m1.markable, events: m1.events },
        { id: first, originId: first, body: text1, mtype: "chat", markable: true, events: [] },
        m1.xml,
      );
      assert.equal((await r.view(first)).body, m1.body, "the view's body is what the client shows");

      // A correction (xep_0308): the plugin's replace id is the message id, the body the view's.
      const text2 = "It is my lady, O, it is my love! O, that she knew she were!";
      const fixed = await r.call("POST", "/v1/messages", { to: JULIET, body: text2, replace: first });
      assert.equal(fixed.status, 202, fixed.text);
      assert.equal(fixed.body.id, first);
      const m2 = await fromAccount(r, mark, (m) => m.replace, "the correction");
      assert.deepEqual({ replace: m2.replace, body: m2.body, events: m2.events }, { replace: first, body: text2, events: ["message_correction"] }, m2.xml);
      assert.notEqual(m2.id, first, `a new stanza: ${m2.xml}`);
      const v1 = await r.view(first);
      assert.equal(v1.body, m2.body, "the corrected body in the view is the one the client applies");
      assertIso(v1.edited, "edited");

      // Reactions (xep_0444) to the client's message: the id the client gave it, the same emojis.
      const emojis = ["👍", "❤️"];
      const reacted = await r.call("POST", `/v1/messages/${hers.id}/reactions`, { emojis });
      assert.equal(reacted.status, 200, reacted.text);
      const m3 = await fromAccount(r, mark, (m) => m.reactions, "the reactions");
      assert.deepEqual(
        { reactions: m3.reactions, body: m3.body, events: m3.events, store: m3.store },
        { reactions: { id: hers.stanzaId, values: emojis, set: [...emojis].sort() }, body: null, events: ["reactions"], store: true },
        m3.xml,
      );
      const asClientSees = Object.fromEntries(m3.reactions!.set.map((e) => [e, [bare(m3.from)]]));
      assert.deepEqual(sortedReactions((await r.view(hers.id)).reactions), sortedReactions(asClientSees), "the view's reactions are the client's");
      assert.deepEqual(sortedReactions(asClientSees), sortedReactions({ "👍": [r.jid], "❤️": [r.jid] }));

      // A reply (xep_0461) to the client's message: its id and the client's full JID; the XEP-0428
      // range marks the quote in code points, and the rest is the view's body.
      const replyText = "Call me but love, and I'll be new baptized 💘";
      const reply = await r.send({ to: JULIET, body: replyText, reply: { id: hers.id } });
      const m4 = await fromAccount(r, mark, (m) => m.id === reply, "the reply");
      assert.deepEqual({ reply: m4.reply, events: m4.events }, { reply: { id: hers.stanzaId, to: slix.jid }, events: ["message_reply"] }, m4.xml);
      const replyFallbacks = m4.fallbacks.filter((f) => f.for === NS.reply);
      assert.equal(replyFallbacks.length, 1, m4.xml);
      assert.equal(replyFallbacks[0]!.bodies.length, 1, m4.xml);
      const range = replyFallbacks[0]!.bodies[0]!;
      assert.equal(range.start, "0", m4.xml);
      const points = [...(m4.body ?? "")];
      const quote = points.slice(0, Number(range.end)).join("");
      const rest = points.slice(Number(range.end)).join("");
      const v4 = await r.view(reply);
      assert.equal(rest, v4.body, `the body past the fallback is the view's body: ${m4.xml}`);
      assert.equal(rest, replyText);
      assert.ok(quote.includes("🌹 through yonder window") && quote.startsWith(">"), `the fallback quotes her message: ${JSON.stringify(quote)}`);
      assert.deepEqual(v4.replyTo, { id: hers.id }, "the view's reply target is the message the client's reply id names");
      // Version skew: 1.8.3's xep_0461 only knows urn:xmpp:feature-fallback:0, so its helper finds no quote to strip.
      assert.equal(m4.featureFallbackStripped, null, `slixmpp 1.8.3's xep_0461 fallback helper does not see XEP-0428 fallbacks: ${m4.xml}`);

      // An attachment (xep_0066): the URL and description are the view's; the body is the URL.
      const attachment = { url: "https://example.org/balcony.jpg", mediaType: "image/jpeg", name: "balcony.jpg", size: 48213, description: "the balcony by night" };
      const att = await r.send({ to: JULIET, attachments: [attachment] });
      const m5 = await fromAccount(r, mark, (m) => m.id === att, "the attachment");
      assert.deepEqual({ oob: m5.oob, oobCount: m5.oobCount, body: m5.body }, { oob: { url: attachment.url, desc: attachment.description }, oobCount: 1, body: attachment.url }, m5.xml);
      const v5 = await r.view(att);
      assert.deepEqual(
        v5.attachments.map((a) => ({ url: a.url, desc: a.description })),
        [m5.oob],
        "the view's attachment is the client's",
      );
      assert.deepEqual(v5.attachments, [attachment]);

      // The displayed marker (xep_0333) for the client's markable message.
      const displayed = await r.call("POST", `/v1/messages/${hers.id}/displayed`);
      assert.equal(displayed.status, 204, displayed.text);
      const m6 = await fromAccount(r, mark, (m) => Object.keys(m.markers).length > 0, "the displayed marker");
      assert.deepEqual({ markers: m6.markers, events: m6.events, body: m6.body }, { markers: { displayed: hers.stanzaId }, events: ["marker_displayed"], body: null }, m6.xml);

      // A retraction: Balcony's v0.4 <retract/> names the message, but 1.8.3's xep_0424 (v0, in a
      // XEP-0422 <apply-to/>) does not recognise it; the client shows the XEP-0428 fallback body.
      const deleted = await r.call("DELETE", `/v1/messages/${first}`);
      assert.equal(deleted.status, 204, deleted.text);
      const m7 = await fromAccount(r, mark, (m) => m.retract1 || m.retract, "the retraction");
      assert.deepEqual(m7.retract1, { id: first }, `the v0.4 retract names the message: ${m7.xml}`);
      assert.deepEqual(m7.fallbacks.map((f) => f.for), [NS.retract1], m7.xml);
      assert.ok(m7.fallback && m7.store && (m7.body ?? "").length > 0, `xep_0428 marks the body as a fallback, xep_0334 store: ${m7.xml}`);
      assert.deepEqual({ retract: m7.retract, events: m7.events }, { retract: null, events: [] }, `version skew: slixmpp 1.8.3's xep_0424 does not see a v0.4 retraction: ${m7.xml}`);
      const tomb = await r.view(first);
      assert.deepEqual([tomb.body, tomb.attachments], [null, []], "the view is a tombstone");
      assertIso(tomb.retracted, "retracted");

      // Sentinel: once the client has it, it has everything the account sent before.
      const sentinelText = uniq("account sentinel ");
      const sentinel = await r.send({ to: JULIET, body: sentinelText });
      const ms = await fromAccount(r, mark, (m) => m.id === sentinel, "the sentinel");
      assert.deepEqual(
        kindsFrom(r, mark, ms),
        [`message:${first}`, `replace:${first}`, `reactions:${hers.stanzaId}`, `message:${reply}`, `message:${att}`, `displayed:${hers.stanzaId}`, `retract1:${first}`, `message:${sentinel}`],
        "exactly these stanzas reached the client",
      );
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => [m.id, m.direction, m.body]),
        [
          [sentinel, "out", sentinelText],
          [att, "out", null],
          [reply, "out", replyText],
          [first, "out", null],
          [hers.id, "in", herText],
        ],
        "the conversation has exactly these messages",
      );
    });

    it("slixmpp → Balcony: the plugins' message, correction, reactions, replies, displayed marker and attachment show in GET /v1/messages and the message-update events as the client meant them; its v0 and v0.4 retractions make tombstones", async () => {
      const r = await account();
      const mark = slix.messages.length;
      const oursText = "Lady, by yonder blessed moon I vow";
      const ours = await r.send({ to: JULIET, body: oursText });
      const got = await fromAccount(r, mark, (m) => m.id === ours, "the account's message");
      assert.equal(got.body, oursText, got.xml);

      // A markable message.
      const herText = "O, swear not by the moon 🌙";
      const hers = await clientSays(r, herText, { markable: true });
      assert.ok(hers.sent.xml.includes("urn:xmpp:chat-markers:0"), hers.sent.xml);
      assert.deepEqual([hers.event.data.body, hers.event.data.from], [herText, slix.jid]);
      const hv = await r.view(hers.id);
      assert.deepEqual([hv.body, hv.direction, hv.edited], [herText, "in", null]);

      // A correction of it (xep_0308 replace): the view's body, edited, the update carries the view.
      const fixedText = "O, swear not by the inconstant moon 🌙";
      const fix = await slix.do("correct", { to: r.jid, id: hers.stanzaId, body: fixedText });
      const u1 = await r.until("the correction's update", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.body === fixedText);
      assertIso(u1.data.edited, "edited in the update");
      assert.deepEqual(u1.data, (await r.view(hers.id)) as unknown as Record<string, unknown>, "the update's data is the view");

      // Reactions (xep_0444 send_reactions) to the account's message: {emoji: [her bare JID]}.
      const emojis = ["👍", "❤️"];
      const react = await slix.do("react", { to: r.jid, id: got.id, emojis });
      const expectedReactions = sortedReactions(Object.fromEntries(emojis.map((e) => [e, [bare(slix.jid)]])));
      const u2 = await r.until("the reactions' update", (e) => e.event === "message-update" && e.data.id === ours && isDeepStrictEqual(sortedReactions(e.data.reactions), expectedReactions));
      assert.deepEqual(sortedReactions((await r.view(ours)).reactions), expectedReactions);
      assert.deepEqual(expectedReactions, sortedReactions({ "👍": [JULIET], "❤️": [JULIET] }));

      // Replies (xep_0461 send_reply, no fallback) to the account's message and to her own.
      const replyText = "Do not swear at all";
      const reply = await slix.do("reply", { to: r.jid, id: got.id, author: got.from, body: replyText });
      const re1 = await r.until("the reply", (e) => e.event === "message" && e.data.stanzaId === reply.id);
      assert.deepEqual({ body: re1.data.body, replyTo: re1.data.replyTo }, { body: replyText, replyTo: { id: ours } }, `the event: ${reply.xml}`);
      const rv1 = await r.view(String(re1.data.id));
      assert.deepEqual({ body: rv1.body, replyTo: rv1.replyTo }, { body: replyText, replyTo: { id: ours } }, "the view");
      const reply2Text = "Or, if thou wilt not, swear by thy gracious self";
      const reply2 = await slix.do("reply", { to: r.jid, id: hers.stanzaId, author: slix.jid, body: reply2Text });
      const re2 = await r.until("the reply to her own", (e) => e.event === "message" && e.data.stanzaId === reply2.id);
      assert.deepEqual({ body: re2.data.body, replyTo: re2.data.replyTo }, { body: reply2Text, replyTo: { id: hers.id } }, `the event: ${reply2.xml}`);

      // The displayed marker (xep_0333 send_marker) for the account's message.
      const marker = await slix.do("marker", { to: r.jid, id: got.id, marker: "displayed" });
      const u3 = await r.until("the marker's update", (e) => e.event === "message-update" && e.data.id === ours && e.data.marker === "displayed");
      assert.deepEqual(sortedReactions(u3.data.reactions), expectedReactions, "the marker keeps the reactions");
      assert.deepEqual(u3.data, (await r.view(ours)) as unknown as Record<string, unknown>, "the update's data is the view");

      // An attachment (xep_0066 oob stanza plugin).
      const url = "https://example.org/moon.jpg";
      const att = await clientSays(r, url, { oob: { url, desc: "the inconstant moon" } });
      const expectedAttachments = [{ url, description: "the inconstant moon" }];
      assert.deepEqual(att.event.data.attachments, expectedAttachments, "the event");
      assert.deepEqual((await r.view(att.id)).attachments, expectedAttachments, "the view");

      // Retraction with 1.8.3's xep_0424 (v0: <apply-to xmlns="urn:xmpp:fasten:0"><retract
      // xmlns="urn:xmpp:message-retract:0"/>): Balcony takes the old form too, so her message is a
      // tombstone and the fallback text is no message.
      const retract0 = await slix.do("retract", { to: r.jid, id: hers.stanzaId });
      assert.ok(retract0.xml.includes("urn:xmpp:message-retract:0") && retract0.xml.includes("urn:xmpp:fasten:0"), retract0.xml);
      const u4 = await r.until("the v0 retraction's update", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.retracted != null);
      assertIso(u4.data.retracted, "retracted in the update");
      const tomb = await r.view(hers.id);
      assert.deepEqual(u4.data, tomb as unknown as Record<string, unknown>, "the update's data is the view");
      assert.deepEqual([tomb.body, tomb.attachments], [null, []]);

      // The v0.4 form (urn:xmpp:message-retract:1, built raw by the driver: no 1.8.3 plugin for it), of her attachment: a tombstone.
      const retract1 = await slix.do("retract1", { to: r.jid, id: att.stanzaId });
      const u5 = await r.until("the v0.4 retraction's update", (e) => e.event === "message-update" && e.data.id === att.id && e.data.retracted != null);
      const attTomb = await r.view(att.id);
      assert.deepEqual(u5.data, attTomb as unknown as Record<string, unknown>, "the update's data is the view");
      assert.deepEqual([attTomb.body, attTomb.attachments], [null, []]);

      // Sentinels: her plain message (Balcony handled all before it), then the account's (the
      // client received all the account sent before it).
      const userSentinel = await clientSays(r, uniq("client sentinel "));
      const evs = await r.events();
      assert.deepEqual(
        r.messageIds(evs),
        [hers.stanzaId, reply.id, reply2.id, att.stanzaId, userSentinel.stanzaId],
        `only these were messages (not the correction ${fix.id}, the reactions ${react.id}, the marker ${marker.id}, the retractions ${retract0.id} and ${retract1.id})`,
      );
      assert.ok(!JSON.stringify(evs).includes(SLIX_RETRACT_FALLBACK), "the v0 retraction's fallback text is in no event");
      assert.deepEqual(
        r.updatesOf(evs, ours).map((e) => ({ reactions: sortedReactions(e.data.reactions), marker: e.data.marker })),
        [
          { reactions: expectedReactions, marker: null },
          { reactions: expectedReactions, marker: "displayed" },
        ],
        "the account's message: one update for the reactions, one for the marker",
      );
      assert.equal(u2.data.marker, null);
      assert.deepEqual(
        r.updatesOf(evs, hers.id).map((e) => ({ body: e.data.body, retracted: e.data.retracted !== null })),
        [
          { body: fixedText, retracted: false },
          { body: null, retracted: true },
        ],
        "her message: one update for the correction, one for the v0 retraction",
      );
      assert.deepEqual(
        r.updatesOf(evs, att.id).map((e) => e.data.retracted !== null),
        [true],
        "her attachment: one update, the v0.4 retraction",
      );
      const ids = (e: Ev) => String(e.data.id);
      const byStanza = (sid: string) => ids(evs.find((e) => e.event === "message" && e.data.stanzaId === sid)!);
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [byStanza(userSentinel.stanzaId), att.id, byStanza(reply2.id), byStanza(reply.id), hers.id, ours],
        "the conversation has exactly these messages",
      );

      const accountSentinel = await r.send({ to: JULIET, body: uniq("account sentinel ") });
      const ms = await fromAccount(r, mark, (m) => m.id === accountSentinel, "the account's sentinel");
      assert.deepEqual(kindsFrom(r, mark, ms), [`message:${ours}`, `message:${accountSentinel}`], "the account sent the client nothing in answer");
    });
  });
}
