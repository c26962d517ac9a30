// POST /v1/messages end to end: HTTP -> gateway -> Postgres -> Prosody -> a real XMPP client.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import xml from "@xmpp/xml";
import type { XmppUser } from "../../scripts/harness/xmpp-user.js";
import { waitFor, type TestGateway } from "../helpers/gateway.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";

describe("messages", () => {
  let world: XmppWorld<"juliet">;
  let gw: TestGateway;
  let juliet: XmppUser;
  let romeoToken: string;
  let tybaltToken: string;

  before(async () => {
    world = await startWorld("prosody", { juliet: "balcony" });
    ({ gw } = world);
    juliet = world.users.juliet;
    await gw.createAccount("romeo");
    await gw.createAccount("tybalt");
    romeoToken = gw.token("romeo");
    tybaltToken = gw.token(`tybalt@${gw.domain}`);
  });
  after(() => world?.stop());

  const post = (body: unknown, headers: Record<string, string> = {}, token = romeoToken) => gw.request("POST", "/v1/messages", { token, body, headers });

  it("delivers from, to, type, every xml:lang body, subject, thread, receipt request and origin-id intact", async () => {
    const r = await post({
      to: "juliet@localhost",
      type: "chat",
      lang: "en",
      body: { en: "But soft! <what> light & \"window\" breaks?", fr: "Mais doucement ! Quelle lumière ?", ja: "窓から差し込む光 🌅" },
      subject: "Balcony",
      thread: "act2-scene2",
      receipt: true,
    });
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.id, /^[0-9a-f-]{36}$/);
    assert.ok(["queued", "sent"].includes(r.body.status));
    const m = await juliet.waitFor((s) => s.is("message") && s.attrs.id === r.body.id);
    assert.equal(m.attrs.from, `romeo@${gw.domain}`);
    assert.equal(m.attrs.to, "juliet@localhost");
    assert.equal(m.attrs.type, "chat");
    assert.equal(m.attrs["xml:lang"], "en");
    const bodies = Object.fromEntries(m.getChildren("body").map((b) => [b.attrs["xml:lang"], b.text()]));
    assert.deepEqual(bodies, { en: "But soft! <what> light & \"window\" breaks?", fr: "Mais doucement ! Quelle lumière ?", ja: "窓から差し込む光 🌅" });
    assert.equal(m.getChildText("subject"), "Balcony");
    assert.equal(m.getChildText("thread"), "act2-scene2");
    assert.ok(m.getChild("request", "urn:xmpp:receipts"), "receipt request");
    assert.equal(m.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id, r.body.id);
  });

  it("marks a message delivered when the XEP-0184 receipt comes back, and sent before that", async () => {
    const r = await post({ to: "juliet@localhost/balcony", body: "receipt please", receipt: true });
    assert.equal(r.status, 202);
    const m = await juliet.waitFor((s) => s.attrs.id === r.body.id);
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken })).body.status === "sent", 5000, "status sent");
    await juliet.send(xml("message", { to: m.attrs.from, id: "rcpt-1" }, xml("received", { xmlns: "urn:xmpp:receipts", id: r.body.id })));
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken })).body.status === "delivered", 5000, "status delivered");
    const got = await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken });
    assert.equal(got.body.to, "juliet@localhost/balcony");
    assert.equal(got.body.body, "receipt please");
    const events = await gw.request("GET", "/v1/events?since=0", { token: romeoToken, headers: { accept: "application/json" } });
    assert.ok(events.body.items.some((e: { event: string; data: { id: string } }) => e.event === "receipt" && e.data.id === r.body.id));
  });

  it("marks a message failed when the server bounces it, with the stanza error", async () => {
    const r = await post({ to: "nobody-here@localhost", body: "hello?" });
    assert.equal(r.status, 202);
    await waitFor(async () => (await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken })).body.status === "failed", 5000, "status failed");
    const got = await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken });
    assert.equal(got.body.error.condition, "service-unavailable");
    const events = await gw.request("GET", "/v1/events?since=0", { token: romeoToken, headers: { accept: "application/json" } });
    assert.ok(events.body.items.some((e: { event: string; data: { id: string; status: string } }) => e.event === "message-status" && e.data.id === r.body.id && e.data.status === "failed"));
  });

  it("sends once for a retried Idempotency-Key, and refuses the key with another payload", async () => {
    const body = { to: "juliet@localhost", body: "exactly once" };
    const key = `key-${Date.now()}`;
    const first = await post(body, { "idempotency-key": key });
    assert.equal(first.status, 202, first.text);
    const retries = await Promise.all(Array.from({ length: 5 }, () => post({ body: "exactly once", to: "juliet@localhost" }, { "idempotency-key": key })));
    for (const r of retries) {
      assert.equal(r.status, 202);
      assert.equal(r.body.id, first.body.id);
      assert.equal(r.body.createdAt, first.body.createdAt);
    }
    const concurrentKey = `ckey-${Date.now()}`;
    const concurrent = await Promise.all(Array.from({ length: 8 }, () => post({ to: "juliet@localhost", body: "concurrent once" }, { "idempotency-key": concurrentKey })));
    // Every request accepted (a set of one id would also come out of 8 failures), all with one id.
    assert.deepEqual(concurrent.map((r) => r.status), Array<number>(8).fill(202), concurrent.map((r) => r.text).join("\n"));
    assert.equal(new Set(concurrent.map((r) => r.body.id)).size, 1);
    assert.match(concurrent[0]!.body.id, /^[0-9a-f-]{36}$/);
    const changed = await post({ to: "juliet@localhost", body: "something else" }, { "idempotency-key": key });
    assert.equal(changed.status, 422);
    assert.equal(changed.body.code, "idempotency-key-reused");
    // A marker message: once it arrived, anything sent before it has arrived too (one link, in order).
    const marker = await post({ to: "juliet@localhost", body: "marker" });
    await juliet.waitFor((s) => s.attrs.id === marker.body.id);
    assert.equal(juliet.stanzas.filter((s) => s.getChildText("body") === "exactly once").length, 1);
    assert.equal(juliet.stanzas.filter((s) => s.getChildText("body") === "concurrent once").length, 1);
  });

  it("refuses text that is not XML character data with 400, sends nothing, and keeps the link up", async () => {
    const bad = ["ctrl \u0001 char", "nul \u0000", "escape \u001b[31m", "lone \ud800 surrogate", "lone low \udc00", "ffff \uffff"];
    for (const text of bad) {
      const r = await post({ to: "juliet@localhost", body: text });
      assert.equal(r.status, 400, `${JSON.stringify(text)}: ${r.text}`);
      assert.equal(r.body.code, "invalid-text");
      assert.equal(r.body.field, "body.body");
      assert.match(r.headers.get("content-type") ?? "", /application\/problem\+json/);
    }
    const subj = await post({ to: "juliet@localhost", subject: { en: "x\u0007" } });
    assert.equal(subj.status, 400);
    const crlf = await post({ to: "juliet@localhost", body: "line one\r\nline two\rthree\ttabbed" });
    assert.equal(crlf.status, 202);
    const crlfGot = await juliet.waitFor((s) => s.attrs.id === crlf.body.id);
    assert.equal(crlfGot.getChildText("body"), "line one\r\nline two\rthree\ttabbed", "CR and tab arrive unchanged");
    const injection = await post({ to: "juliet@localhost", body: "</body><iq type='set' id='x'><query/></iq><body>" });
    assert.equal(injection.status, 202);
    const m = await juliet.waitFor((s) => s.attrs.id === injection.body.id);
    assert.equal(m.getChildText("body"), "</body><iq type='set' id='x'><query/></iq><body>");
    const ready = await gw.request("GET", "/readyz", { token: null });
    assert.equal(ready.status, 200);
    assert.equal(juliet.stanzas.filter((s) => /ctrl|nul |escape|lone|ffff/.test(s.getChildText("body") ?? "")).length, 0);
  });

  it("refuses empty text and DEL/C1 controls with 400 naming the field, takes any thread text, sends nothing refused", async () => {
    const refused: [unknown, string | null, string][] = [
      // API.md: at least one of body, subject, state; an empty text is none of them.
      [{ to: "juliet@localhost", body: "" }, "validation-failed", "body.body"],
      [{ to: "juliet@localhost", body: { en: "" } }, "validation-failed", "body.body"],
      [{ to: "juliet@localhost", body: { en: "refused: fr empty", fr: "" } }, "validation-failed", "body.body"],
      [{ to: "juliet@localhost", subject: "" }, "validation-failed", "body.subject"],
      [{ to: "juliet@localhost", subject: { en: "" }, state: "active" }, "validation-failed", "body.subject"],
      // API.md: control characters are refused, never sent; DEL and C1 are XML Chars, but controls.
      [{ to: "juliet@localhost", body: "refused: del \u007f" }, "invalid-text", "body.body"],
      [{ to: "juliet@localhost", body: "refused: c1 \u0080" }, "invalid-text", "body.body"],
      [{ to: "juliet@localhost", body: "refused: nel \u0085" }, "invalid-text", "body.body"],
      [{ to: "juliet@localhost", body: { en: "refused: nel \u0085" } }, "invalid-text", "body.body"],
      [{ to: "juliet@localhost", body: "refused: csi \u009b[31m" }, "invalid-text", "body.body"],
      [{ to: "juliet@localhost", subject: "refused: \u009f" }, "invalid-text", "body.subject"],
      [{ to: "juliet@localhost", body: "refused: thread", thread: "t\u0085" }, "invalid-text", "body.thread"],
      [{ to: "juliet@localhost", body: "refused: thread", thread: "t\u0001" }, "invalid-text", "body.thread"],
      [{ to: "juliet@localhost", body: "refused: thread", thread: "" }, "validation-failed", "body.thread"],
      [{ to: "juliet@localhost", body: "refused: thread", thread: "t".repeat(257) }, "validation-failed", "body.thread"],
    ];
    for (const [body, code, field] of refused) {
      const r = await post(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.deepEqual([code === null ? null : r.body.code, r.body.field], [code, field], JSON.stringify(body));
    }
    // The same fields of a batch item are refused alike.
    const batch = await gw.request("POST", "/v1/messages/batch", { token: romeoToken, body: { messages: [{ to: "juliet@localhost", body: "" }, { to: "juliet@localhost", body: "refused: \u007f" }] } });
    assert.deepEqual(
      (batch.body.results as { code: string; field: string }[]).map((x) => [x.code, x.field]),
      [["validation-failed", "body.messages.0.body"], ["invalid-text", "body.messages.1.body"]],
    );
    // Other text fields keep their own rules: a room's subject may be cleared with "" (XEP-0045
    // §8.1), so "" passes validation (this room is not joined: 404), while a control is refused.
    const cleared = await gw.request("PUT", "/v1/rooms/verona@conference.localhost/subject", { token: romeoToken, body: { subject: "" } });
    assert.deepEqual([cleared.status, cleared.body.code], [404, "room-not-joined"], cleared.text);
    const ctl = await gw.request("PUT", "/v1/rooms/verona@conference.localhost/subject", { token: romeoToken, body: { subject: "\u0085" } });
    assert.deepEqual([ctl.status, ctl.body.code, ctl.body.field], [400, "invalid-text", "body.subject"], ctl.text);
    // RFC 6121 §5.2.5: a thread id is opaque character data: spaces, punctuation, any script, up to 256.
    for (const thread of ["act 2, scene 2 — the balcony 🌙", "<thread> & 'quotes'", "é".repeat(256)]) {
      const r = await post({ to: "juliet@localhost", body: "threaded", thread });
      assert.equal(r.status, 202, r.text);
      const m = await juliet.waitFor((st) => st.attrs.id === r.body.id);
      assert.equal(m.getChildText("thread"), thread);
    }
    // The last accepted message arrived after every refused one would have: none did.
    assert.equal(juliet.stanzas.filter((st) => /^refused|^$/.test(st.getChildText("body") ?? "-")).length, 0);
    assert.equal(juliet.stanzas.filter((st) => st.getChild("subject") !== undefined && /^$|refused/.test(st.getChildText("subject") ?? "")).length, 0);
  });

  it("validates the request: JIDs, required content, unknown fields, types", async () => {
    const cases: [unknown, string, string][] = [
      [{ to: "not a jid@@", body: "x" }, "invalid-jid", "body.to"],
      // Short or empty, still a JID's question (RFC 7622), not the schema's.
      [{ to: "", body: "x" }, "invalid-jid", "body.to"],
      [{ to: "@", body: "x" }, "invalid-jid", "body.to"],
      [{ to: "juliet@localhost" }, "validation-failed", "body.body"],
      [{ to: "juliet@localhost", body: "x", colour: "red" }, "validation-failed", "body.colour"],
      [{ to: "juliet@localhost", body: "x", type: "shout" }, "validation-failed", "body.type"],
      // A group message needs a room's bare JID (that the account joined: test/xmpp/rooms.test.ts).
      [{ to: "lobby@conference.localhost/nick", body: "x", type: "groupchat" }, "invalid-jid", "body.to"],
      [{ body: "x" }, "validation-failed", "body.to"],
      [{ to: "juliet@localhost", body: "x", lang: "not a lang" }, "validation-failed", "body.lang"],
      // JSON bodies are not type-coerced: null is not "", 1 is not "1".
      [{ to: "juliet@localhost", body: null }, "validation-failed", "body.body"],
      [{ to: "juliet@localhost", body: { en: 1 } }, "validation-failed", "body.body"],
      [{ to: 12345, body: "x" }, "validation-failed", "body.to"],
      // Language maps take language tags only (no other keys with arbitrary values).
      [{ to: "juliet@localhost", body: { "not a tag": "x" } }, "validation-failed", "body.body"],
    ];
    for (const [body, code, field] of cases) {
      const r = await post(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.code, code, JSON.stringify(body));
      assert.equal(r.body.field, field, JSON.stringify(body));
    }
    const broken = await gw.request("POST", "/v1/messages", { token: romeoToken, raw: "{not json", headers: { "content-type": "application/json" } });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.code, "validation-failed");
    // RFC 9110 §15.5.16: a body the route does not take is 415, not 400.
    const xmlBody = await gw.request("POST", "/v1/messages", { token: romeoToken, raw: "<message/>", headers: { "content-type": "application/xml" } });
    assert.equal(xmlBody.status, 415, xmlBody.text);
    assert.equal(xmlBody.body.code, "unsupported-media-type");
    assert.equal(xmlBody.body.field, "headers.content-type");
  });

  it("refuses a correction (replace) that carries more than to, body, lang and the original's type: 400 naming the field, alone and in a batch; the message keeps its text", async () => {
    const original = await post({ to: "juliet@localhost", body: "parting is such", thread: "act2" });
    assert.equal(original.status, 202, original.text);
    const replace = original.body.id as string;
    const fix = { to: "juliet@localhost", body: "never taken", replace };
    const cases: [Record<string, unknown>, string][] = [
      [{ subject: "Balcony" }, "body.subject"],
      [{ thread: "act3" }, "body.thread"],
      [{ attachments: [{ url: "https://files.example/rose.jpg" }] }, "body.attachments"],
      [{ reply: { id: replace } }, "body.reply"],
      [{ markable: false }, "body.markable"],
      [{ receipt: true }, "body.receipt"],
      [{ state: "active" }, "body.state"],
      [{ type: "normal" }, "body.type"],
    ];
    for (const [extra, field] of cases) {
      const r = await post({ ...fix, ...extra });
      assert.deepEqual([r.status, r.body.code, r.body.field], [400, "validation-failed", field], `${JSON.stringify(extra)}: ${r.text}`);
    }
    const batch = await gw.request("POST", "/v1/messages/batch", { token: romeoToken, body: { messages: [{ ...fix, thread: "act3" }, { ...fix, type: "headline" }] } });
    assert.equal(batch.status, 200, batch.text);
    assert.deepEqual(batch.body.results.map((r: { code: string; field: string }) => [r.code, r.field]), [
      ["validation-failed", "body.messages.0.thread"],
      ["validation-failed", "body.messages.1.type"],
    ]);
    assert.equal((await gw.request("GET", `/v1/messages/${replace}`, { token: romeoToken })).body.body, "parting is such");
    // The sentinel: what a correction carries, with the original's type named, is taken.
    const taken = await post({ ...fix, type: "chat", lang: "en", body: "sweet sorrow" });
    assert.equal(taken.status, 202, taken.text);
    const view = await gw.request("GET", `/v1/messages/${replace}`, { token: romeoToken });
    assert.deepEqual([view.body.body, view.body.thread], ["sweet sorrow", "act2"]);
  });

  it("answers 404 for a message id that is not one of ours, UUID or not", async () => {
    for (const id of ["does-not-exist", "00000000-0000-4000-8000-000000000000"]) {
      for (const [method, path, body] of [
        ["GET", `/v1/messages/${id}`, undefined],
        ["DELETE", `/v1/messages/${id}`, undefined],
        ["POST", `/v1/messages/${id}/reactions`, { emojis: ["👍"] }],
        ["POST", `/v1/messages/${id}/displayed`, undefined],
      ] as const) {
        const r = await gw.request(method, path, { token: romeoToken, body });
        assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
        assert.equal(r.body.code, "message-not-found", `${method} ${path}`);
      }
    }
  });

  it("keeps accounts apart: another account's message id is not found", async () => {
    const r = await post({ to: "juliet@localhost", body: "private" });
    const other = await gw.request("GET", `/v1/messages/${r.body.id}`, { token: tybaltToken });
    assert.equal(other.status, 404);
    assert.equal(other.body.code, "message-not-found");
    const mine = await gw.request("GET", `/v1/messages/${r.body.id}`, { token: romeoToken });
    assert.equal(mine.status, 200);
    const hist = await gw.request("GET", "/v1/messages?with=juliet@localhost", { token: tybaltToken });
    assert.equal(hist.status, 200);
    assert.equal(hist.body.items.length, 0);
  });

  it("lists a conversation in both directions, newest first, with cursors", async () => {
    await gw.createAccount("benvolio");
    const tok = gw.token("benvolio");
    for (const text of ["one", "two", "three"]) {
      const r = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", body: text } });
      await juliet.waitFor((s) => s.attrs.id === r.body.id);
    }
    await juliet.send(xml("message", { to: `benvolio@${gw.domain}`, type: "chat", id: "in-4" }, xml("body", {}, "four")));
    await waitFor(async () => (await gw.request("GET", "/v1/messages?with=juliet@localhost", { token: tok })).body.items.length === 4, 5000, "4 messages");
    const page1 = await gw.request("GET", "/v1/messages?with=juliet@localhost&limit=3", { token: tok });
    assert.deepEqual(page1.body.items.map((m: { body: string }) => m.body), ["four", "three", "two"]);
    assert.equal(page1.body.items[0].direction, "in");
    assert.equal(page1.body.items[0].from, "juliet@localhost/balcony");
    // API.md's statuses only: an inbound message reached the account, so it reads delivered.
    const [four, ...outbound] = page1.body.items as { direction: string; status: string }[];
    assert.deepEqual([four!.direction, four!.status], ["in", "delivered"]);
    for (const m of outbound) assert.ok(["queued", "sent"].includes(m.status), m.status);
    const inbound = await gw.request("GET", `/v1/messages/${page1.body.items[0].id}`, { token: tok });
    assert.deepEqual([inbound.status, inbound.body.status, inbound.body.direction, inbound.body.marker], [200, "delivered", "in", null]);
    const page2 = await gw.request("GET", `/v1/messages?with=juliet@localhost&limit=3&before=${page1.body.nextCursor}`, { token: tok });
    assert.deepEqual(page2.body.items.map((m: { body: string }) => m.body), ["one"]);
    assert.equal(page2.body.nextCursor, null);
    // A page that holds the rest exactly is the last one: no cursor to an empty page.
    const whole = await gw.request("GET", "/v1/messages?with=juliet@localhost&limit=4", { token: tok });
    assert.equal(whole.body.items.length, 4);
    assert.equal(whole.body.nextCursor, null);
    const bad = await gw.request("GET", "/v1/messages?with=juliet@localhost&before=abc", { token: tok });
    assert.equal(bad.status, 400);
  });

  it("pages forward with after: the messages right after the cursor, newest first, nextCursor going on; no chat state alone", async () => {
    await gw.createAccount("paris");
    const tok = gw.token("paris");
    const send = async (body: Record<string, unknown>) => {
      const r = await gw.request("POST", "/v1/messages", { token: tok, body: { to: "juliet@localhost", ...body } });
      assert.equal(r.status, 202, r.text);
      await juliet.waitFor((st) => st.attrs.id === r.body.id);
      return r.body.id as string;
    };
    for (const text of ["m1", "m2", "m3"]) await send({ body: text });
    const typing = await send({ state: "composing" });
    for (const text of ["m4", "m5", "m6"]) await send({ body: text });
    const list = async (query: string) => {
      const r = await gw.request("GET", `/v1/messages?with=juliet@localhost&${query}`, { token: tok });
      assert.equal(r.status, 200, r.text);
      return [r.body.items.map((m: { body: string }) => m.body), r.body.nextCursor] as [string[], string | null];
    };
    const all = await gw.request("GET", "/v1/messages?with=juliet@localhost", { token: tok });
    // XEP-0085: a chat state alone is a notification, not a message of the history.
    assert.deepEqual(all.body.items.map((m: { body: string }) => m.body), ["m6", "m5", "m4", "m3", "m2", "m1"]);
    const c = Object.fromEntries(all.body.items.map((m: { body: string; cursor: string }) => [m.body, m.cursor])) as Record<string, string>;
    const got = await gw.request("GET", `/v1/messages/${typing}`, { token: tok });
    assert.deepEqual([got.status, got.body.state, got.body.body], [200, "composing", null], "still a message one can ask about");

    assert.deepEqual(await list(`after=${c.m2}&limit=2`), [["m4", "m3"], c.m4]);
    assert.deepEqual(await list(`after=${c.m4}&limit=2`), [["m6", "m5"], null]);
    // Both: the window between them, from after on; nextCursor is the next after (same before).
    assert.deepEqual(await list(`before=${c.m6}&after=${c.m1}&limit=2`), [["m3", "m2"], c.m3]);
    assert.deepEqual(await list(`before=${c.m6}&after=${c.m3}&limit=2`), [["m5", "m4"], null]);
    // before alone, as it was: back from the cursor.
    assert.deepEqual(await list(`before=${c.m5}&limit=2`), [["m4", "m3"], c.m3]);
  });

  it("a late error bounce leaves a delivered message delivered; one still unconfirmed fails", async () => {
    const delivered = await post({ to: "juliet@localhost/balcony", body: "delivered, then bounced?", receipt: true });
    const sent = await post({ to: "juliet@localhost/balcony", body: "bounced" });
    const m = await juliet.waitFor((st) => st.attrs.id === delivered.body.id);
    await juliet.waitFor((st) => st.attrs.id === sent.body.id);
    const get = async (id: string) => (await gw.request("GET", `/v1/messages/${id}`, { token: romeoToken })).body;
    await juliet.send(xml("message", { to: m.attrs.from, id: "rcpt-late" }, xml("received", { xmlns: "urn:xmpp:receipts", id: delivered.body.id })));
    await waitFor(async () => (await get(delivered.body.id)).status === "delivered", 5000, "status delivered");
    const bounce = (id: string) =>
      juliet.send(xml("message", { to: m.attrs.from, type: "error", id }, xml("error", { type: "cancel" }, xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }))));
    await bounce(delivered.body.id);
    // The sentinel: a bounce for the other message, after it, does fail that one.
    await bounce(sent.body.id);
    await waitFor(async () => (await get(sent.body.id)).status === "failed", 5000, "the sentinel's failure");
    const after = await get(delivered.body.id);
    assert.deepEqual([after.status, after.error], ["delivered", undefined]);
    const events = await gw.request("GET", "/v1/events?since=0&limit=1000", { token: romeoToken, headers: { accept: "application/json" } });
    assert.deepEqual(
      events.body.items.filter((e: { event: string; data: { id: string } }) => e.event === "message-status" && [delivered.body.id, sent.body.id].includes(e.data.id)).map((e: { data: { id: string } }) => e.data.id),
      [sent.body.id],
      "a message-status event for the failure only",
    );
  });
});
