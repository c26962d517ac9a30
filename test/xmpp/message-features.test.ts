// Message features (API.md "Message features (1.1)") end to end on Prosody and ejabberd, 1:1 chat:
// replies (XEP-0461 with a XEP-0428 fallback quote), attachments (XEP-0066, XEP-0447/0446
// metadata), markers (XEP-0333), corrections (XEP-0308), reactions (XEP-0444) and retractions
// (XEP-0424), both as the account sends them over HTTP (the exact elements Juliet, a real XMPP
// user, receives) and as Juliet sends them (the stored message, its view and the message-update
// events). Only whoever may change a message changes it: the nurse's forgeries change nothing.
//
// "Nothing was sent" is proven by a sentinel message the account sends afterwards to the same peer
// (outbound stanzas go out in order): once it arrived, anything before it did. "Nothing changed"
// is proven by a plain message from the same XMPP user after the stanza (inbound stanzas are
// processed in arrival order): once its event is in the log, the earlier stanza was handled.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { xml, type XmlElement, type XmppUser } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver, type Attachment, type Ev } from "../helpers/account-driver.js";
import { uniq, waitFor, type TestGateway } from "../helpers/gateway.js";
import { grantPresence, startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { isFrom, receivedFrom } from "../helpers/sentinel.js";
import { KINDS } from "../helpers/servers.js";

const WAIT = 20_000;
const JULIET = "juliet@localhost";
const NURSE = "nurse@localhost";
const NS = {
  reply: "urn:xmpp:reply:0",
  fallback: "urn:xmpp:fallback:0",
  oob: "jabber:x:oob",
  sfs: "urn:xmpp:sfs:0",
  file: "urn:xmpp:file:metadata:0",
  urlData: "http://jabber.org/protocol/url-data",
  markers: "urn:xmpp:chat-markers:0",
  correct: "urn:xmpp:message-correct:0",
  reactions: "urn:xmpp:reactions:0",
  retract: "urn:xmpp:message-retract:1",
  hints: "urn:xmpp:hints",
  sid: "urn:xmpp:sid:0",
  receipts: "urn:xmpp:receipts",
};
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** 21 distinct single-code-point RGI emoji (Emoji_Presentation: no variation selector needed). */
const EMOJI_21 = [..."😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩"];

const FEATURES = ["edited", "retracted", "reactions", "replyTo", "attachments", "marker"] as const;
/** The feature fields of a view (absent ones as undefined, so that they fail a comparison with null). */
const features = (v: Record<string, unknown>) => Object.fromEntries(FEATURES.map((k) => [k, v[k]]));
const NO_FEATURES = { edited: null, retracted: null, reactions: {}, replyTo: null, attachments: [], marker: null };

/** The element children of an element. */
const elements = (e: XmlElement | undefined): XmlElement[] => (e ? e.children.filter((c): c is XmlElement => typeof c !== "string") : []);
/** XEP-0461 §5 / XEP-0428: the fallback quote of a reply to `author`'s message `quoted`. */
const quoteOf = (author: string, quoted: string) => `> ${author} wrote:\n${quoted.split("\n").map((l) => `> ${l}\n`).join("")}`;
const codePoints = (s: string) => [...s].length;
/** Reactions with each list of JIDs sorted (the order of reactors is not part of the contract). */
const sortedReactions = (r: unknown) => Object.fromEntries(Object.entries((r ?? {}) as Record<string, string[]>).map(([k, v]) => [k, [...v].sort()]));
const assertIso = (v: unknown, what: string) => {
  assert.ok(typeof v === "string" && ISO.test(v) && !Number.isNaN(Date.parse(v)), `${what}: an ISO time, got ${JSON.stringify(v)}`);
};

/** What an account's message stanza is, for comparing lists: "message:<id>" or "<control element>:<id it refers to>". */
const CONTROL_NS = [NS.correct, NS.reactions, NS.retract, NS.markers];
function kindOf(s: XmlElement): string {
  const c = elements(s).find((x) => CONTROL_NS.includes(x.attrs.xmlns ?? "") && x.name !== "markable");
  return c ? `${c.name}:${c.attrs.id}` : `message:${s.attrs.id}`;
}

for (const kind of KINDS) {
  describe(`message features (${kind})`, () => {
    let gw: TestGateway;
    let juliet: XmppUser;
    let nurse: XmppUser;

    let world: XmppWorld<"juliet" | "nurse"> | undefined;

    before(async () => {
      world = await startWorld(kind, { juliet: "balcony", nurse: "garden" });
      gw = world.gw;
      ({ juliet, nurse } = world.users);
    });
    after(() => world?.stop());

    /** A fresh account per test (session "phone"), so tests do not depend on each other. */
    const account = () => accountDriver(gw, { waitMs: WAIT });
    type Account = AccountDriver;

    /** `user` sends a chat message with a fresh id (and a body unless null) to `to`; resolves with the id. */
    async function say(user: XmppUser, to: string, body: string | null, ...extra: XmlElement[]): Promise<string> {
      const id = uniq("m-");
      await user.send(xml("message", { to, type: "chat", id }, body === null ? null : xml("body", {}, body), ...extra));
      return id;
    }
    /** `user` sends a message to the account and it is in the log: its stanza id, Balcony id and event. */
    async function inbound(user: XmppUser, r: Account, body: string | null, ...extra: XmlElement[]) {
      const stanzaId = await say(user, r.jid, body, ...extra);
      const event = await r.until(`the message ${stanzaId} as an event`, (e) => e.event === "message" && e.data.stanzaId === stanzaId);
      return { stanzaId, id: String(event.data.id), event };
    }
    /** A plain message from `user` after stanzas of hers: once it is in the log, they were handled. */
    async function userSentinel(user: XmppUser, r: Account): Promise<string> {
      return (await inbound(user, r, uniq("user sentinel "))).stanzaId;
    }
    /** The Balcony id of the inbound message with stanza id `stanzaId`, from the log. */
    const idOf = (evs: Ev[], stanzaId: string) => String(evs.find((e) => e.event === "message" && e.data.stanzaId === stanzaId)?.data.id);
    /** The account's message stanza `id` as `user` received it. */
    const arrived = (user: XmppUser, r: Account, id: string) => user.waitFor((s) => s.is("message") && s.attrs.id === id && isFrom(s, r.jid), WAIT);
    /** The first message stanza from the account at index >= mark that `pred` accepts. */
    const next = (user: XmppUser, r: Account, mark: number, pred: (s: XmlElement) => unknown) =>
      user.waitFor((s) => user.stanzas.indexOf(s) >= mark && s.is("message") && isFrom(s, r.jid) && pred(s), WAIT);
    /** The account sends a plain message to `user` (bare `to`); resolves once it arrived, with the end index to check up to. */
    async function outSentinel(r: Account, user: XmppUser = juliet, to = JULIET): Promise<{ id: string; end: number }> {
      const id = await r.send({ to, body: uniq("account sentinel ") });
      const s = await arrived(user, r, id);
      return { id, end: user.stanzas.indexOf(s) + 1 };
    }
    /** The kinds of the message stanzas `user` received from the account in [mark, end). */
    const kindsFrom = (user: XmppUser, r: Account, mark: number, end: number) =>
      receivedFrom(user, r.jid, mark, end)
        .filter((s) => s.is("message"))
        .map(kindOf);
    /** A 4xx problem with `code` (when given). */
    function assertRefused(res: { status: number; body: unknown; text: string }, status: number | "4xx", code: string | null, what: string): void {
      if (status === "4xx") assert.ok(res.status >= 400 && res.status < 500, `${what}: a 4xx, got ${res.status} ${res.text}`);
      else assert.equal(res.status, status, `${what}: ${res.text}`);
      if (code) assert.equal((res.body as { code?: string } | undefined)?.code, code, `${what}: ${res.text}`);
    }

    /** Asserts the XEP-0461 reply and XEP-0428 fallback of an outbound reply stanza. */
    function assertReplyStanza(s: XmlElement, to: string, refId: string, author: string, quoted: string, text: string): void {
      const quote = quoteOf(author, quoted);
      const wire = s.toString();
      assert.equal(s.attrs.type, "chat", wire);
      assert.equal(s.getChildText("body"), quote + text, `the body is the fallback quote, then the reply: ${wire}`);
      const replies = s.getChildren("reply", NS.reply);
      assert.equal(replies.length, 1, wire);
      assert.deepEqual(replies[0]!.attrs, { xmlns: NS.reply, to, id: refId }, wire);
      const fallbacks = s.getChildren("fallback", NS.fallback);
      assert.equal(fallbacks.length, 1, wire);
      assert.deepEqual(fallbacks[0]!.attrs, { xmlns: NS.fallback, for: NS.reply }, wire);
      assert.deepEqual(
        elements(fallbacks[0]).map((b) => ({ name: b.name, start: b.attrs.start, end: b.attrs.end })),
        [{ name: "body", start: "0", end: String(codePoints(quote)) }],
        `the fallback covers the quote in code points: ${wire}`,
      );
    }

    it("replies (XEP-0461) to an inbound and to its own message: <reply to id>, a fallback quote with code-point offsets, the bare text in the view; 404 message-not-found outside the conversation", async () => {
      const r = await account();
      const quoted = "Wherefore art thou Romeo?\nDeny thy father 🌹 and refuse thy name";
      const theirs = await inbound(juliet, r, quoted);
      const text = "Call me but love 💘";
      const reply = await r.send({ to: JULIET, body: text, reply: { id: theirs.id } });
      assertReplyStanza(await arrived(juliet, r, reply), `${JULIET}/balcony`, theirs.stanzaId, JULIET, quoted, text);
      const v1 = await r.view(reply);
      assert.equal(v1.body, text, "the stored body is the reply text, without the quote");
      assert.deepEqual(v1.replyTo, { id: theirs.id });
      assert.equal(v1.direction, "out");

      // A reply to its own message: the author is the account's bare JID, the id our message id.
      const text2 = "Henceforth I never will be Romeo.";
      const reply2 = await r.send({ to: JULIET, body: text2, reply: { id: reply } });
      assertReplyStanza(await arrived(juliet, r, reply2), r.jid, reply, r.jid, text, text2);
      assert.deepEqual((await r.view(reply2)).replyTo, { id: reply });
      assert.equal((await r.view(theirs.id)).replyTo, null, "the inbound message replies to nothing");
      const hist = await r.history(JULIET);
      assert.deepEqual(
        hist.map((m) => [m.id, m.body, m.replyTo]),
        [
          [reply2, text2, { id: reply }],
          [reply, text, { id: theirs.id }],
          [theirs.id, quoted, null],
        ],
      );

      // Messages outside this conversation, another account's, an unknown id: 404, nothing sent.
      const nurses = await inbound(nurse, r, "the nurse calls within");
      const toNurse = await r.send({ to: NURSE, body: "anon, good nurse" });
      await arrived(nurse, r, toNurse);
      const other = await account();
      const othersOwn = await other.send({ to: JULIET, body: "another account's message" });
      await arrived(juliet, other, othersOwn);
      const mark = juliet.stanzas.length;
      for (const [what, id] of [
        ["the nurse's message", nurses.id],
        ["its own message to the nurse", toNurse],
        ["another account's message", othersOwn],
        ["an unknown id", randomUUID()],
      ] as const) {
        const refused = await r.call("POST", "/v1/messages", { to: JULIET, body: `never sent: ${what}`, reply: { id } });
        assertRefused(refused, 404, "message-not-found", `a reply to ${what}`);
      }
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "no refused reply went out");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [sentinel.id, reply2, reply, theirs.id],
        "no refused reply was recorded",
      );
    });

    it("refuses a reply, or a reply's correction, whose body is a language map with 400 validation-failed naming body.body (XEP-0428 ranges cannot say which body they mark); nothing sent", async () => {
      const r = await account();
      const theirs = await inbound(juliet, r, "Wilt thou be gone?");
      const reply = await r.send({ to: JULIET, body: "It was the lark", reply: { id: theirs.id } });
      await arrived(juliet, r, reply);
      const mark = juliet.stanzas.length;
      const map = { en: "It was the nightingale", fr: "C'était le rossignol" };
      for (const [what, payload] of [
        ["a reply", { to: JULIET, body: map, lang: "en", reply: { id: theirs.id } }],
        ["a reply, in a batch", { messages: [{ to: JULIET, body: map, reply: { id: theirs.id } }] }],
        ["the correction of a reply", { to: JULIET, body: map, replace: reply }],
      ] as const) {
        const batch = "messages" in payload;
        const res = await r.call("POST", batch ? "/v1/messages/batch" : "/v1/messages", payload);
        const problem = batch ? { status: res.status === 200 ? (res.body as { results: { status: number }[] }).results[0]!.status : res.status, body: (res.body as { results: unknown[] }).results?.[0], text: res.text } : res;
        assertRefused(problem, 400, "validation-failed", what);
        assert.equal((problem.body as { field?: string }).field, batch ? "body.messages.0.body" : "body.body", `${what}: ${res.text}`);
      }
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "no refused reply or correction went out");
      assert.equal((await r.view(reply)).body, "It was the lark", "the reply keeps its text");
      // A language map without a reply is sent as before: one <body xml:lang> each.
      const plain = await r.send({ to: JULIET, body: map, lang: "en" });
      assert.equal((await arrived(juliet, r, plain)).getChildren("body").length, 2);
    });

    it("sends attachments: one OOB <x> each, SFS file metadata where given, the first URL as the body when there is none; refuses bad ones with 400 naming the field", async () => {
      const r = await account();
      const a1: Attachment = { url: "https://example.org/balcony.jpg", mediaType: "image/jpeg", name: "balcony.jpg", size: 48213, description: "the balcony by night" };
      const a2: Attachment = { url: "http://example.org/letter.txt" };
      const first = await r.send({ to: JULIET, attachments: [a1, a2] });
      const s1 = await arrived(juliet, r, first);
      const wire1 = s1.toString();
      assert.equal(s1.getChildText("body"), a1.url, `no body: the first URL is the body: ${wire1}`);
      assert.deepEqual(
        s1.getChildren("x", NS.oob).map((x) => ({ url: x.getChildText("url"), desc: x.getChildText("desc") })),
        [
          { url: a1.url, desc: a1.description },
          { url: a2.url, desc: null },
        ],
        wire1,
      );
      const sharing = s1.getChildren("file-sharing", NS.sfs);
      assert.equal(sharing.length, 1, `SFS only for the attachment with metadata: ${wire1}`);
      assert.equal(sharing[0]!.attrs.disposition, "attachment", wire1);
      const files = sharing[0]!.getChildren("file", NS.file);
      assert.equal(files.length, 1, wire1);
      assert.deepEqual(
        elements(files[0]).map((c) => `${c.name}=${c.text()}`),
        [`media-type=${a1.mediaType}`, `name=${a1.name}`, `size=${a1.size}`, `desc=${a1.description}`],
        wire1,
      );
      const sources = sharing[0]!.getChildren("sources", NS.sfs);
      assert.equal(sources.length, 1, wire1);
      assert.deepEqual(
        elements(sources[0]).map((u) => ({ name: u.name, ns: u.attrs.xmlns, target: u.attrs.target })),
        [{ name: "url-data", ns: NS.urlData, target: a1.url }],
        wire1,
      );
      const v1 = await r.view(first);
      assert.equal(v1.body, null, "no body given: none in the view");
      assert.deepEqual(v1.attachments, [a1, a2]);

      // With a body: the body stays; a description alone asks for no SFS, a name does.
      const a3: Attachment = { url: "https://example.org/plans.pdf", description: "the plans" };
      const a4: Attachment = { url: "https://example.org/vial", name: "vial.png" };
      const second = await r.send({ to: JULIET, body: "see these", attachments: [a3, a4] });
      const s2 = await arrived(juliet, r, second);
      const wire2 = s2.toString();
      assert.equal(s2.getChildText("body"), "see these", wire2);
      assert.deepEqual(
        s2.getChildren("x", NS.oob).map((x) => ({ url: x.getChildText("url"), desc: x.getChildText("desc") })),
        [
          { url: a3.url, desc: a3.description },
          { url: a4.url, desc: null },
        ],
        wire2,
      );
      const sharing2 = s2.getChildren("file-sharing", NS.sfs);
      assert.equal(sharing2.length, 1, wire2);
      assert.deepEqual(elements(sharing2[0]!.getChild("file", NS.file)).map((c) => `${c.name}=${c.text()}`), [`name=${a4.name}`], wire2);
      assert.deepEqual(
        elements(sharing2[0]!.getChild("sources", NS.sfs)).map((u) => u.attrs.target),
        [a4.url],
        wire2,
      );
      const v2 = await r.view(second);
      assert.equal(v2.body, "see these");
      assert.deepEqual(v2.attachments, [a3, a4]);

      // Refused: 400 validation-failed naming the attachments, and nothing sent or recorded.
      const mark = juliet.stanzas.length;
      const bad: [string, unknown][] = [
        ["an empty list", []],
        ["eleven attachments", Array.from({ length: 11 }, (_, i) => ({ url: `https://example.org/${i}` }))],
        ["an ftp URL", [{ url: "ftp://example.org/a.jpg" }]],
        ["a javascript: URL", [{ url: "javascript:alert(1)" }]],
        ["a URL without a scheme", [{ url: "example.org/a.jpg" }]],
        ["no url", [{ name: "nameless.png" }]],
      ];
      for (const [what, attachments] of bad) {
        const refused = await r.call("POST", "/v1/messages", { to: JULIET, body: `never sent: ${what}`, attachments });
        assertRefused(refused, 400, "validation-failed", what);
        assert.match(String(refused.body?.field), /attachments/, `${what}: the field is named: ${refused.text}`);
      }
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "no refused message went out");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [sentinel.id, second, first],
      );
    });

    it("marks chat messages markable (XEP-0333) unless markable is false; every view (GET, history, event) carries the feature fields, empty for a plain message", async () => {
      const r = await account();
      const marked = await r.send({ to: JULIET, body: "mark me" });
      const s1 = await arrived(juliet, r, marked);
      assert.deepEqual(
        s1.getChildren("markable", NS.markers).map((m) => m.attrs),
        [{ xmlns: NS.markers }],
        `markable by default: ${s1.toString()}`,
      );
      const unmarked = await r.send({ to: JULIET, body: "do not mark me", markable: false });
      const s2 = await arrived(juliet, r, unmarked);
      assert.equal(s2.getChildren("markable", NS.markers).length, 0, `markable:false: ${s2.toString()}`);

      const theirs = await inbound(juliet, r, "a plain hello");
      // The message event carries replyTo and attachments when there are any (the catalogue makes them optional).
      assert.ok([undefined, null].includes(theirs.event.data.replyTo as null), `no replyTo in the message event: ${JSON.stringify(theirs.event.data)}`);
      assert.ok(theirs.event.data.attachments === undefined || isDeepStrictEqual(theirs.event.data.attachments, []), `no attachments in the message event: ${JSON.stringify(theirs.event.data)}`);
      for (const id of [marked, unmarked, theirs.id]) assert.deepEqual(features(await r.view(id)), NO_FEATURES, `GET ${id}`);
      const hist = await r.history(JULIET);
      assert.deepEqual(
        hist.map((m) => m.id),
        [theirs.id, unmarked, marked],
      );
      for (const m of hist) assert.deepEqual(features(m), NO_FEATURES, `history item ${m.id}`);
    });

    it("corrects its own message (XEP-0308): <replace id> on a new stanza, the 202 names the original, the view has the new body and edited; refuses others' messages and another conversation's", async () => {
      const r = await account();
      const original = await r.send({ to: JULIET, body: "I love thee" });
      await arrived(juliet, r, original);
      const unedited = await r.view(original);
      assert.equal(unedited.edited, null);

      let mark = juliet.stanzas.length;
      const fixed = await r.call("POST", "/v1/messages", { to: JULIET, body: "I love thee more", replace: original });
      assert.equal(fixed.status, 202, fixed.text);
      assert.equal(fixed.body.id, original, "the 202 answers with the original message's id");
      const fix = await next(juliet, r, mark, (s) => s.getChild("replace", NS.correct));
      assert.equal(fix.attrs.type, "chat", fix.toString());
      assert.deepEqual(fix.getChildren("replace", NS.correct).map((x) => x.attrs), [{ xmlns: NS.correct, id: original }], fix.toString());
      assert.equal(fix.getChildText("body"), "I love thee more", fix.toString());
      assert.ok(fix.attrs.id && fix.attrs.id !== original, `a new stanza id: ${fix.toString()}`);
      const after1 = await r.view(original);
      assert.equal(after1.body, "I love thee more");
      assertIso(after1.edited, "edited");
      assert.ok(Date.parse(after1.edited!) >= Date.parse(after1.createdAt), "edited after created");
      assert.equal(after1.createdAt, unedited.createdAt, "still the original message");

      // A second correction (to her full JID: the same bare peer) refers to the original again.
      mark = juliet.stanzas.length;
      const again = await r.call("POST", "/v1/messages", { to: `${JULIET}/balcony`, body: "I love thee most", replace: original });
      assert.equal(again.status, 202, again.text);
      assert.equal(again.body.id, original);
      const fix2 = await next(juliet, r, mark, (s) => s.getChild("replace", NS.correct));
      assert.deepEqual(fix2.getChildren("replace", NS.correct).map((x) => x.attrs), [{ xmlns: NS.correct, id: original }], fix2.toString());
      assert.equal(fix2.getChildText("body"), "I love thee most");
      assert.notEqual(fix2.attrs.id, fix.attrs.id, "each correction is a new stanza");
      const after2 = await r.view(original);
      assert.equal(after2.body, "I love thee most");
      assert.ok(Date.parse(after2.edited!) >= Date.parse(after1.edited!), "edited is the last correction's time");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => [m.id, m.body]),
        [[original, "I love thee most"]],
        "one message, corrected: no new message per correction",
      );

      // The client retries the last correction (it did not hear the 202): the same answer, and
      // nothing goes out again. Proven by a message sent after it arriving with no correction before it.
      mark = juliet.stanzas.length;
      const retried = await r.call("POST", "/v1/messages", { to: `${JULIET}/balcony`, body: "I love thee most", replace: original });
      assert.equal(retried.status, 202, retried.text);
      assert.deepEqual(retried.body, again.body);
      assert.equal(retried.headers.get("idempotent-replayed"), "true");
      const afterRetry = await r.send({ to: JULIET, body: "after the retried correction" });
      await arrived(juliet, r, afterRetry);
      assert.deepEqual(
        juliet.stanzas.slice(mark).filter((s) => s.getChild("replace", NS.correct)).map((s) => s.toString()),
        [],
        "the retried correction was not sent again",
      );
      assert.ok(Date.parse((await r.view(original)).edited!) === Date.parse(after2.edited!), "edited is still the last real correction's time");

      // Not the account's own outbound message of this conversation: refused, nothing sent or changed.
      const theirs = await inbound(juliet, r, "my bounty is as boundless as the sea");
      const toNurse = await r.send({ to: NURSE, body: "to the nurse, uncorrected" });
      await arrived(nurse, r, toNurse);
      const other = await account();
      const othersOwn = await other.send({ to: JULIET, body: "another account's, uncorrected" });
      await arrived(juliet, other, othersOwn);
      mark = juliet.stanzas.length;
      const nurseMark = nurse.stanzas.length;
      const refusals: [string, string, number | "4xx", string | null][] = [
        ["Juliet's inbound message", theirs.id, 404, "message-not-found"],
        ["another account's message", othersOwn, 404, "message-not-found"],
        ["an unknown id", randomUUID(), 404, "message-not-found"],
        ["its message to another peer", toNurse, "4xx", null],
      ];
      for (const [what, id, status, code] of refusals) {
        const refused = await r.call("POST", "/v1/messages", { to: JULIET, body: `never sent: ${what}`, replace: id });
        assertRefused(refused, status, code, `correcting ${what}`);
      }
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "no refused correction went out");
      const nurseEnd = await outSentinel(r, nurse, NURSE);
      assert.deepEqual(kindsFrom(nurse, r, nurseMark, nurseEnd.end), [`message:${nurseEnd.id}`], "nor to the nurse");
      const unchanged = await r.view(theirs.id);
      assert.deepEqual([unchanged.body, unchanged.edited], ["my bounty is as boundless as the sea", null]);
      const nurseMsg = await r.view(toNurse);
      assert.deepEqual([nurseMsg.body, nurseMsg.edited], ["to the nurse, uncorrected", null]);
      const othersView = await other.view(othersOwn);
      assert.deepEqual([othersView.body, othersView.edited], ["another account's, uncorrected", null]);
    });

    it("corrects in a batch (API.md: a batch item is a message as POST /v1/messages takes it): after the batch's new messages, in order; a bad correction refuses only itself", async () => {
      const r = await account();
      const original = await r.send({ to: JULIET, body: "parting is such" });
      await arrived(juliet, r, original);
      const mark = juliet.stanzas.length;
      const batch = await r.call("POST", "/v1/messages/batch", {
        messages: [
          { to: JULIET, body: "sweet sorrow", replace: original },
          { to: JULIET, body: "good night" },
          { to: JULIET, replace: original },
          { to: JULIET, body: "nothing to fix", replace: "00000000-0000-4000-8000-000000000000" },
        ],
      });
      assert.equal(batch.status, 200, batch.text);
      const [fixed, fresh, bodiless, unknown] = batch.body.results;
      assert.deepEqual([fixed.id, fixed.status === "queued" || fixed.status === "sent"], [original, true]);
      assert.ok(fresh.id && fresh.id !== original, JSON.stringify(fresh));
      assert.deepEqual([bodiless.code, bodiless.field], ["validation-failed", "body.messages.2.body"]);
      assert.equal(unknown.code, "message-not-found");
      const fix = await next(juliet, r, mark, (s) => s.getChild("replace", NS.correct));
      assert.deepEqual([fix.getChild("replace", NS.correct)!.attrs.id, fix.getChildText("body")], [original, "sweet sorrow"]);
      await arrived(juliet, r, fresh.id);
      assert.equal((await r.view(original)).body, "sweet sorrow");
    });

    it("sets, replaces and removes its reactions (XEP-0444) on inbound and outbound messages; refuses what is not a set of at most 20 RGI emoji", async () => {
      const r = await account();
      const theirs = await inbound(juliet, r, "thou knowest the mask of night is on my face");
      const ours = await r.send({ to: JULIET, body: "by whose direction" });
      await arrived(juliet, r, ours);

      /** Sets the reactions, asserts the 200 view and the stanza Juliet gets. */
      const react = async (id: string, wireId: string, emojis: string[]) => {
        const mark = juliet.stanzas.length;
        const res = await r.call("POST", `/v1/messages/${id}/reactions`, { emojis });
        assert.equal(res.status, 200, `react ${emojis.join("")}: ${res.text}`);
        const expected = Object.fromEntries(emojis.map((e) => [e, [r.jid]]));
        assert.equal(res.body.id, id, res.text);
        assert.deepEqual(sortedReactions(res.body.reactions), expected, `the answered view: ${res.text}`);
        assert.deepEqual(sortedReactions((await r.view(id)).reactions), expected, "GET");
        const s = await next(juliet, r, mark, (x) => x.getChild("reactions", NS.reactions));
        const wire = s.toString();
        assert.equal(s.attrs.type, "chat", wire);
        assert.equal(s.getChild("body"), undefined, `no body: ${wire}`);
        const reactions = s.getChildren("reactions", NS.reactions);
        assert.equal(reactions.length, 1, wire);
        assert.deepEqual(reactions[0]!.attrs, { xmlns: NS.reactions, id: wireId }, wire);
        assert.deepEqual(
          elements(reactions[0]).map((c) => `${c.name}:${c.text()}`),
          emojis.map((e) => `reaction:${e}`),
          wire,
        );
        assert.equal(s.getChildren("store", NS.hints).length, 1, `a store hint: ${wire}`);
        return s;
      };
      await react(theirs.id, theirs.stanzaId, ["👍", "❤️"]);
      await react(theirs.id, theirs.stanzaId, ["🎉"]);
      await react(theirs.id, theirs.stanzaId, []);
      await react(ours, ours, ["😂"]);
      // Emoji sequences are emoji too: a skin tone modifier, a ZWJ sequence.
      await react(ours, ours, ["👍🏽", "🏳️‍🌈"]);
      await react(ours, ours, EMOJI_21.slice(0, 20));

      // Refused: 400 validation-failed naming emojis; unknown or another account's message: 404.
      const mark = juliet.stanzas.length;
      const bad: [string, unknown][] = [
        ["a letter", { emojis: ["a"] }],
        ["a duplicate", { emojis: ["👍", "👍"] }],
        ["two emoji in one reaction", { emojis: ["👍👍"] }],
        ["an empty string", { emojis: [""] }],
        ["21 emoji", { emojis: EMOJI_21 }],
        ["a string instead of a list", { emojis: "👍" }],
        ["no emojis", {}],
      ];
      for (const [what, body] of bad) {
        const refused = await r.call("POST", `/v1/messages/${ours}/reactions`, body);
        assertRefused(refused, 400, "validation-failed", what);
        assert.match(String(refused.body?.field), /emojis/, `${what}: the field is named: ${refused.text}`);
      }
      const other = await account();
      const othersOwn = await other.send({ to: JULIET, body: "another account's, without reactions" });
      await arrived(juliet, other, othersOwn);
      assertRefused(await r.call("POST", `/v1/messages/${othersOwn}/reactions`, { emojis: ["👍"] }), 404, "message-not-found", "another account's message");
      assertRefused(await r.call("POST", `/v1/messages/${randomUUID()}/reactions`, { emojis: ["👍"] }), 404, "message-not-found", "an unknown id");
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "no refused reaction went out");
      assert.deepEqual(sortedReactions((await r.view(ours)).reactions), Object.fromEntries(EMOJI_21.slice(0, 20).map((e) => [e, [r.jid]])), "the last accepted set stays");
      assert.deepEqual((await r.view(theirs.id)).reactions, {}, "removed by the empty list");
      assert.deepEqual((await other.view(othersOwn)).reactions, {});
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [sentinel.id, ours, theirs.id],
        "reactions are no messages",
      );
    });

    it("retracts its own message (XEP-0424): the retract stanza with its fallback, a tombstone in the view; refuses inbound and others' messages, and corrections of the tombstone", async () => {
      const r = await account();
      const attachment: Attachment = { url: "https://example.org/dagger.png", mediaType: "image/png" };
      const ours = await r.send({ to: JULIET, body: "a rash word", attachments: [attachment] });
      await arrived(juliet, r, ours);
      assert.deepEqual((await r.view(ours)).attachments, [attachment]);

      let mark = juliet.stanzas.length;
      const res = await r.call("DELETE", `/v1/messages/${ours}`);
      assert.equal(res.status, 204, res.text);
      const s = await next(juliet, r, mark, (x) => x.getChild("retract", NS.retract));
      const wire = s.toString();
      assert.equal(s.attrs.type, "chat", wire);
      assert.deepEqual(s.getChildren("retract", NS.retract).map((x) => x.attrs), [{ xmlns: NS.retract, id: ours }], wire);
      assert.deepEqual(
        s.getChildren("fallback", NS.fallback).map((x) => x.attrs),
        [{ xmlns: NS.fallback, for: NS.retract }],
        wire,
      );
      assert.ok((s.getChildText("body") ?? "").length > 0, `a fallback body: ${wire}`);
      assert.equal(s.getChildren("store", NS.hints).length, 1, `a store hint: ${wire}`);
      const tomb = await r.view(ours);
      assertIso(tomb.retracted, "retracted");
      assert.equal(tomb.body, null, "the tombstone has no body");
      assert.deepEqual(tomb.attachments, [], "nor attachments");
      assert.equal(tomb.id, ours);
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => [m.id, m.body, m.retracted !== null]),
        [[ours, null, true]],
        "the tombstone stays in the conversation",
      );

      // Refused, nothing sent: an inbound message, another account's, an unknown id (404), and a
      // correction of the tombstone.
      const theirs = await inbound(juliet, r, "keep this");
      const other = await account();
      const othersOwn = await other.send({ to: JULIET, body: "another account's, kept" });
      await arrived(juliet, other, othersOwn);
      mark = juliet.stanzas.length;
      assertRefused(await r.call("DELETE", `/v1/messages/${theirs.id}`), 404, "message-not-found", "retracting Juliet's message");
      assertRefused(await r.call("DELETE", `/v1/messages/${othersOwn}`), 404, "message-not-found", "retracting another account's message");
      assertRefused(await r.call("DELETE", `/v1/messages/${randomUUID()}`), 404, "message-not-found", "retracting an unknown id");
      assertRefused(await r.call("POST", "/v1/messages", { to: JULIET, body: "risen again", replace: ours }), "4xx", null, "correcting the tombstone");
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${sentinel.id}`], "nothing refused went out");
      const kept = await r.view(theirs.id);
      assert.deepEqual([kept.body, kept.retracted], ["keep this", null]);
      const othersView = await other.view(othersOwn);
      assert.deepEqual([othersView.body, othersView.retracted], ["another account's, kept", null]);
      const still = await r.view(ours);
      assert.deepEqual([still.body, still.edited, still.retracted], [null, null, tomb.retracted], "the tombstone is not revived");
    });

    it("refuses to correct or react to its message that failed (409 message-failed: the recipient never got it), retracts it here only; nothing sent", async () => {
      const r = await account();
      const failed = async (id: string) => {
        let v = await r.view(id);
        await waitFor(async () => (v = await r.view(id)).status === "failed", WAIT, `${id} failed`);
        return v;
      };
      /** Every change of `id` is refused with 409 message-failed; its view and its events stay as they were. */
      const assertUnchangeable = async (id: string, to: string, what: string) => {
        const before = await failed(id);
        const updates = r.updatesOf(await r.events(), id).length;
        const refusals = [
          ["a correction", await r.call("POST", "/v1/messages", { to, body: "what I meant", replace: id })],
          ["a keyed correction", await gw.request("POST", "/v1/messages", { token: r.token, body: { to, body: "what I meant", replace: id }, headers: { "idempotency-key": uniq("fix-") } })],
          ["a reaction", await r.call("POST", `/v1/messages/${id}/reactions`, { emojis: ["😀"] })],
        ] as const;
        for (const [kind, res] of refusals) {
          assertRefused(res, 409, "message-failed", `${kind} of ${what}`);
          assert.match((res.body as { detail: string }).detail, /never got it/, `${kind} of ${what}`);
        }
        const batch = await r.call("POST", "/v1/messages/batch", { messages: [{ to, body: "what I meant", replace: id }] });
        assert.equal(batch.status, 200, batch.text);
        assert.deepEqual([batch.body.results[0].status, batch.body.results[0].code], [409, "message-failed"], `a batch's correction of ${what}`);
        const after = await r.view(id);
        assert.deepEqual(features(after), features(before), `${what} unchanged`);
        assert.deepEqual([after.body, after.status], [before.body, "failed"]);
        assert.equal(r.updatesOf(await r.events(), id).length, updates, `no message-update for ${what}`);
        // A retraction clears it from the account's history (one message-update), and sends nothing.
        assert.equal((await r.call("DELETE", `/v1/messages/${id}`)).status, 204, `a retraction of ${what}`);
        assert.equal(typeof (await r.view(id)).retracted, "string", `${what} is a tombstone`);
        await waitFor(async () => r.updatesOf(await r.events(), id).length === updates + 1, WAIT, `one message-update for the retraction of ${what}`);
      };

      // Bounced by the server: no such user (RFC 6121 §8.5.2.2.1: service-unavailable).
      const nobody = `${uniq("nobody-")}@localhost`;
      await assertUnchangeable(await r.send({ to: nobody, body: "hello?" }), nobody, "a message the server bounced");

      // Bounced by Juliet's client (an error reply, RFC 6120 §8.3): the sentinel proves nothing of the refused went to her.
      const mark = juliet.stanzas.length;
      const ours = await r.send({ to: JULIET, body: "to be bounced" });
      const got = await arrived(juliet, r, ours);
      await juliet.send(xml("message", { to: got.attrs.from!, id: ours, type: "error" }, xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }))));
      await assertUnchangeable(ours, JULIET, "a message Juliet's client bounced");
      const sentinel = await outSentinel(r);
      assert.deepEqual(kindsFrom(juliet, r, mark, sentinel.end), [`message:${ours}`, `message:${sentinel.id}`], "nothing refused went out");
    });

    it("sends displayed (XEP-0333) for a markable inbound message, nothing for an unmarkable one; 404 for an outbound or another account's message", async () => {
      const r = await account();
      const ours = await r.send({ to: JULIET, body: "look up" });
      await arrived(juliet, r, ours);
      const markable = await inbound(juliet, r, "mark this as seen", xml("markable", { xmlns: NS.markers }));
      const plain = await inbound(juliet, r, "no markers for this one");
      const other = await account();
      const othersIn = await inbound(juliet, other, "for another account");

      const mark = juliet.stanzas.length;
      const res = await r.call("POST", `/v1/messages/${markable.id}/displayed`);
      assert.equal(res.status, 204, res.text);
      const s = await next(juliet, r, mark, (x) => x.getChild("displayed", NS.markers));
      const wire = s.toString();
      assert.equal(s.attrs.type, "chat", wire);
      assert.deepEqual(s.getChildren("displayed", NS.markers).map((x) => x.attrs), [{ xmlns: NS.markers, id: markable.stanzaId }], wire);
      assert.equal(s.getChildren("store", NS.hints).length, 1, `a store hint: ${wire}`);
      assert.equal(s.getChild("body"), undefined, `no body: ${wire}`);

      const unmarked = await r.call("POST", `/v1/messages/${plain.id}/displayed`);
      assert.equal(unmarked.status, 204, unmarked.text);
      assertRefused(await r.call("POST", `/v1/messages/${ours}/displayed`), 404, "message-not-found", "displayed for an outbound message");
      assertRefused(await r.call("POST", `/v1/messages/${othersIn.id}/displayed`), 404, "message-not-found", "displayed for another account's message");
      assertRefused(await r.call("POST", `/v1/messages/${randomUUID()}/displayed`), 404, "message-not-found", "displayed for an unknown id");
      const sentinel = await outSentinel(r);
      assert.deepEqual(
        kindsFrom(juliet, r, mark, sentinel.end),
        [`displayed:${markable.stanzaId}`, `message:${sentinel.id}`],
        "one marker, for the markable message only",
      );
      assert.equal((await r.view(ours)).marker, null, "the account's own marker is no peer marker");
    });

    /** Juliet's reply stanza children: XEP-0461 reply and, unless `fallback` is null, a XEP-0428 fallback range. */
    const replyParts = (to: string, id: string, fallback: { start: number; end: number } | null) => [
      xml("reply", { xmlns: NS.reply, to, id }),
      fallback ? xml("fallback", { xmlns: NS.fallback, for: NS.reply }, xml("body", { start: String(fallback.start), end: String(fallback.end) })) : null,
    ];

    it("stores Juliet's replies without the fallback quote (only a quote at 0) and resolves replyTo to ours, to hers, and to {id: null} for an unknown id or another conversation's", async () => {
      const r = await account();
      const ourText = "Did my heart love till now?\nForswear it, sight! 🌹";
      const ours = await r.send({ to: JULIET, body: ourText });
      await arrived(juliet, r, ours);
      const hers = await inbound(juliet, r, "What's in a name? 🌷\nThat which we call a rose");
      const nurses = await inbound(nurse, r, "Your mother calls");

      /** Juliet replies with a fallback quote at 0; asserts the event and the view. */
      // A reference that resolves to nothing here is still a reply: replyTo {id: null} (the event catalogue: "one not stored here").
      const check = async (what: string, body: string, parts: (XmlElement | null)[], expected: { body: string; replyTo: { id: string | null } }) => {
        const got = await inbound(juliet, r, body, ...(parts.filter(Boolean) as XmlElement[]));
        assert.deepEqual({ body: got.event.data.body, replyTo: got.event.data.replyTo }, expected, `${what}: the event: ${JSON.stringify(got.event.data)}`);
        const v = await r.view(got.id);
        assert.deepEqual({ body: v.body, replyTo: v.replyTo }, expected, `${what}: the view: ${JSON.stringify(v)}`);
        return got;
      };
      const quoteOurs = quoteOf(r.jid, ourText);
      const toOurs = await check("a reply to ours", `${quoteOurs}With love's light wings`, replyParts(r.jid, ours, { start: 0, end: codePoints(quoteOurs) }), {
        body: "With love's light wings",
        replyTo: { id: ours },
      });
      const quoteHers = quoteOf(JULIET, "What's in a name? 🌷\nThat which we call a rose");
      const toHers = await check("a reply to hers", `${quoteHers}would smell as sweet`, replyParts(`${JULIET}/balcony`, hers.stanzaId, { start: 0, end: codePoints(quoteHers) }), {
        body: "would smell as sweet",
        replyTo: { id: hers.id },
      });
      const quoteUnknown = quoteOf(JULIET, "lost words");
      const toUnknown = await check("a reply to an unknown id", `${quoteUnknown}what did I say?`, replyParts(`${JULIET}/balcony`, uniq("m-unknown-"), { start: 0, end: codePoints(quoteUnknown) }), {
        body: "what did I say?",
        replyTo: { id: null },
      });
      const quoteNurse = quoteOf(NURSE, "Your mother calls");
      const toNurses = await check("a reply to the nurse's message to the account", `${quoteNurse}not hers to quote`, replyParts(`${NURSE}/garden`, nurses.stanzaId, { start: 0, end: codePoints(quoteNurse) }), {
        body: "not hers to quote",
        replyTo: { id: null },
      });
      // A fallback range that does not start at 0 strips nothing; no fallback at all strips nothing.
      const quoteLate = quoteOf(r.jid, ourText);
      const lateBody = `First this.\n${quoteLate}`;
      const late = await check("a fallback not at 0", lateBody, replyParts(r.jid, ours, { start: codePoints("First this.\n"), end: codePoints(lateBody) }), {
        body: lateBody,
        replyTo: { id: ours },
      });
      const bare = await check("no fallback", "a reply without a quote", replyParts(r.jid, ours, null), { body: "a reply without a quote", replyTo: { id: ours } });

      const stored = (await r.history(JULIET)).map((m) => m.id);
      assert.deepEqual(stored, [bare.id, late.id, toNurses.id, toUnknown.id, toHers.id, toOurs.id, hers.id, ours]);
      assert.equal((await r.view(toOurs.id)).direction, "in");
    });

    it("strips a reply's fallback quote in either namespace (XEP-0428's and XEP-0461's example's urn:xmpp:feature-fallback:0), and a fallback without a range as the whole body: an empty text, still a stored reply", async () => {
      const r = await account();
      const ours = await r.send({ to: JULIET, body: "Parting is such sweet sorrow" });
      await arrived(juliet, r, ours);
      const quote = quoteOf(r.jid, "Parting is such sweet sorrow");
      const reply = xml("reply", { xmlns: NS.reply, to: r.jid, id: ours });
      const fallback = (ns: string, ...bodies: XmlElement[]) => xml("fallback", { xmlns: ns, for: NS.reply }, ...bodies);
      const check = async (what: string, body: string, parts: XmlElement[], expected: string) => {
        const got = await inbound(juliet, r, body, ...parts);
        const v = await r.view(got.id);
        assert.deepEqual(
          { event: got.event.data.body, eventReply: got.event.data.replyTo, view: v.body, replyTo: v.replyTo },
          { event: expected, eventReply: { id: ours }, view: expected, replyTo: { id: ours } },
          `${what}: ${JSON.stringify(got.event.data)}`,
        );
        return got.id;
      };
      const old = await check("urn:xmpp:feature-fallback:0", `${quote}that I shall say good night`, [reply, fallback("urn:xmpp:feature-fallback:0", xml("body", { start: "0", end: String(codePoints(quote)) }))], "that I shall say good night");
      // XEP-0428: a <body/> without start and end, or a fallback with no children, is all of the body: no text of the reply's own.
      const whole = await check("a <body/> without a range", quote, [reply, fallback(NS.fallback, xml("body"))], "");
      const childless = await check("a fallback without children", quote, [reply, fallback("urn:xmpp:feature-fallback:0")], "");
      // Fallbacks for something else, or without a reply, strip nothing.
      const other = await check("a fallback for another feature", `${quote}till it be morrow`, [reply, xml("fallback", { xmlns: NS.fallback, for: "urn:xmpp:message-retract:1" }, xml("body"))], `${quote}till it be morrow`);
      const stored = (await r.history(JULIET)).map((m) => [m.id, m.body]);
      assert.deepEqual(stored, [[other, `${quote}till it be morrow`], [childless, ""], [whole, ""], [old, "that I shall say good night"], [ours, "Parting is such sweet sorrow"]]);
      const conversation = ((await r.call("GET", "/v1/conversations")).body.items as { with: string; lastMessage: { id: string } }[]).find((c) => c.with === JULIET);
      assert.equal(conversation?.lastMessage.id, other);
    });

    it("stores Juliet's attachments (OOB, SFS metadata) in the event and the view", async () => {
      const r = await account();
      const url = "https://example.org/rose.png";
      const withMeta = await inbound(
        juliet,
        r,
        url,
        xml("x", { xmlns: NS.oob }, xml("url", {}, url), xml("desc", {}, "a rose")),
        xml(
          "file-sharing",
          { xmlns: NS.sfs, disposition: "attachment" },
          xml("file", { xmlns: NS.file }, xml("media-type", {}, "image/png"), xml("name", {}, "rose.png"), xml("size", {}, "2048"), xml("desc", {}, "a rose")),
          xml("sources", {}, xml("url-data", { xmlns: NS.urlData, target: url })),
        ),
      );
      const expected1 = [{ url, description: "a rose", mediaType: "image/png", name: "rose.png", size: 2048 }];
      assert.deepEqual(withMeta.event.data.attachments, expected1, "the event");
      assert.deepEqual((await r.view(withMeta.id)).attachments, expected1, "the view");

      const two = await inbound(
        juliet,
        r,
        "two letters",
        xml("x", { xmlns: NS.oob }, xml("url", {}, "https://example.org/one.txt")),
        xml("x", { xmlns: NS.oob }, xml("url", {}, "http://example.org/two.txt"), xml("desc", {}, "the second")),
      );
      const expected2 = [{ url: "https://example.org/one.txt" }, { url: "http://example.org/two.txt", description: "the second" }];
      assert.deepEqual(two.event.data.attachments, expected2, "the event");
      assert.deepEqual((await r.view(two.id)).attachments, expected2, "the view");
      assert.equal((await r.view(two.id)).body, "two letters");
    });

    const replace = (id: string) => xml("replace", { xmlns: NS.correct, id });

    it("applies Juliet's corrections of her message (body, edited, a message-update with the view); a correction by the nurse, or of the account's message, changes nothing; none is a message", async () => {
      const r = await account();
      // Juliet may see its presence: her receipt below goes to such a sender only (XEP-0184 §8).
      await grantPresence(gw, r.jid.split("@")[0]!, juliet);
      const ours = await r.send({ to: JULIET, body: "swear by the moon" });
      await arrived(juliet, r, ours);
      const hers = await inbound(juliet, r, "O, swear not by the moon");

      // The nurse forges a correction of Juliet's message: nothing changes.
      await say(nurse, r.jid, "forged by the nurse", replace(hers.stanzaId));
      const nurseSentinel = await userSentinel(nurse, r);
      let evs = await r.events();
      assert.deepEqual(r.updatesOf(evs, hers.id), [], "no update from the nurse's correction");
      let v = await r.view(hers.id);
      assert.deepEqual([v.body, v.edited], ["O, swear not by the moon", null]);

      // Juliet corrects it: the stored message changes, and a message-update carries its view.
      // She asks for a receipt of her correction (XEP-0184 §5.4: any content message may).
      const c1 = await say(juliet, r.jid, "the inconstant moon", replace(hers.stanzaId), xml("request", { xmlns: NS.receipts }));
      const u1 = await r.until("the first correction's update", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.body === "the inconstant moon");
      // Read, so answered: under the correction's own stanza id.
      await juliet.waitFor((s) => s.is("message") && s.attrs.from === r.jid && s.getChild("received", NS.receipts)?.attrs.id === c1, 5000);
      assertIso(u1.data.edited, "edited in the update");
      v = await r.view(hers.id);
      assert.deepEqual(u1.data, v as unknown as Record<string, unknown>, "the update's data is the message's view");
      assert.equal(v.body, "the inconstant moon");
      assert.equal(v.direction, "in");
      const c2 = await say(juliet, r.jid, "that monthly changes", replace(hers.stanzaId));
      const u2 = await r.until("the second correction's update", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.body === "that monthly changes");
      assert.ok(Date.parse(String(u2.data.edited)) >= Date.parse(String(u1.data.edited)), "edited moves on");

      // Juliet "corrects" the account's message: only its sender may.
      await say(juliet, r.jid, "forged by Juliet", replace(ours));
      const julietSentinel = await userSentinel(juliet, r);
      evs = await r.events();
      assert.deepEqual(r.updatesOf(evs, ours), [], "no update of the account's message");
      const oursNow = await r.view(ours);
      assert.deepEqual([oursNow.body, oursNow.edited], ["swear by the moon", null]);
      assert.deepEqual(
        r.updatesOf(evs, hers.id).map((e) => e.data.body),
        ["the inconstant moon", "that monthly changes"],
        "one update per applied correction",
      );
      assert.deepEqual(r.messageIds(evs), [hers.stanzaId, nurseSentinel, julietSentinel], `no correction is a message (corrections ${c1}, ${c2})`);
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [idOf(evs, julietSentinel), hers.id, ours],
        "only Juliet's sentinel besides the two messages",
      );
      assert.deepEqual(
        (await r.history(NURSE)).map((m) => m.id),
        [idOf(evs, nurseSentinel)],
        "the nurse's forged correction is not stored: only her sentinel",
      );
      assert.equal((await r.view(hers.id)).body, "that monthly changes");
    });

    const retract = (id: string) => [
      xml("retract", { xmlns: NS.retract, id }),
      xml("fallback", { xmlns: NS.fallback, for: NS.retract }),
      xml("store", { xmlns: NS.hints }),
    ];
    const RETRACT_FALLBACK = "This person attempted to retract a previous message, but it's unsupported by your client.";

    it("applies Juliet's retraction of her message (a tombstone and a message-update); the nurse's retraction of it, and Juliet's of the account's message, change nothing; none is a message", async () => {
      const r = await account();
      const ours = await r.send({ to: JULIET, body: "parting is such sweet sorrow" });
      await arrived(juliet, r, ours);
      const hers = await inbound(juliet, r, "good night, good night", xml("x", { xmlns: NS.oob }, xml("url", {}, "https://example.org/moon.jpg")));
      assert.equal((await r.view(hers.id)).attachments.length, 1);

      await say(nurse, r.jid, RETRACT_FALLBACK, ...retract(hers.stanzaId));
      const nurseSentinel = await userSentinel(nurse, r);
      await say(juliet, r.jid, RETRACT_FALLBACK, ...retract(ours));
      const julietSentinel = await userSentinel(juliet, r);
      let evs = await r.events();
      assert.deepEqual(r.updatesOf(evs, hers.id), [], "the nurse cannot retract Juliet's message");
      assert.deepEqual(r.updatesOf(evs, ours), [], "Juliet cannot retract the account's message");
      const intact = await r.view(hers.id);
      assert.deepEqual([intact.body, intact.retracted, intact.attachments.length], ["good night, good night", null, 1]);
      const oursNow = await r.view(ours);
      assert.deepEqual([oursNow.body, oursNow.retracted], ["parting is such sweet sorrow", null]);

      await say(juliet, r.jid, RETRACT_FALLBACK, ...retract(hers.stanzaId));
      const u = await r.until("the retraction's update", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.retracted != null);
      assertIso(u.data.retracted, "retracted in the update");
      assert.equal(u.data.body, null, "the update's view has no body");
      assert.deepEqual(u.data.attachments, [], "nor attachments");
      const tomb = await r.view(hers.id);
      assert.deepEqual([tomb.body, tomb.retracted, tomb.attachments], [null, u.data.retracted, []]);
      evs = await r.events();
      assert.equal(r.updatesOf(evs, hers.id).length, 1);
      assert.deepEqual(r.messageIds(evs), [hers.stanzaId, nurseSentinel, julietSentinel], "no retraction is a message");
      assert.ok(!evs.some((e) => JSON.stringify(e.data).includes(RETRACT_FALLBACK)), "the fallback text is nowhere in the log");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [idOf(evs, julietSentinel), hers.id, ours],
        "Juliet's sentinel, the tombstone and the account's message, nothing else",
      );
      assert.deepEqual(
        (await r.history(NURSE)).map((m) => m.id),
        [idOf(evs, nurseSentinel)],
        "only the nurse's sentinel",
      );
    });

    const reactions = (id: string, emojis: string[]) => [xml("reactions", { xmlns: NS.reactions, id }, ...emojis.map((e) => xml("reaction", {}, e))), xml("store", { xmlns: NS.hints })];

    it("applies Juliet's reactions to the account's and to her own message (replaced by her next set, removed by an empty one), beside the account's own; the nurse's change nothing; none is a message", async () => {
      const r = await account();
      const ours = await r.send({ to: JULIET, body: "what light through yonder window breaks" });
      await arrived(juliet, r, ours);
      const hers = await inbound(juliet, r, "ay me");
      const reactedTo = (id: string, what: string, expected: Record<string, string[]>) =>
        r.until(what, (e) => e.event === "message-update" && e.data.id === id && isDeepStrictEqual(sortedReactions(e.data.reactions), expected));

      await say(juliet, r.jid, null, ...reactions(ours, ["👍", "❤️"]));
      await reactedTo(ours, "Juliet's first reactions", { "👍": [JULIET], "❤️": [JULIET] });
      await say(juliet, r.jid, null, ...reactions(ours, ["🎉"]));
      await reactedTo(ours, "Juliet's next set replaces the first", { "🎉": [JULIET] });
      const mine = await r.call("POST", `/v1/messages/${ours}/reactions`, { emojis: ["🎉", "🌹"] });
      assert.equal(mine.status, 200, mine.text);
      assert.deepEqual(sortedReactions(mine.body.reactions), { "🎉": [JULIET, r.jid].sort(), "🌹": [r.jid] }, "both parties' reactions");
      await say(juliet, r.jid, null, ...reactions(hers.stanzaId, ["😂"]));
      await reactedTo(hers.id, "Juliet's reaction to her own message", { "😂": [JULIET] });

      await say(nurse, r.jid, null, ...reactions(ours, ["🤡"]));
      await say(nurse, r.jid, null, ...reactions(hers.stanzaId, ["🤡"]));
      const nurseSentinel = await userSentinel(nurse, r);
      let evs = await r.events();
      assert.ok(!evs.some((e) => JSON.stringify(e.data).includes("🤡")), "the nurse's reactions are nowhere");
      assert.deepEqual(sortedReactions((await r.view(ours)).reactions), { "🎉": [JULIET, r.jid].sort(), "🌹": [r.jid] });
      assert.deepEqual((await r.view(hers.id)).reactions, { "😂": [JULIET] });

      await say(juliet, r.jid, null, ...reactions(ours, []));
      await reactedTo(ours, "Juliet's empty set removes hers", { "🎉": [r.jid], "🌹": [r.jid] });
      await say(juliet, r.jid, null, ...reactions(hers.stanzaId, []));
      await reactedTo(hers.id, "and from her own message", {});
      assert.deepEqual((await r.view(hers.id)).reactions, {});
      evs = await r.events();
      assert.deepEqual(r.messageIds(evs), [hers.stanzaId, nurseSentinel], "no reaction is a message");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [hers.id, ours],
      );
      assert.deepEqual(
        (await r.history(NURSE)).map((m) => m.id),
        [idOf(evs, nurseSentinel)],
      );
    });

    const marker = (name: "received" | "displayed" | "acknowledged", id: string) => xml(name, { xmlns: NS.markers, id });

    it("moves the account's message's marker forward only on Juliet's markers (received < displayed < acknowledged); the nurse's markers change nothing; none is a message", async () => {
      const r = await account();
      const first = await r.send({ to: JULIET, body: "it is the east" });
      const second = await r.send({ to: JULIET, body: "and Juliet is the sun" });
      await arrived(juliet, r, first);
      await arrived(juliet, r, second);
      const markerIs = (id: string, value: string, what: string) => r.until(what, (e) => e.event === "message-update" && e.data.id === id && e.data.marker === value);

      await say(nurse, r.jid, null, marker("displayed", first));
      await say(nurse, r.jid, null, marker("acknowledged", second));
      const nurseSentinel = await userSentinel(nurse, r);
      let evs = await r.events();
      assert.deepEqual([...r.updatesOf(evs, first), ...r.updatesOf(evs, second)], [], "no update from the nurse's markers");
      assert.equal((await r.view(first)).marker, null);
      assert.equal((await r.view(second)).marker, null);

      await say(juliet, r.jid, null, marker("received", first));
      await markerIs(first, "received", "received");
      await say(juliet, r.jid, null, marker("displayed", first));
      await markerIs(first, "displayed", "displayed");
      // A later "received" does not lower it.
      await say(juliet, r.jid, null, marker("received", first));
      const julietSentinel = await userSentinel(juliet, r);
      assert.equal((await r.view(first)).marker, "displayed", "not lowered");
      evs = await r.events();
      assert.deepEqual(
        r.updatesOf(evs, first).map((e) => e.data.marker),
        ["received", "displayed"],
        "one update per step forward",
      );
      await say(juliet, r.jid, null, marker("acknowledged", first));
      await markerIs(first, "acknowledged", "acknowledged");
      assert.equal((await r.view(first)).marker, "acknowledged");
      // Straight to displayed.
      await say(juliet, r.jid, null, marker("displayed", second));
      await markerIs(second, "displayed", "the second message displayed");
      assert.equal((await r.view(second)).marker, "displayed");

      evs = await r.events();
      assert.deepEqual(r.messageIds(evs), [nurseSentinel, julietSentinel], "no marker is a message");
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [idOf(evs, julietSentinel), second, first],
        "only Juliet's sentinel besides the two messages",
      );
      assert.deepEqual(
        (await r.history(NURSE)).map((m) => m.id),
        [idOf(evs, nurseSentinel)],
      );
    });

    it("marks every message up to the one Juliet's marker names (XEP-0333 §Protocol Format), one update each in order; an older, lower marker changes nothing", async () => {
      const r = await account();
      const sent = [await r.send({ to: JULIET, body: "but soft" }), await r.send({ to: JULIET, body: "what light" }), await r.send({ to: JULIET, body: "through yonder window" })];
      for (const id of sent) await arrived(juliet, r, id);
      const updatedBefore = async () => (await r.events()).filter((e) => e.event === "message-update").length;
      const before = await updatedBefore();

      await say(juliet, r.jid, null, marker("displayed", sent[2]!));
      await r.until("the last message displayed", (e) => e.event === "message-update" && e.data.id === sent[2] && e.data.marker === "displayed");
      // A received marker for the first: lower than what it has, so nothing.
      await say(juliet, r.jid, null, marker("received", sent[0]!));
      const julietSentinel = await userSentinel(juliet, r);
      const evs = await r.events();
      assert.deepEqual(
        evs.filter((e) => e.event === "message-update").slice(before).map((e) => [e.data.id, e.data.marker]),
        sent.map((id) => [id, "displayed"]),
        "one update per message up to the one named, in order, and none for the lower marker",
      );
      for (const id of sent) assert.equal((await r.view(id)).marker, "displayed", id);
      assert.deepEqual(r.messageIds(evs), [julietSentinel], "no marker is a message");
    });

    it("applies Juliet's retraction and reaction naming her message by its XEP-0359 origin-id (XEP-0424, XEP-0444); reacts by her origin-id and marks displayed by her stanza id, in her thread; emoji without U+FE0F are emoji", async () => {
      const r = await account();
      // XEP-0424 §Use Case: a message with id 'wrong-recipient-1' and origin-id 'origin-id-1' (unique here).
      const originId = uniq("origin-id-");
      const thread = uniq("thread-");
      const hers = await inbound(juliet, r, "Have not saints lips, and holy palmers too?", xml("thread", {}, thread), xml("markable", { xmlns: NS.markers }), xml("origin-id", { xmlns: NS.sid, id: originId }));
      assert.notEqual(hers.stanzaId, originId);

      // The account's reactions name it by the origin-id (XEP-0444 §Using the correct ID).
      let mark = juliet.stanzas.length;
      const reacted = await r.call("POST", `/v1/messages/${hers.id}/reactions`, { emojis: ["❤", "☺"] });
      assert.equal(reacted.status, 200, reacted.text);
      assert.deepEqual(sortedReactions(reacted.body.reactions), { "❤": [r.jid], "☺": [r.jid] });
      const rs = await next(juliet, r, mark, (x) => x.getChild("reactions", NS.reactions));
      assert.deepEqual(rs.getChildren("reactions", NS.reactions).map((x) => x.attrs), [{ xmlns: NS.reactions, id: originId }], rs.toString());
      assert.deepEqual(elements(rs.getChild("reactions", NS.reactions)).map((c) => c.text()), ["❤", "☺"], rs.toString());
      for (const [what, emojis] of [["a digit", ["1"]], ["a letter", ["a"]], ["two hearts", ["❤❤"]]] as const) {
        assertRefused(await r.call("POST", `/v1/messages/${hers.id}/reactions`, { emojis }), 400, "validation-failed", what);
      }

      // The displayed marker names its stanza id (XEP-0333: "the 'id' of the message") and carries its thread.
      mark = juliet.stanzas.length;
      const shown = await r.call("POST", `/v1/messages/${hers.id}/displayed`);
      assert.equal(shown.status, 204, shown.text);
      const d = await next(juliet, r, mark, (x) => x.getChild("displayed", NS.markers));
      assert.deepEqual(d.getChildren("displayed", NS.markers).map((x) => x.attrs), [{ xmlns: NS.markers, id: hers.stanzaId }], d.toString());
      assert.deepEqual(d.getChildren("thread").map((t) => t.text()), [thread], `the marker carries the thread: ${d.toString()}`);

      // Juliet reacts and retracts by the origin-id.
      await say(juliet, r.jid, null, ...reactions(originId, ["✔"]));
      await r.until("Juliet's reaction by the origin-id", (e) => e.event === "message-update" && e.data.id === hers.id && isDeepStrictEqual(sortedReactions(e.data.reactions), { "✔": [JULIET], "❤": [r.jid], "☺": [r.jid] }));
      await say(juliet, r.jid, RETRACT_FALLBACK, ...retract(originId));
      const u = await r.until("Juliet's retraction by the origin-id", (e) => e.event === "message-update" && e.data.id === hers.id && e.data.retracted != null);
      assert.equal(u.data.body, null);
      const tomb = await r.view(hers.id);
      assert.deepEqual([tomb.body, tomb.retracted], [null, u.data.retracted]);
      assert.deepEqual(
        (await r.history(JULIET)).map((m) => m.id),
        [hers.id],
        "neither the reaction nor the retraction is a message",
      );
    });
  });
}
