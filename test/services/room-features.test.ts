// Message features in group chat (XEP-0045) as the use cases handle them
// (src/services/inbound-room.ts, src/services/inbound-features.ts applyRoomChange,
// src/services/message-actions.ts), against a real PostgreSQL and a fake outbound port. The room
// is played by the test: occupants' presence (with the real JID a room shows its owner, §7.2.3)
// and group messages, parsed as the XMPP adapter would parse them, with the XEP-0359 stanza-id a
// room assigns (`roomStanzaId`) and, where given, a XEP-0421 occupant-id. Corrections (XEP-0308)
// and retractions (XEP-0424) change only the sending occupant's message, reactions (XEP-0444) are
// keyed by the reacting occupant; none is a message; the account's own reflected ones and the
// ones a rejoin's history replays change nothing again. The account's own changes go to the room.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { InboundFeatures, InboundMessage } from "../../src/domain/inbound.js";
import { mucPresence } from "../../src/domain/muc.js";
import type { Stanza } from "../../src/domain/stanza.js";
import type { Inbound } from "../../src/services/inbound.js";
import { MessageActions } from "../../src/services/message-actions.js";
import { Messaging } from "../../src/services/messaging.js";
import { render } from "../../src/xmpp/render.js";
import { appError, inboundOf, setup, teardown, type Env, type TestAccount } from "./setup.js";
import { inboundMessage, inboundPresence } from "./stanzas.js";

const ROOM = "piazza@conference.example.net";
const JULIET = "juliet@example.net/balcony";

