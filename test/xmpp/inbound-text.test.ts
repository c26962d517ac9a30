// What an inbound stanza's text and addresses are taken to be (src/xmpp/parse.ts), end to end from
// a real user on Prosody and ejabberd (the inbound audit):
// - children named body, subject, thread (RFC 6121 §5.2.3-5.2.5), show and status (§4.7.2) in
//   another namespace are an extension's, ignored (RFC 6120 §8.4), not the stanza's own;
// - language tags are case-insensitive (RFC 5646 §2.1.1), and an xml:lang that is no tag, or ""
//   (XML 1.0 §2.12: no language), is no language;
// - a message's `to` is the account's JID prepared (RFC 7622), however the sender spelt it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { xml } from "../../scripts/harness/xmpp-user.js";
import { accountDriver, type AccountDriver } from "../helpers/account-driver.js";
import { startWorld, type XmppWorld } from "../helpers/xmpp-world.js";
import { KINDS } from "../helpers/servers.js";

const FOREIGN = "urn:example:not-jabber-client";

for (const kind of KINDS) {
  describe(`an inbound stanza's own text and addresses (${kind})`, () => {
    let w: XmppWorld<"juliet">;
    let r: AccountDriver;
    before(async () => {
      w = await startWorld(kind, { juliet: "balcony" }, { roster: true });
      r = await accountDriver(w.gw);
      await r.call("PUT", "/v1/presence", { type: "available" });
    });
    after(async () => {
      await w?.stop();
    });

    it("does not take a foreign <body/> or <subject/> for the message's text", async () => {
      const j = w.users.juliet;
      await j.send(xml("message", { to: r.jid, type: "chat", id: "foreign-body" }, xml("body", { xmlns: FOREIGN }, "payload, not a body")));
      await j.send(xml("message", { to: r.jid, type: "chat", id: "foreign-subject" }, xml("subject", { xmlns: FOREIGN }, "payload, not a subject")));
      await j.send(xml("message", { to: r.jid, type: "chat", id: "after" }, xml("body", {}, "after")));
      await r.until("the message after", (e) => e.event === "message" && e.data.stanzaId === "after");
      const evs = await r.events();
      const leaked = evs.filter((e) => e.event === "message" && (e.data.stanzaId === "foreign-body" || e.data.stanzaId === "foreign-subject")).map((e) => JSON.stringify({ body: e.data.body, subject: e.data.subject }));
      assert.deepEqual(leaked, [], "an extension element named body/subject in another namespace was shown as the message's text");
    });

    it("does not take a foreign <thread/> for the message's thread", async () => {
      const j = w.users.juliet;
      await j.send(xml("message", { to: r.jid, type: "chat", id: "foreign-thread" }, xml("body", {}, "hello"), xml("thread", { xmlns: FOREIGN }, "not-a-thread")));
      const e = await r.until("the message", (x) => x.event === "message" && x.data.stanzaId === "foreign-thread");
      assert.equal(e.data.thread, null);
    });

    it("does not take a foreign <show/> or <status/> for the presence's", async () => {
      const j = w.users.juliet;
      await j.send(xml("presence", { to: r.jid, id: "foreign-show" }, xml("show", { xmlns: FOREIGN }, "dnd"), xml("status", { xmlns: FOREIGN }, "not a status")));
      const e = await r.until("the presence", (x) => x.event === "presence" && x.data.jid === "juliet@localhost");
      assert.deepEqual({ show: e.data.show, status: e.data.status }, { show: null, status: null });
    });

    // RFC 7622 §3.2.1/§3.3.1: "ROMEO@gw" and "romeo@gw" are one JID; the account's clients are shown
    // the account's address, prepared, as everywhere else in the API (its views, its events' jid).
    it("shows a message to an unprepared (upper-case) localpart as to the account's JID", async () => {
      const upper = r.jid.replace(r.lp, r.lp.toUpperCase());
      await w.users.juliet.send(xml("message", { to: upper, type: "chat", id: "upper-to" }, xml("body", {}, "to upper case")));
      const e = await r.until("the message", (x) => x.event === "message" && x.data.stanzaId === "upper-to");
      assert.equal(e.data.to, r.jid);
      const stored = (await r.history("juliet@localhost")).find((m) => (m as { body?: unknown }).body === "to upper case") as { to?: string } | undefined;
      assert.equal(stored?.to, r.jid);
    });

    // RFC 5646 §2.1.1: language tags are case-insensitive; a single <body/> in the stanza's language
    // is the plain text (src/xmpp/parse.ts readLangText's own rule).
    it("reads a body whose xml:lang differs from the stanza's only in case as the plain text", async () => {
      await w.users.juliet.send(xml("message", { to: r.jid, type: "chat", id: "lang-case", "xml:lang": "en" }, xml("body", { "xml:lang": "EN" }, "hello")));
      const e = await r.until("the message", (x) => x.event === "message" && x.data.stanzaId === "lang-case");
      assert.equal(e.data.body, "hello");
    });

    // RFC 6120 §8.1.5 / XML 1.0 §2.12: xml:lang is a BCP 47 tag (RFC 5646), and xml:lang="" means
    // no language. What the account is shown as a language (the message's lang, a key of its body
    // map) must be one: API.md's POST /v1/messages refuses any other (LANG in src/domain/message.ts),
    // so a client cannot even answer in kind.
    it("shows no language that is not a language tag (xml:lang='' or garbage)", async () => {
      const LANG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;
      await w.users.juliet.send(xml("message", { to: r.jid, type: "chat", id: "lang-empty" }, xml("body", { "xml:lang": "" }, "no language")));
      await w.users.juliet.send(xml("message", { to: r.jid, type: "chat", id: "lang-garbage", "xml:lang": "<not a tag>" }, xml("body", {}, "garbage language")));
      await w.users.juliet.send(xml("message", { to: r.jid, type: "chat", id: "lang-after" }, xml("body", {}, "after")));
      await r.until("the message after", (x) => x.event === "message" && x.data.stanzaId === "lang-after");
      const bad: string[] = [];
      for (const e of await r.events()) {
        if (e.event !== "message" || !["lang-empty", "lang-garbage"].includes(String(e.data.stanzaId))) continue;
        if (e.data.lang != null && !LANG.test(String(e.data.lang))) bad.push(`${e.data.stanzaId}: lang ${JSON.stringify(e.data.lang)}`);
        if (e.data.body && typeof e.data.body === "object") for (const k of Object.keys(e.data.body)) if (!LANG.test(k)) bad.push(`${e.data.stanzaId}: body key ${JSON.stringify(k)}`);
      }
      assert.deepEqual(bad, []);
      // ejabberd refuses the stanza whose xml:lang is no tag itself (bad-request to the sender); Prosody passes it on.
      const arrived = (await r.events()).filter((e) => e.event === "message" && ["lang-empty", "lang-garbage"].includes(String(e.data.stanzaId)));
      assert.deepEqual(arrived.map((e) => e.data.stanzaId), kind === "prosody" ? ["lang-empty", "lang-garbage"] : ["lang-empty"]);
    });
  });
}
