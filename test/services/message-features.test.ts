// Message features in one-to-one chat as the use cases handle them (src/services/inbound-features.ts,
// src/services/message-actions.ts), against a real PostgreSQL and a fake outbound port: a peer's
// references by her XEP-0359 origin-id (XEP-0424, XEP-0444), the account's references to her
// messages, XEP-0333 markers marking every message up to the one they name, and the thread a
// displayed marker carries.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { InboundFeatures, InboundMessage } from "../../src/domain/inbound.js";
import type { Marker } from "../../src/domain/message-features.js";
import type { Stanza } from "../../src/domain/stanza.js";
import { MAX_MARKED } from "../../src/db/message-state.js";
import type { Inbound } from "../../src/services/inbound.js";
import { correctionOf, MessageActions } from "../../src/services/message-actions.js";
import type { Messaging } from "../../src/services/messaging.js";
import { appError, countedInbound, setup, teardown, type Env, type InboundCounts, type TestAccount } from "./setup.js";
import { inboundMessage } from "./stanzas.js";

const JULIET = "juliet@example.net/balcony";
const NURSE = "nurse@example.net/garden";

describe("message features (one-to-one)", () => {
  let env: Env;
  let inbound: Inbound;
  let actions: MessageActions;
  let messaging: Messaging;
  /** What the inbound service ran (setup.ts countedInbound). */
  let counts: InboundCounts;

  before(async () => {
    env = await setup();
    ({ inbound, counts } = countedInbound(env));
    actions = new MessageActions(env.delivery, env.out, env.domain);
    messaging = env.messaging();
  });
  after(async () => {
    await inbound?.idle();
    await teardown(env);
  });
  beforeEach(() => env.clean());

  /** Pushed synchronously, so they make one batch. */
  const feed = async (...stanzas: InboundMessage[]) => {
    for (const s of stanzas) inbound.receive(s);
    await inbound.idle();
  };
  /** A message from `from` to the account, with stanza id `id` and the given parts. */
  const from = (a: TestAccount, who: string, id: string, extra: Partial<InboundMessage> = {}) => inboundMessage(who, a.jid, { id, ...extra });
  const withFeatures = (a: TestAccount, who: string, features: InboundFeatures, extra: Partial<InboundMessage> = {}) => from(a, who, `f-${Math.random()}`, { features, ...extra });
  const marker = (a: TestAccount, name: Marker, id: string, who = JULIET, thread: string | null = null) => withFeatures(a, who, { marker: { name, id } }, { thread });
  /** The Balcony id of the account's inbound message with stanza id `stanzaId`. */
  const idOf = async (a: TestAccount, stanzaId: string) => (await env.db.prisma.message.findFirstOrThrow({ where: { accountId: a.id, stanzaId }, select: { id: true } })).id;
  /** The message-update events after `after`, as [message id, what `pick` takes of the view]. */
  const updates = async (a: TestAccount, after: number, pick: (d: Record<string, unknown>) => unknown) =>
    (await env.events(a.id, after)).filter((e) => e.type === "message-update").map((e) => [(e.data as { id: string }).id, pick(e.data as Record<string, unknown>)]);
  const head = async (a: TestAccount) => (await env.events(a.id)).at(-1)?.seq ?? 0;
  /** The account's outbound messages to Juliet, sent (and confirmed) in order. */
  async function sendMany(a: TestAccount, n: number, thread: (i: number) => string | null = () => null): Promise<string[]> {
    const results = await messaging.sendBatch(
      a,
      null,
      Array.from({ length: n }, (_, i) => ({ message: { to: "juliet@example.net", body: `m${i}`, thread: thread(i) ?? undefined }, idempotencyKey: null })),
    );
    await env.flush();
    return results.map((r) => {
      assert.ok(!(r instanceof Error), String(r));
      return r.id;
    });
  }
  const markers = async (ids: string[]) => {
    const rows = await env.db.prisma.message.findMany({ where: { id: { in: ids } }, select: { id: true, marker: true } });
    const byId = new Map(rows.map((r) => [r.id, r.marker]));
    return ids.map((id) => byId.get(id) ?? null);
  };

  it("stores a peer's XEP-0359 origin-id where it differs from the stanza id, in the batch's one statement", async () => {
    const a = await env.account("romeo");
    const [aloneBefore, txBefore] = [counts.alone, counts.transactions];
    // One batch of plain messages (the unnest shape), then one alone (the VALUES shape).
    await feed(
      from(a, JULIET, "s-1", { body: "differs", originId: "o-1" }),
      from(a, JULIET, "s-2", { body: "same", originId: "s-2" }),
      from(a, JULIET, "s-3", { body: "none" }),
    );
    await feed(from(a, JULIET, "s-4", { body: "alone", originId: "o-4" }));
    assert.equal(counts.transactions - txBefore, 0, "plain messages need no transaction");
    assert.equal(counts.alone - aloneBefore, 2, "each batch's rows and events: one statement");
    const rows = await env.db.pool.query<{ stanza_id: string; origin_id: string | null }>("SELECT stanza_id, origin_id FROM message WHERE account_id = $1 ORDER BY seq", [a.id]);
    assert.deepEqual(
      rows.rows.map((r) => [r.stanza_id, r.origin_id]),
      [
        ["s-1", "o-1"],
        ["s-2", null],
        ["s-3", null],
        ["s-4", "o-4"],
      ],
    );
  });

  it("applies a peer's retraction and reactions that name her message by its origin-id (XEP-0424, XEP-0444), not another peer's", async () => {
    const a = await env.account("romeo");
    // XEP-0424 §Use Case: message 'wrong-recipient-1' with origin-id 'origin-id-1'.
    await feed(from(a, JULIET, "wrong-recipient-1", { body: "Have not saints lips", subject: "lips", originId: "origin-id-1" }), from(a, JULIET, "s-2", { body: "and holy palmers too?", originId: "origin-id-2" }));
    const [first, second] = [await idOf(a, "wrong-recipient-1"), await idOf(a, "s-2")];
    const mark = await head(a);
    await feed(withFeatures(a, NURSE, { retract: "origin-id-1" }), withFeatures(a, NURSE, { reactions: { id: "origin-id-2", emojis: ["🤡"] } }));
    await feed(withFeatures(a, JULIET, { retract: "origin-id-1" }));
    await feed(withFeatures(a, JULIET, { reactions: { id: "origin-id-2", emojis: ["❤", "👍"] } }));
    assert.deepEqual(await updates(a, mark, (d) => [d.retracted !== null, d.reactions]), [
      [first, [true, {}]],
      [second, [false, { "❤": ["juliet@example.net"], "👍": ["juliet@example.net"] }]],
    ]);
    const tomb = await env.db.prisma.message.findUniqueOrThrow({ where: { id: first } });
    // XEP-0424 §Tombstones: the original contents go, the subject with the body.
    assert.deepEqual([tomb.retractedAt !== null, tomb.body, tomb.subject], [true, null, null], "a tombstone");
  });

  it("the account's own retraction leaves a tombstone with neither body nor subject (XEP-0424 §Tombstones)", async () => {
    const a = await env.account("romeo");
    const sent = await messaging.send(a, null, { to: "juliet@example.net", body: "secret", subject: "the secret subject" }, null);
    await env.flush();
    await actions.retract(a, sent.id);
    const view = await messaging.get(a, sent.id);
    assert.deepEqual([view.retracted !== null, view.body, view.subject], [true, null, null]);
  });

  it("takes a peer's correction of her reply without the fallback quote it re-sends, as the reply itself was stored (XEP-0308 §Business Rules, XEP-0461 §3)", async () => {
    const a = await env.account("romeo");
    const ours = (await messaging.send(a, null, { to: "juliet@example.net", body: "hi" }, null)).id;
    await env.flush();
    const quote = "> romeo wrote:\n> hi\n";
    const reply = { id: ours, quoteEnd: [...quote].length };
    await feed(from(a, JULIET, "r-1", { body: `${quote}hello`, features: { reply } }));
    const hers = await idOf(a, "r-1");
    await feed(withFeatures(a, JULIET, { replace: "r-1", reply }, { body: `${quote}hello there` }));
    const row = await env.db.prisma.message.findUniqueOrThrow({ where: { id: hers } });
    assert.deepEqual([row.body, row.editedAt !== null, (row.ext as { replyTo?: unknown }).replyTo], ["hello there", true, { id: ours }]);
  });

  it("stores a peer's attachment whose body only repeats its URL (the XEP-0066 fallback, after any reply quote) with no body, as the account's own; a body with other text is kept", async () => {
    const a = await env.account("romeo");
    const url = "https://files.example/rose.jpg";
    const attachments = [{ url, mediaType: "image/jpeg" }];
    const ours = (await messaging.send(a, null, { to: "juliet@example.net", attachments }, null)).id;
    await env.flush();
    const quote = "> romeo wrote:\n> https://files.example/rose.jpg\n";
    const mark = await head(a);
    await feed(
      from(a, JULIET, "a-1", { body: url, features: { attachments } }),
      from(a, JULIET, "a-2", { body: ` ${url}\n`, features: { attachments } }),
      from(a, JULIET, "a-3", { body: `${quote}${url}`, features: { attachments, reply: { id: ours, quoteEnd: [...quote].length } } }),
      from(a, JULIET, "a-4", { body: `a rose: ${url}`, features: { attachments } }),
      from(a, JULIET, "a-5", { body: "https://files.example/other.jpg", features: { attachments } }),
    );
    const stored = await env.db.pool.query<{ body: unknown }>("SELECT body FROM message WHERE account_id = $1 AND direction = 'in' ORDER BY seq", [a.id]);
    assert.deepEqual(stored.rows.map((r) => r.body), [null, null, null, `a rose: ${url}`, "https://files.example/other.jpg"]);
    const events = (await env.events(a.id, mark)).filter((e) => e.type === "message").map((e) => (e.data as { body: unknown }).body);
    assert.deepEqual(events, [null, null, null, `a rose: ${url}`, "https://files.example/other.jpg"], "the events say the same");
    assert.equal((await messaging.get(a, ours)).body, null, "the account's own attachment-only message, for comparison");
  });

  it("reacts to a peer's message by her origin-id and marks it displayed by its stanza id, in its thread (XEP-0444, XEP-0333)", async () => {
    const a = await env.account("romeo");
    await feed(
      from(a, JULIET, "s-1", { body: "origin differs", originId: "o-1", thread: "balcony", features: { markable: true } }),
      from(a, JULIET, "s-2", { body: "no origin, no thread", features: { markable: true } }),
    );
    const [first, second] = [await idOf(a, "s-1"), await idOf(a, "s-2")];
    await actions.react(a, first, ["❤"]);
    await actions.react(a, second, ["☺"]);
    await actions.displayed(a, first);
    await actions.displayed(a, second);
    await env.flush();
    const acts = env.out.take().flatMap((s: Stanza) => (s.kind === "message-action" ? [s.action] : []));
    assert.deepEqual(acts, [
      { kind: "reactions", ref: "o-1", emojis: ["❤"] },
      { kind: "reactions", ref: "s-2", emojis: ["☺"] },
      { kind: "displayed", ref: "s-1", thread: "balcony" },
      { kind: "displayed", ref: "s-2", thread: null },
    ]);
  });

  it("holds a correction's Idempotency-Key as a new message's (API.md Messages): the same payload again answers the same and sends nothing; another payload, or a new message's key, is 422, and so is a new message with a correction's key", async () => {
    const a = await env.account("romeo");
    const [first, second] = await sendMany(a, 2);
    env.out.reset();
    const fix = (id: string, body: string, key: string | null) => actions.correct(a, null, id, correctionOf({ to: "juliet@example.net", body, replace: id } as { to: string; body: string }, key));
    const answered = await fix(first!, "m0, corrected", "k-1");
    assert.equal(answered.replayed, false);
    assert.deepEqual(await fix(first!, "m0, corrected", "k-1"), { ...answered, replayed: true }, "a retry: the first answer again");
    await assert.rejects(fix(first!, "m0, corrected again", "k-1"), appError("idempotency-key-reused"));
    await assert.rejects(fix(second!, "m1, corrected", "k-1"), appError("idempotency-key-reused"), "the key names another correction");
    // Nor does a correction's key name a new message (alone, or in a batch).
    await assert.rejects(messaging.send(a, null, { to: "juliet@example.net", body: "new, under a correction's key" }, "k-1"), appError("idempotency-key-reused"));
    // A new message's key cannot name a correction.
    const keyed = await messaging.send(a, null, { to: "juliet@example.net", body: "keyed" }, "k-2");
    await assert.rejects(fix(second!, "m1, corrected", "k-2"), appError("idempotency-key-reused"));
    // The sentinel: a fresh key corrects.
    assert.equal((await fix(second!, "m1, corrected", "k-3")).replayed, false);
    await env.flush();
    const sent = env.out.take().flatMap((s: Stanza) => (s.kind === "message-action" && s.action.kind === "replace" ? [s.action.body] : s.kind === "message" ? [s.id === keyed.id ? "keyed" : s.id] : []));
    assert.deepEqual(sent, ["m0, corrected", "keyed", "m1, corrected"]);
    assert.equal((await env.db.prisma.message.findUniqueOrThrow({ where: { id: first! } })).body, "m0, corrected");
  });

  it("raises a peer's marker on every message up to the one it names whose marker is lower, one update each in order (XEP-0333)", async () => {
    const a = await env.account("romeo");
    const ids = await sendMany(a, 5);
    const toNurse = (await messaging.send(a, null, { to: "nurse@example.net", body: "for the nurse" }, null)).id;
    await env.flush();
    let mark = await head(a);
    await feed(marker(a, "displayed", ids[2]!));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [
      [ids[0], "displayed"],
      [ids[1], "displayed"],
      [ids[2], "displayed"],
    ]);
    mark = await head(a);
    await feed(marker(a, "received", ids[4]!));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [
      [ids[3], "received"],
      [ids[4], "received"],
    ], "received raises only what was below it");
    mark = await head(a);
    await feed(marker(a, "received", ids[1]!), marker(a, "displayed", ids[0]!), marker(a, "acknowledged", toNurse));
    await feed(marker(a, "acknowledged", ids[4]!, NURSE));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [], "nothing lower, nothing older; another peer's marker, or a marker for another conversation, nothing");
    await feed(marker(a, "acknowledged", ids[3]!));
    assert.deepEqual(await markers(ids), ["acknowledged", "acknowledged", "acknowledged", "acknowledged", "received"]);
    assert.deepEqual(await markers([toNurse]), [null], "the nurse's conversation is another");
  });

  it("a chat state the account sent alone is no message: markers walk past it, and it cannot be corrected, retracted, reacted or replied to (404), by the account or the peer (XEP-0308 §Business Rules)", async () => {
    const a = await env.account("romeo");
    const send = async (m: { body?: string; state?: "composing" }) => (await messaging.send(a, null, { to: "juliet@example.net", ...m }, null)).id;
    const [text0, typing, text2] = [await send({ body: "m0" }), await send({ state: "composing" }), await send({ body: "m2" })];
    await env.flush();
    env.out.reset();
    let mark = await head(a);
    await feed(marker(a, "displayed", text2));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [
      [text0, "displayed"],
      [text2, "displayed"],
    ]);
    assert.deepEqual(await markers([text0, typing, text2]), ["displayed", null, "displayed"]);
    mark = await head(a);
    await feed(withFeatures(a, JULIET, { reactions: { id: typing, emojis: ["❤"] } }));
    await assert.rejects(actions.correct(a, null, typing, correctionOf({ to: "juliet@example.net", body: "typed" })), appError("message-not-found"));
    await assert.rejects(actions.react(a, typing, ["👍"]), appError("message-not-found"));
    await assert.rejects(actions.retract(a, typing), appError("message-not-found"));
    // Nor replied to (XEP-0461): there is nothing to quote.
    await assert.rejects(messaging.send(a, null, { to: "juliet@example.net", body: "as I was typing", reply: { id: typing } }, null), appError("message-not-found"));
    assert.deepEqual(await updates(a, mark, (d) => [d.body, d.reactions]), [], "no update for the chat state");
    const row = await env.db.prisma.message.findUniqueOrThrow({ where: { id: typing } });
    assert.deepEqual([row.body, row.reactions, row.editedAt, row.retractedAt], [null, null, null, null]);
    // The sentinel: the messages around it take the same changes.
    await actions.correct(a, null, text2, correctionOf({ to: "juliet@example.net", body: "m2, corrected" }));
    await actions.react(a, text2, ["👍"]);
    await env.flush();
    const acts = env.out.take().flatMap((s: Stanza) => (s.kind === "message-action" ? [[s.action.kind, "ref" in s.action ? s.action.ref : null]] : []));
    assert.deepEqual(acts, [
      ["replace", text2],
      ["reactions", text2],
    ]);
  });

  it("a marker, reaction or retraction naming the account's correction, or a peer's, applies to the message it corrected, in that conversation only (XEP-0444 §Business Rules)", async () => {
    const a = await env.account("romeo");
    const ours = (await messaging.send(a, null, { to: "juliet@example.net", body: "hi" }, null)).id;
    await env.flush();
    env.out.take();
    await actions.correct(a, null, ours, correctionOf({ to: "juliet@example.net", body: "hello" }));
    await env.flush();
    // The correction went under an id of its own, which a peer's client may take for the message's.
    const correction = env.out.take().flatMap((s: Stanza) => (s.kind === "message-action" && s.action.kind === "replace" ? [s.id] : []));
    assert.equal(correction.length, 1);
    assert.notEqual(correction[0], ours);
    // Her correction 'c-1' of her 's-1', which carries origin-id 'oc-1'.
    await feed(from(a, JULIET, "s-1", { body: "Wherefore art thou" }));
    const hers = await idOf(a, "s-1");
    await feed(withFeatures(a, JULIET, { replace: "s-1" }, { id: "c-1", originId: "oc-1", body: "Wherefore art thou, Romeo?" }));
    // The nurse names the same ids in her own conversation: nothing there goes by them.
    const mark = await head(a);
    await feed(marker(a, "displayed", correction[0]!, NURSE), withFeatures(a, NURSE, { reactions: { id: "c-1", emojis: ["🤡"] } }));
    await feed(marker(a, "displayed", correction[0]!), withFeatures(a, JULIET, { reactions: { id: correction[0]!, emojis: ["❤"] } }));
    await feed(withFeatures(a, JULIET, { retract: "oc-1" }));
    assert.deepEqual(await updates(a, mark, (d) => [d.marker, d.reactions, d.retracted !== null]), [
      [ours, ["displayed", {}, false]],
      [ours, ["displayed", { "❤": ["juliet@example.net"] }, false]],
      [hers, [null, {}, true]],
    ]);
    // A reply naming her correction quotes her message (XEP-0461).
    await feed(from(a, JULIET, "r-1", { body: "thus", features: { reply: { id: "c-1", quoteEnd: null } } }));
    const reply = await env.db.prisma.message.findUniqueOrThrow({ where: { id: await idOf(a, "r-1") } });
    assert.deepEqual((reply.ext as { replyTo?: unknown }).replyTo, { id: hers });
  });

  it("walks back only to the latest message already marked at that level, skips failed messages, keeps to the marker's thread, and raises at most MAX_MARKED", async () => {
    const a = await env.account("romeo");
    const ids = await sendMany(a, 6, (i) => (i === 4 ? "other" : i === 5 ? "t" : null));
    // Marked before markers were cumulative: [1] displayed alone, [0] not. [2] bounced.
    await env.db.pool.query("UPDATE message SET marker = 'displayed' WHERE id = $1::uuid", [ids[1]]);
    await env.db.pool.query("UPDATE message SET status = 'failed' WHERE id = $1::uuid", [ids[2]]);
    let mark = await head(a);
    await feed(marker(a, "displayed", ids[3]!));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [[ids[3], "displayed"]], "from after [1]: [2] failed");
    assert.deepEqual(await markers(ids.slice(0, 4)), [null, "displayed", null, "displayed"]);
    // In thread "t": only that thread's earlier messages (none) and the one named.
    mark = await head(a);
    await feed(marker(a, "received", ids[5]!, JULIET, "t"));
    assert.deepEqual(await updates(a, mark, (d) => d.marker), [[ids[5], "received"]], "the marker's thread only");
    assert.deepEqual(await markers([ids[4]!]), [null]);

    const many = await sendMany(a, MAX_MARKED + 5);
    mark = await head(a);
    await feed(marker(a, "acknowledged", many.at(-1)!));
    const raised = await updates(a, mark, (d) => d.marker);
    assert.deepEqual(
      raised.map(([id]) => id),
      many.slice(-MAX_MARKED),
      `the latest ${MAX_MARKED}, in order`,
    );
    assert.deepEqual(await markers(many.slice(0, 5)), [null, null, null, null, null]);
  });
});