describe("message features in group chat", () => {
  let env: Env;
  let inbound: Inbound;
  let actions: MessageActions;
  let messaging: Messaging;

  before(async () => {
    env = await setup();
    inbound = inboundOf(env);
    actions = new MessageActions(env.delivery, env.out, env.domain);
    // As src/gateway.ts builds it, in the room (XEP-0045 §7.4: group messages only to a room the account is in).
    messaging = new Messaging(env.messages, env.delivery, env.out, env.domain, env.metrics, async () => "romeo");
  });
  after(async () => {
    await messaging?.idle();
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** The account is in the room as "romeo" (its owner: the room shows it real JIDs), with these occupants (nick → real JID). */
  /** The account in ROOM with `occupants` (nick: real JID, or null in a room that gives none). */
  async function inRoom(a: TestAccount, occupants: Record<string, string | null>) {
    await env.db.pool.query("INSERT INTO room (account_id, room, nick, status, role, affiliation) VALUES ($1, $2, 'romeo', 'joined', 'moderator', 'owner')", [a.id, ROOM]);
    for (const [nick, jid] of Object.entries(occupants)) await present(a, nick, jid);
  }
  const present = async (a: TestAccount, nick: string, jid: string | null, type = "available") => {
    inbound.receive(inboundPresence(`${ROOM}/${nick}`, `${a.jid}/rooms`, type, { muc: mucPresence({ role: type === "available" ? "participant" : "none", affiliation: "none", ...(jid ? { jid } : {}) }, []) }));
    await inbound.idle();
  };
  /** A group message from `nick` to the account's occupant JID. */
  const says = async (a: TestAccount, nick: string, extra: Partial<InboundMessage>) => {
    inbound.receive(inboundMessage(`${ROOM}/${nick}`, `${a.jid}/rooms`, { type: "groupchat", ...extra }));
    await inbound.idle();
  };
  const change = (a: TestAccount, nick: string, features: InboundFeatures, extra: Partial<InboundMessage> = {}) => says(a, nick, { id: `c-${Math.random()}`, features, ...extra });
  const head = async (a: TestAccount) => (await env.events(a.id)).at(-1)?.seq ?? 0;
  /** The events after `after`: message-updates as [id, what `pick` takes], messages as their body. */
  const since = async (a: TestAccount, after: number, pick: (d: Record<string, unknown>) => unknown) =>
    (await env.events(a.id, after)).map((e) => (e.type === "message-update" ? [(e.data as { id: string }).id, pick(e.data as Record<string, unknown>)] : `${e.type}:${String((e.data as { body?: unknown }).body)}`));
  const row = (id: string) => env.db.prisma.message.findUniqueOrThrow({ where: { id } });
  const idOf = async (a: TestAccount, stanzaId: string) => (await env.db.prisma.message.findFirstOrThrow({ where: { accountId: a.id, peer: ROOM, stanzaId }, select: { id: true } })).id;
  const count = async (a: TestAccount) => env.db.prisma.message.count({ where: { accountId: a.id, peer: ROOM } });
  /** Ends a run of changes with a plain message, proving everything before it was handled. */
  const sentinel = (a: TestAccount, nick = "juliet") => says(a, nick, { id: `s-${Math.random()}`, body: "sentinel" });

  it("keeps a group message's room stanza-id and its sender's real JID and occupant-id", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET });
    await says(a, "juliet", { id: "j-1", body: "with ids", roomStanzaId: "room-1", occupantId: "occ-j" });
    await says(a, "juliet", { id: "j-2", body: "without" });
    const [first, second] = [await row(await idOf(a, "j-1")), await row(await idOf(a, "j-2"))];
    assert.deepEqual([first.originId, first.ext], ["room-1", { occupant: { jid: "juliet@example.net", id: "occ-j" } }]);
    assert.deepEqual([second.originId, second.ext], [null, { occupant: { jid: "juliet@example.net" } }]);
  });

  it("applies an occupant's corrections (by the message's id) and retraction (by the room's stanza-id) to her message only, once; none is a message", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    await says(a, "juliet", { id: "j-1", body: "the inconstant moon", roomStanzaId: "room-1" });
    await says(a, "nurse", { id: "n-1", body: "the nurse's", roomStanzaId: "room-2" });
    const [hers, nurses] = [await idOf(a, "j-1"), await idOf(a, "n-1")];
    const before = await count(a);
    const mark = await head(a);
    // Others' references change nothing: the nurse's correction and retraction of Juliet's message,
    // Juliet's of the nurse's.
    await change(a, "nurse", { replace: "j-1" }, { body: "forged by the nurse" });
    await change(a, "nurse", { retract: "room-1" }, { body: "/me retracted a previous message, but it's unsupported by your client." });
    await change(a, "juliet", { replace: "n-1" }, { body: "forged by Juliet" });
    // Hers: XEP-0308 names the original by its id (the second too), and the room replays the last in its history.
    await change(a, "juliet", { replace: "j-1" }, { body: "that monthly changes" });
    await change(a, "juliet", { replace: "j-1" }, { body: "in her circled orb" });
    await change(a, "juliet", { replace: "j-1" }, { body: "in her circled orb", delay: new Date().toISOString() });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => [d.body, d.edited !== null]), [
      [hers, ["that monthly changes", true]],
      [hers, ["in her circled orb", true]],
      "message:sentinel",
    ]);
    // XEP-0424 §Using the correct ID: the room's stanza-id; the fallback body is no message.
    const mark2 = await head(a);
    await change(a, "juliet", { retract: "room-1" }, { body: "/me retracted a previous message, but it's unsupported by your client." });
    await change(a, "juliet", { retract: "room-1" }, { body: "/me retracted a previous message, but it's unsupported by your client." });
    await sentinel(a);
    assert.deepEqual(await since(a, mark2, (d) => [d.body, d.retracted !== null]), [[hers, [null, true]], "message:sentinel"]);
    assert.equal(await count(a), before + 2, "the two sentinels are the only new messages");
    const untouched = await row(nurses);
    assert.deepEqual([untouched.body, untouched.editedAt, untouched.retractedAt], ["the nurse's", null, null]);
  });

  it("applies an occupant's correction and retraction of her own private message (XEP-0045 §7.5; XEP-0308: the same occupant JID), not another's or a group message; none is a message", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    const pm = { type: "chat" as const };
    await says(a, "juliet", { ...pm, id: "p-1", body: "helo" });
    await says(a, "juliet", { id: "g-1", body: "to everyone", roomStanzaId: "room-g1" });
    const [hers, group] = [await idOf(a, "p-1"), await idOf(a, "g-1")];
    const before = await count(a);
    const mark = await head(a);
    // The nurse's correction and retraction of Juliet's private message, and Juliet's private
    // correction of her group message: nothing.
    await change(a, "nurse", { replace: "p-1" }, { ...pm, body: "forged" });
    await change(a, "nurse", { retract: "p-1" }, { ...pm, body: "/me retracted a previous message, but it's unsupported by your client." });
    await change(a, "juliet", { replace: "g-1" }, { ...pm, body: "to everyone, corrected in private" });
    await change(a, "juliet", { replace: "p-1" }, { ...pm, body: "hello" });
    await change(a, "juliet", { retract: "p-1" }, { ...pm, body: "/me retracted a previous message, but it's unsupported by your client." });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => [d.body, d.edited !== null, d.retracted !== null]), [
      [hers, ["hello", true, false]],
      [hers, [null, true, true]],
      "message:sentinel",
    ]);
    assert.equal(await count(a), before + 1, "the sentinel is the only new message");
    const untouched = await row(group);
    assert.deepEqual([untouched.body, untouched.editedAt], ["to everyone", null]);
  });

  it("takes an occupant's reactions, markers and receipts in private messages (XEP-0045 §7.5) as a contact's one-to-one: in the conversation with her occupant JID only, by the message's id or origin-id; she is owed a receipt", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    const pm = { type: "chat" as const };
    const whisper = async (nick: string, body: string, receipt = false) => (await messaging.send(a, null, { to: `${ROOM}/${nick}`, type: "chat", body, receipt }, null)).id;
    const [w1, w2, toNurse] = [await whisper("juliet", "one"), await whisper("juliet", "two", true), await whisper("nurse", "to the nurse")];
    // The account's group message, reflected with the room's stanza-id.
    const group = (await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "to all" }, null)).id;
    await says(a, "romeo", { id: group, originId: group, body: "to all", roomStanzaId: "room-g" });
    // Hers, with an origin-id other than its id (XEP-0444 §Using the correct ID: the origin-id "if present").
    await says(a, "juliet", { ...pm, id: "p-1", originId: "o-1", body: "hers" });
    const hers = await idOf(a, "p-1");
    const mark = await head(a);
    // Another occupant's, and Juliet's naming a group message or someone else's conversation: nothing.
    await change(a, "nurse", { reactions: { id: "o-1", emojis: ["👍"] } }, pm);
    await change(a, "nurse", { reactions: { id: w1, emojis: ["👍"] } }, pm);
    await change(a, "juliet", { reactions: { id: "room-g", emojis: ["👍"] } }, pm);
    await change(a, "juliet", { reactions: { id: group, emojis: ["👍"] } }, pm);
    await change(a, "juliet", { reactions: { id: toNurse, emojis: ["👍"] } }, pm);
    await change(a, "nurse", { marker: { name: "displayed", id: w2 } }, pm);
    await change(a, "juliet", { marker: { name: "displayed", id: group } }, pm);
    await change(a, "juliet", { marker: { name: "displayed", id: toNurse } }, pm);
    await says(a, "nurse", { ...pm, id: "n-r", receivedId: w2 });
    // Hers: a reaction by the origin-id, one to the account's message by its id, a marker raising the
    // account's private messages to her up to the one named, a receipt.
    await change(a, "juliet", { reactions: { id: "o-1", emojis: ["👍"] } }, { ...pm, id: "j-re", receiptRequested: true });
    await change(a, "juliet", { reactions: { id: w1, emojis: ["❤"] } }, pm);
    await change(a, "juliet", { marker: { name: "displayed", id: w2 } }, pm);
    await says(a, "juliet", { ...pm, id: "j-r", receivedId: w2 });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => [d.reactions, d.marker]), [
      [hers, [{ "👍": [`${ROOM}/juliet`] }, null]],
      [w1, [{ "❤": [`${ROOM}/juliet`] }, null]],
      [w1, [{ "❤": [`${ROOM}/juliet`] }, "displayed"]],
      [w2, [{}, "displayed"]],
      "receipt:undefined",
      "message:sentinel",
    ]);
    assert.deepEqual([(await row(w2)).status, (await row(toNurse)).marker, (await row(group)).marker, (await row(group)).reactions], ["delivered", null, null, null]);
    // XEP-0184 §5.4: a reaction is a content message; its receipt is owed as one-to-one.
    assert.deepEqual((await env.events(a.id, mark)).filter((e) => e.receiptTo !== null).map((e) => [e.type, e.receiptTo, e.receiptId]), [["message-update", `${ROOM}/juliet`, "j-re"]]);
    // XEP-0184: her private message asking for a receipt is owed one, as a contact's one-to-one.
    await says(a, "juliet", { ...pm, id: "p-2", body: "ack me", receiptRequested: true });
    const asked = (await env.events(a.id)).at(-1)!;
    assert.deepEqual([(asked.data as { receiptRequested: boolean }).receiptRequested, asked.receiptTo, asked.receiptId, (await row(await idOf(a, "p-2"))).receipt], [true, `${ROOM}/juliet`, "p-2", true]);
  });

  it("refuses a correction or retraction from the same nick when the room shows another real JID or occupant-id (XEP-0308, XEP-0424 §Business Rules)", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET });
    await says(a, "juliet", { id: "j-1", body: "by Juliet", roomStanzaId: "room-1" });
    await says(a, "juliet", { id: "j-2", body: "by Juliet, with an occupant-id", roomStanzaId: "room-2", occupantId: "occ-j" });
    const [first, second] = [await idOf(a, "j-1"), await idOf(a, "j-2")];
    // The same nick, another occupant's occupant-id: refused; Juliet's own goes through.
    let mark = await head(a);
    await change(a, "juliet", { replace: "j-2" }, { body: "forged", occupantId: "occ-other" });
    await change(a, "juliet", { replace: "j-2" }, { body: "hers", occupantId: "occ-j" });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => d.body), [[second, "hers"], "message:sentinel"]);
    // Juliet leaves; Tybalt enters as "juliet": the room shows his real JID, so nothing of hers is his.
    await present(a, "juliet", JULIET, "unavailable");
    await present(a, "juliet", "tybalt@example.net/sword");
    mark = await head(a);
    await change(a, "juliet", { replace: "j-1" }, { body: "forged by Tybalt" });
    await change(a, "juliet", { retract: "room-1" }, { body: "/me retracted" });
    await sentinel(a);
    assert.deepEqual((await since(a, mark, (d) => d.body)).filter((e) => typeof e !== "string"), []);
    assert.deepEqual(((await env.events(a.id, mark)).at(-1)!.data as { body: string }).body, "sentinel");
    const kept = await row(first);
    assert.deepEqual([kept.body, kept.editedAt, kept.retractedAt], ["by Juliet", null, null]);
    // Juliet back under her own real JID: her message is hers again.
    await present(a, "juliet", "tybalt@example.net/sword", "unavailable");
    await present(a, "juliet", "juliet@example.net/phone");
    mark = await head(a);
    await change(a, "juliet", { replace: "j-1" }, { body: "Juliet again" });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => d.body), [[first, "Juliet again"], "message:sentinel"]);
  });

  it("sets each occupant's reactions on the message the room's stanza-id names (keyed by its real bare JID, or its occupant JID where the room gives none), the account's own by its JID; not by the sender's id", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden", friar: null });
    await says(a, "juliet", { id: "j-1", body: "react to me", roomStanzaId: "room-1" });
    await says(a, "juliet", { id: "j-2", body: "no stanza-id" });
    const hers = await idOf(a, "j-1");
    const mark = await head(a);
    await change(a, "nurse", { reactions: { id: "room-1", emojis: ["👍"] } });
    await change(a, "juliet", { reactions: { id: "room-1", emojis: ["👍", "❤"] } });
    await change(a, "friar", { reactions: { id: "room-1", emojis: ["🙏"] } });
    // XEP-0444 §Using the correct ID: "the stanza's 'id' attribute MUST NOT be used" in group chat.
    await change(a, "nurse", { reactions: { id: "j-2", emojis: ["🤡"] } });
    // The same set again (history replayed after a rejoin): no update.
    await change(a, "nurse", { reactions: { id: "room-1", emojis: ["👍"] } });
    await sentinel(a);
    const view = await actions.react(a, hers, ["🎉"]);
    const r = (d: Record<string, unknown>) => d.reactions;
    const [juliet, nurse, friar] = ["juliet@example.net", "nurse@example.net", `${ROOM}/friar`];
    assert.deepEqual(await since(a, mark, r), [
      [hers, { "👍": [nurse] }],
      [hers, { "❤": [juliet], "👍": [juliet, nurse] }],
      [hers, { "❤": [juliet], "👍": [juliet, nurse], "🙏": [friar] }],
      "message:sentinel",
      [hers, { "❤": [juliet], "👍": [juliet, nurse], "🙏": [friar], "🎉": [a.jid] }],
    ]);
    assert.deepEqual(view.reactions["🎉"], [a.jid]);
    await env.flush();
    const sent = env.out.take().filter((s): s is Extract<Stanza, { kind: "message-action" }> => s.kind === "message-action");
    assert.deepEqual(
      sent.map((s) => [s.from, s.to, s.type, s.action]),
      [[`${a.jid}/rooms`, ROOM, "groupchat", { kind: "reactions", ref: "room-1", emojis: ["🎉"] }]],
      "to the room, from the account's occupant JID, naming the room's stanza-id",
    );
    // Without a stanza-id from the room it cannot be reacted to (XEP-0444 §Using the correct ID).
    await assert.rejects(actions.react(a, await idOf(a, "j-2"), ["👍"]), appError("message-not-found"));
  });

  it("a reaction, marker or retraction naming the stanza-id the room gave a correction, an occupant's or the account's, applies to the message it corrected (XEP-0444 §Business Rules)", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    await says(a, "juliet", { id: "j-1", body: "the inconstant moon", roomStanzaId: "room-1" });
    const hers = await idOf(a, "j-1");
    await change(a, "juliet", { replace: "j-1" }, { body: "that monthly changes", roomStanzaId: "room-1c" });
    const sent = await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "Good morrow" }, null);
    await says(a, "romeo", { id: sent.id, originId: sent.id, body: "Good morrow", roomStanzaId: "room-ours" });
    await actions.correct(a, null, sent.id, { to: ROOM, body: "Good morrow, coz", lang: null });
    // The room's reflection of the account's correction gives it a stanza-id of its own.
    await change(a, "romeo", { replace: sent.id }, { body: "Good morrow, coz", roomStanzaId: "room-ours-c" });
    // A private message to Juliet (XEP-0045 §7.5), corrected: its correction goes under an id of its own.
    const whisper = (await messaging.send(a, null, { to: `${ROOM}/juliet`, type: "chat", body: "psst" }, null)).id;
    await env.flush();
    env.out.take();
    await actions.correct(a, null, whisper, { to: `${ROOM}/juliet`, body: "psst, coz", lang: null });
    await env.flush();
    const [fixed] = env.out.take().flatMap((s: Stanza) => (s.kind === "message-action" && s.action.kind === "replace" ? [s.id] : []));
    assert.ok(fixed && fixed !== whisper);
    const mark = await head(a);
    await change(a, "nurse", { reactions: { id: "room-1c", emojis: ["👍"] } });
    await change(a, "nurse", { reactions: { id: "room-ours-c", emojis: ["❤"] } });
    await change(a, "nurse", { marker: { name: "displayed", id: "room-ours-c" } });
    // Only the occupant that sent it may retract it, by its correction's id too.
    await change(a, "nurse", { retract: "room-1c" }, { body: "/me retracted a previous message" });
    await change(a, "juliet", { retract: "room-1c" }, { body: "/me retracted a previous message" });
    // In private, only the occupant it went to marks it by its correction's id.
    await change(a, "nurse", { marker: { name: "displayed", id: fixed! } }, { type: "chat" });
    await change(a, "juliet", { marker: { name: "displayed", id: fixed! } }, { type: "chat" });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => [d.reactions, d.marker, d.retracted !== null]), [
      [hers, [{ "👍": ["nurse@example.net"] }, null, false]],
      [sent.id, [{ "❤": ["nurse@example.net"] }, null, false]],
      [sent.id, [{ "❤": ["nurse@example.net"] }, "displayed", false]],
      [hers, [{}, null, true]],
      [whisper, [{}, "displayed", false]],
      "message:sentinel",
    ]);
  });

  it("corrects, retracts and reacts to its own group message in the room: to the room, the correction re-sending the whole original; the room's reflections change nothing again", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET });
    const sent = await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "Good morrow", lang: "en", thread: "t-1", attachments: [{ url: "https://example.net/a.png", name: "a.png" }] }, null);
    await env.flush();
    env.out.take();
    // A group message is `queued` until the room reflects it; the reflection gives its stanza-id.
    assert.equal((await actions.correct(a, null, sent.id, { to: ROOM, body: "Good morrow, cousin", lang: null })).status, "queued");
    await says(a, "romeo", { id: sent.id, originId: sent.id, body: "Good morrow", roomStanzaId: "room-ours" });
    assert.equal((await row(sent.id)).originId, "room-ours");
    assert.equal((await actions.correct(a, null, sent.id, { to: ROOM, body: "Good morrow, coz", lang: "en" })).status, "sent");
    await actions.react(a, sent.id, ["👍"]);
    await env.flush();
    // The room reflects them back from the account's nick: applied when sent, not again.
    const reflections = async (changes: [InboundFeatures, Partial<InboundMessage>][]) => {
      const mark = await head(a);
      for (const [f, extra] of changes) await change(a, "romeo", f, extra);
      await sentinel(a);
      assert.deepEqual(await since(a, mark, (d) => d), ["message:sentinel"]);
    };
    await reflections([
      [{ replace: sent.id }, { body: "Good morrow, coz" }],
      [{ reactions: { id: "room-ours", emojis: ["👍"] } }, {}],
    ]);
    await actions.retract(a, sent.id);
    await reflections([[{ retract: "room-ours" }, { body: "/me retracted a previous message, but it's unsupported by your client." }]]);
    await env.flush();
    const acts = env.out.sent.filter((s): s is Extract<Stanza, { kind: "message-action" }> => s.kind === "message-action");
    assert.deepEqual(
      acts.map((s) => [s.from, s.to, s.type, s.action.kind, s.action.ref]),
      [
        [`${a.jid}/rooms`, ROOM, "groupchat", "replace", sent.id],
        [`${a.jid}/rooms`, ROOM, "groupchat", "replace", sent.id],
        [`${a.jid}/rooms`, ROOM, "groupchat", "reactions", "room-ours"],
        [`${a.jid}/rooms`, ROOM, "groupchat", "retract", "room-ours"],
      ],
      "XEP-0308 names the original by its id; XEP-0424 and XEP-0444 by the room's stanza-id",
    );
    // XEP-0308 §Business Rules: the whole stanza again, only the id and the text new.
    const fix = render(acts[1]!);
    assert.deepEqual(
      [fix.attrs.type, fix.attrs.to, fix.attrs["xml:lang"], fix.getChildText("body"), fix.getChildText("thread"), fix.getChild("x", "jabber:x:oob")?.getChildText("url"), fix.getChild("replace", "urn:xmpp:message-correct:0")?.attrs.id],
      ["groupchat", ROOM, "en", "Good morrow, coz", "t-1", "https://example.net/a.png", sent.id],
      fix.toString(),
    );
    assert.notEqual(fix.attrs.id, sent.id);
    assert.equal(render(acts[0]!).attrs["xml:lang"], "en", "a correction that names no language keeps the original's");
    assert.equal((await row(sent.id)).reactions, null, "the tombstone keeps no reactions");
  });

  it("retracts its own group message that the room gave no stanza-id by its origin-id (XEP-0424 §Using the correct ID); refuses changes to a room it is not in", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET });
    const sent = await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "to be unsaid" }, null);
    const kept = await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "kept" }, null);
    await env.flush();
    await says(a, "romeo", { id: sent.id, originId: sent.id, body: "to be unsaid" });
    await says(a, "romeo", { id: kept.id, originId: kept.id, body: "kept", roomStanzaId: "room-kept" });
    env.out.take();
    await actions.retract(a, sent.id);
    await env.flush();
    assert.deepEqual(
      env.out.take().flatMap((s) => (s.kind === "message-action" ? [[s.type, s.action]] : [])),
      [["groupchat", { kind: "retract", ref: sent.id }]],
    );
    // Out of the room: nothing can go to it.
    await env.db.pool.query("DELETE FROM room WHERE account_id = $1", [a.id]);
    await assert.rejects(actions.correct(a, null, kept.id, { to: ROOM, body: "never", lang: null }), appError("room-not-joined"));
    await assert.rejects(actions.react(a, kept.id, ["👍"]), appError("room-not-joined"));
    await assert.rejects(actions.retract(a, kept.id), appError("room-not-joined"));
    // Nor to an occupant's JID: a group message is corrected in the room.
    await assert.rejects(actions.correct(a, null, kept.id, { to: `${ROOM}/juliet`, body: "never", lang: null }), appError("message-not-found"));
    const still = await row(kept.id);
    assert.deepEqual([still.body, still.editedAt, still.retractedAt, still.reactions], ["kept", null, null, null]);
    await env.flush();
    assert.deepEqual(env.out.take().filter((s) => s.kind === "message-action"), []);
  });

  it("keeps an occupant's attachments (alone too) and replies (naming the room's stanza-id, XEP-0461 §Using the correct ID); the account replies to a group message by its room's stanza-id, quoting its nick", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    await says(a, "juliet", { id: "j-1", body: "Wherefore art thou", roomStanzaId: "room-1" });
    await says(a, "juliet", { id: "j-2", body: "no stanza-id" });
    const [first, second] = [await idOf(a, "j-1"), await idOf(a, "j-2")];
    const mark = await head(a);
    const photo = { url: "https://example.net/moon.jpg", mediaType: "image/jpeg" };
    await says(a, "nurse", { id: "n-1", body: null, roomStanzaId: "room-2", features: { attachments: [photo] } });
    const quote = "> juliet:\n> Wherefore art thou\n";
    // By the room's stanza-id: found; by the sender's id (forbidden in group chat): not.
    await says(a, "nurse", { id: "n-2", body: `${quote}Here, madam`, roomStanzaId: "room-3", features: { reply: { id: "room-1", quoteEnd: [...quote].length } } });
    await says(a, "nurse", { id: "n-3", body: "Anon", roomStanzaId: "room-4", features: { reply: { id: "j-1", quoteEnd: null } } });
    const events = (await env.events(a.id, mark)).map((e) => e.data as { body: unknown; attachments?: unknown; replyTo?: unknown; room?: string });
    assert.deepEqual(
      events.map((d) => [d.body, d.attachments ?? null, d.replyTo ?? null, d.room]),
      [
        [null, [photo], null, ROOM],
        ["Here, madam", null, { id: first }, ROOM],
        ["Anon", null, { id: null }, ROOM],
      ],
    );
    const stored = await row(await idOf(a, "n-1"));
    assert.deepEqual([stored.body, stored.ext], [null, { attachments: [photo], occupant: { jid: "nurse@example.net" } }]);
    assert.deepEqual(((await row(await idOf(a, "n-2"))).ext as { replyTo: unknown }).replyTo, { id: first });
    // The account's reply: to the room, naming the room's stanza-id and the occupant JID of its author.
    env.out.take();
    await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "By a name I know not", reply: { id: first } }, null);
    await env.flush();
    const out = env.out.take().find((s) => s.kind === "message")!;
    const reply = render(out).getChild("reply", "urn:xmpp:reply:0");
    assert.deepEqual([reply?.attrs.id, reply?.attrs.to], ["room-1", `${ROOM}/juliet`]);
    assert.match(render(out).getChildText("body") ?? "", /^> juliet wrote:\n> Wherefore art thou\nBy a name/, "the fallback quote names the nick");
    // Without a stanza-id from the room it cannot be replied to (XEP-0461 §Using the correct ID).
    await assert.rejects(messaging.send(a, null, { to: ROOM, type: "groupchat", body: "never", reply: { id: second } }, null), appError("validation-failed"));

    // A reply to its own group message names the account's occupant JID (its nick there) as the author.
    const own = await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "Call me but love" }, null);
    await env.flush();
    await says(a, "romeo", { id: own.id, originId: own.id, body: "Call me but love", roomStanzaId: "room-5" });
    env.out.take();
    await messaging.send(a, null, { to: ROOM, type: "groupchat", body: "and I'll be new baptized", reply: { id: own.id } }, null);
    await env.flush();
    const again = render(env.out.take().find((s) => s.kind === "message")!);
    const ownReply = again.getChild("reply", "urn:xmpp:reply:0");
    assert.deepEqual([ownReply?.attrs.id, ownReply?.attrs.to], ["room-5", `${ROOM}/romeo`]);
    assert.match(again.getChildText("body") ?? "", /^> romeo wrote:\n> Call me but love\nand I'll be new/, "the quote names the account's nick");
  });

  it("sends the account's displayed marker for a markable group message to the room, naming the room's stanza-id (XEP-0333 §Usage within MUC); none without a stanza-id, for an unmarkable one, or once out of the room", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET });
    await says(a, "juliet", { id: "j-1", body: "no stanza-id", features: { markable: true } });
    await says(a, "juliet", { id: "j-2", body: "not markable", roomStanzaId: "room-2" });
    await says(a, "juliet", { id: "j-3", body: "markable", roomStanzaId: "room-3", thread: "t-9", features: { markable: true } });
    await says(a, "juliet", { id: "j-4", body: "later", roomStanzaId: "room-4", features: { markable: true } });
    env.out.take();
    const markers = async () => {
      await env.flush();
      return env.out.take().flatMap((s) => (s.kind === "message-action" ? [render(s)] : []));
    };
    // Marked read, nothing sent: no id the room assigned, then no marker asked for.
    await actions.displayed(a, await idOf(a, "j-1"));
    await actions.displayed(a, await idOf(a, "j-2"));
    // The sentinel: a markable message with the room's stanza-id gets exactly one marker, to the room.
    await actions.displayed(a, await idOf(a, "j-3"));
    const sent = await markers();
    assert.deepEqual(
      sent.map((x) => [x.attrs.to, x.attrs.from, x.attrs.type, x.getChild("displayed", "urn:xmpp:chat-markers:0")?.attrs.id, x.getChildText("thread")]),
      [[ROOM, `${a.jid}/rooms`, "groupchat", "room-3", "t-9"]],
    );
    const read = async () => (await env.db.pool.query<{ read: boolean }>("SELECT c.last_read_seq = m.seq AS read FROM conversation c JOIN message m ON m.account_id = c.account_id AND m.peer = c.peer WHERE m.id = $1", [await idOf(a, "j-3")])).rows[0]?.read;
    assert.equal(await read(), true, "the room conversation is read up to it");
    // Out of the room (its join failed): read, no marker (XEP-0045 §7.4).
    await env.db.pool.query("UPDATE room SET status = 'failed' WHERE account_id = $1", [a.id]);
    await actions.displayed(a, await idOf(a, "j-4"));
    assert.deepEqual(await markers(), []);
  });

  it("keeps other occupants' markers on the account's own group messages (XEP-0333 §Usage within MUC): by the room's stanza-id, up to the one named, only forward; not its private messages, not someone else's, not its own reflected", async () => {
    const a = await env.account("romeo");
    await inRoom(a, { juliet: JULIET, nurse: "nurse@example.net/garden" });
    /** Sends a message as the account; a group message comes back from the room (§7.4) with its stanza-id ("": none), a private one (null) does not. */
    const send = async (body: string, stanzaId: string | null) => {
      const to = stanzaId === null ? `${ROOM}/juliet` : ROOM;
      const sent = await messaging.send(a, null, { to, type: stanzaId === null ? "chat" : "groupchat", body }, null);
      if (stanzaId !== null) await says(a, "romeo", { id: sent.id, originId: sent.id, body, ...(stanzaId ? { roomStanzaId: stanzaId } : {}) });
      return sent.id;
    };
    const first = await send("one", "room-a");
    const whisper = await send("a private word", null);
    const second = await send("two", "room-b");
    const third = await send("three", "room-c");
    await says(a, "juliet", { id: "j-1", body: "hers", roomStanzaId: "room-j" });
    const mark = await head(a);
    await change(a, "nurse", { marker: { name: "displayed", id: "room-b" } });
    // Lower than what the account's messages have: markers only move forward.
    await change(a, "juliet", { marker: { name: "received", id: "room-a" } });
    // Juliet's own message, and the account's marker reflected by the room: nothing of the account's to raise.
    await change(a, "nurse", { marker: { name: "displayed", id: "room-j" } });
    await change(a, "romeo", { marker: { name: "acknowledged", id: "room-c" } });
    await change(a, "juliet", { marker: { name: "received", id: "room-c" } });
    // By our id: not for a message the room gave a stanza-id (the MUC-assigned one must be used), nor a private one.
    await change(a, "nurse", { marker: { name: "acknowledged", id: third } });
    await change(a, "nurse", { marker: { name: "acknowledged", id: whisper } });
    // A room that gave none: clients name the message by its id.
    const fourth = await send("four", "");
    await change(a, "nurse", { marker: { name: "displayed", id: fourth } });
    await sentinel(a);
    assert.deepEqual(await since(a, mark, (d) => d.marker), [[first, "displayed"], [second, "displayed"], [third, "received"], "message:four", [third, "displayed"], [fourth, "displayed"], "message:sentinel"]);
    assert.equal((await row(whisper)).marker, null, "a private message to an occupant is not the room's");
    assert.equal((await row(await idOf(a, "j-1"))).marker, null);
  });
});
