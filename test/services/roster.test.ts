// The roster use case (src/services/roster.ts) against a real PostgreSQL and a fake outbound port:
// what each subscription action stores, which stanzas it records for the link (and Delivery then
// writes to the port), which events it logs.
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { getItem, rosterVersion } from "../../src/db/roster.js";
import { setContactPresence } from "../../src/db/contact-presence.js";
import type { AccountRef } from "../../src/domain/account.js";
import type { SubscriptionEvent } from "../../src/domain/subscription.js";
import { applySubscription, Roster } from "../../src/services/roster.js";
import { appError, setup, teardown, type Env, type TestAccount } from "./setup.js";

const CONTACT = "juliet@example.net";

describe("Roster service", () => {
  let env: Env;
  let roster: Roster;

  before(async () => {
    env = await setup();
    roster = new Roster(env.db, env.delivery);
  });
  after(() => teardown(env));
  beforeEach(() => env.clean());

  const apply = (account: AccountRef, ev: SubscriptionEvent, contact = CONTACT) => env.db.transaction((tx) => applySubscription(tx, account, contact, ev));
  const item = (a: TestAccount, contact = CONTACT) => getItem(env.db.prisma, a.id, contact);
  const types = async (a: TestAccount, after = 0) => (await env.events(a.id, after)).map((e) => e.type);
  const head = async (a: TestAccount) => (await env.events(a.id)).at(-1)?.seq ?? 0;

  it("subscribe: ask=subscribe, one subscribe stanza from the bare JID, one roster push", async () => {
    const a = await env.account("romeo");
    const view = await roster.act(a.ref, CONTACT, "subscribe");
    const expected = { jid: CONTACT, name: null, groups: [], subscription: "none", ask: "subscribe", approved: false };
    assert.deepEqual(view, expected);
    await env.flush();
    assert.deepEqual(env.out.sent, [{ kind: "subscription", from: a.jid, to: CONTACT, type: "subscribe" }]);
    const events = await env.events(a.id);
    assert.deepEqual(
      events.map((e) => ({ type: e.type, data: e.data, receiptTo: e.receiptTo })),
      [{ type: "roster", data: { item: expected, ver: "1" }, receiptTo: null }],
    );
    const row = await item(a);
    assert.equal(row?.askOut, true);
    assert.equal(row?.inRoster, true);
    assert.equal(await rosterVersion(env.db.prisma, a.id), 1);
  });

  it("approve with no pending request: pre-approval stored, nothing sent; a later subscribe is auto-answered without a subscription event", async () => {
    const a = await env.account("romeo");
    const view = await roster.act(a.ref, CONTACT, "subscribed");
    assert.deepEqual(view, { jid: CONTACT, name: null, groups: [], subscription: "none", ask: null, approved: true });
    assert.deepEqual(await env.outbox(), [], "§3.4.2: a pre-approval is not routed");
    await env.flush();
    assert.deepEqual(env.out.sent, []);
    assert.equal((await item(a))?.approved, true);
    assert.deepEqual(await types(a), ["roster"]);
    const seen = await head(a);

    const r = await apply(a.ref, { kind: "inbound", type: "subscribe" });
    assert.equal(r.ignored, false);
    // No session is available, so the answer is the approval alone (send-presence has nothing to send).
    assert.deepEqual(r.stanzas, [{ kind: "subscription", from: a.jid, to: CONTACT, type: "subscribed" }]);
    const row = await item(a);
    assert.equal(row?.subscription, "from");
    assert.equal(row?.approved, false, "the approval is consumed");
    assert.equal(row?.pendingIn, false);
    const later = await env.events(a.id, seen);
    assert.deepEqual(
      later.map((e) => ({ type: e.type, data: e.data })),
      [{ type: "roster", data: { item: { jid: CONTACT, name: null, groups: [], subscription: "from", ask: null, approved: false }, ver: "2" } }],
      "the account sees the roster change but no subscription request",
    );
    assert.deepEqual(await env.outbox(), [], "applySubscription leaves recording the stanzas to its caller");
    await env.flush();
    assert.deepEqual(env.out.sent, []);
  });

  it("an inbound subscribe with an available session is answered with subscribed, then that session's presence", async () => {
    const a = await env.account("romeo");
    await env.db.transaction((tx) => env.sessions.setPresence(tx, a.id, "phone", { available: true, show: "away", status: "out", priority: 3 }));
    await roster.act(a.ref, CONTACT, "subscribed");
    const r = await apply(a.ref, { kind: "inbound", type: "subscribe" });
    assert.deepEqual(r.stanzas, [
      { kind: "subscription", from: a.jid, to: CONTACT, type: "subscribed" },
      { kind: "presence", from: `${a.jid}/phone`, to: CONTACT, type: null, show: "away", status: "out", priority: 3 },
    ]);
  });

  it("an inbound subscribe without pre-approval is stored and delivered as a subscription event, not as a roster item", async () => {
    const a = await env.account("romeo");
    const r = await env.db.transaction((tx) => applySubscription(tx, a.ref, CONTACT, { kind: "inbound", type: "subscribe" }, { status: "hi, it's me" }));
    assert.deepEqual(r.stanzas, []);
    const events = await env.events(a.id);
    assert.deepEqual(
      events.map((e) => ({ type: e.type, data: e.data })),
      [{ type: "subscription", data: { jid: CONTACT, type: "subscribe", status: "hi, it's me" } }],
    );
    assert.deepEqual(
      (await roster.pending(a.id)).map((p) => ({ jid: p.jid, status: p.status })),
      [{ jid: CONTACT, status: "hi, it's me" }],
    );
    const doc = await roster.read(a.id, undefined);
    assert.deepEqual(JSON.parse(doc.json!.toString()), { ver: "0", items: [] }, "a stranger's request is not a roster item (RFC 6121 A.1)");
  });

  describe("remove sends exactly what the state requires (§2.5.2)", () => {
    it("None + Pending Out: unsubscribe only", async () => {
      const a = await env.account("romeo");
      await roster.act(a.ref, CONTACT, "subscribe");
      await env.flush();
      env.out.reset();
      const seen = await head(a);
      await roster.remove(a.ref, CONTACT);
      await env.flush();
      assert.deepEqual(env.out.sent, [{ kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribe" }]);
      assert.equal(await item(a), null);
      assert.deepEqual(
        (await env.events(a.id, seen)).map((e) => e.data),
        [{ jid: CONTACT, removed: true, ver: "2" }],
      );
    });

    it("From: unsubscribed, then unavailable from each available session", async () => {
      const a = await env.account("romeo");
      await apply(a.ref, { kind: "inbound", type: "subscribe" });
      await roster.act(a.ref, CONTACT, "subscribed"); // From
      assert.equal((await item(a))?.subscription, "from");
      await env.db.transaction((tx) => env.sessions.setPresence(tx, a.id, "phone", { available: true, show: null, status: null, priority: 0 }));
      await env.flush();
      env.out.reset();
      await roster.remove(a.ref, CONTACT);
      await env.flush();
      assert.deepEqual(env.out.sent, [
        { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribed" },
        { kind: "presence", from: `${a.jid}/phone`, to: CONTACT, type: "unavailable", show: null, status: null, priority: null },
      ]);
      assert.equal(await item(a), null);
    });

    it("Both: unsubscribe, then unsubscribed", async () => {
      const a = await env.account("romeo");
      await roster.act(a.ref, CONTACT, "subscribe");
      await apply(a.ref, { kind: "inbound", type: "subscribed" }); // To
      await apply(a.ref, { kind: "inbound", type: "subscribe" }); // To + Pending In
      await roster.act(a.ref, CONTACT, "subscribed"); // Both
      assert.equal((await item(a))?.subscription, "both");
      await env.flush();
      env.out.reset();
      await roster.remove(a.ref, CONTACT);
      await env.flush();
      assert.deepEqual(env.out.sent, [
        { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribe" },
        { kind: "subscription", from: a.jid, to: CONTACT, type: "unsubscribed" },
      ]);
      assert.equal(await item(a), null);
    });

    it("an item that is not in the roster: not-found, nothing sent", async () => {
      const a = await env.account("romeo");
      await assert.rejects(roster.remove(a.ref, CONTACT), appError("not-found"));
      assert.deepEqual(await env.outbox(), []);
      await env.flush();
      assert.deepEqual(env.out.sent, []);
    });
  });

  it("unsubscribe from a JID the account never had in its roster: not-subscribed, nothing sent; from a contact, and again (a retry), the item", async () => {
    const a = await env.account("romeo");
    await assert.rejects(roster.act(a.ref, "stranger@example.net", "unsubscribe"), appError("not-subscribed"));
    assert.deepEqual(await env.outbox(), []);
    assert.equal(await item(a, "stranger@example.net"), null);
    // The sentinel: a contact's unsubscription goes out, and its retry answers with the item again.
    await roster.act(a.ref, CONTACT, "subscribe");
    await env.flush();
    env.out.reset();
    const first = await roster.act(a.ref, CONTACT, "unsubscribe");
    assert.deepEqual(await roster.act(a.ref, CONTACT, "unsubscribe"), first);
    await env.flush();
    assert.deepEqual(env.out.sent.map((s) => ("type" in s ? s.type : s.kind)).slice(0, 1), ["unsubscribe"]);
  });

  it("unsubscribe with only a stranger's request stored is 409 not-subscribed; deny of a JID with no record changes nothing; nothing sent", async () => {
    const a = await env.account("romeo");
    const STRANGER = "stranger@example.net";
    await env.db.transaction((tx) => applySubscription(tx, a.ref, STRANGER, { kind: "inbound", type: "subscribe" }));
    await env.flush();
    env.out.reset();
    const seen = await head(a);
    // Her request is stored, but she is not in the roster: there is no subscription of ours to cancel.
    await assert.rejects(roster.act(a.ref, STRANGER, "unsubscribe"), appError("not-subscribed"));
    // Nobody asked and nothing was granted: nothing to refuse, and nothing stored (A.2.4).
    assert.equal((await roster.act(a.ref, "nobody@example.net", "unsubscribed")).subscription, "none");
    assert.equal(await item(a, "nobody@example.net"), null);
    assert.deepEqual((await roster.pending(a.id)).map((p) => p.jid), [STRANGER], "her request still waits");
    assert.deepEqual(await env.events(a.id, seen), []);
    assert.deepEqual(await env.outbox(), []);
    await env.flush();
    assert.deepEqual(env.out.sent, []);
    // The sentinel: her request can be denied (§3.1.4); a retry finds no record and sends nothing more.
    assert.equal((await roster.act(a.ref, STRANGER, "unsubscribed")).subscription, "none");
    assert.equal((await roster.act(a.ref, STRANGER, "unsubscribed")).subscription, "none");
    await env.flush();
    assert.deepEqual(env.out.sent, [{ kind: "subscription", from: a.jid, to: STRANGER, type: "unsubscribed" }]);
  });

  it("act and remove while the link is down: accepted and stored; the stanzas wait in the outbox and go out in the order recorded", async () => {
    const a = await env.account("romeo");
    await roster.put(a.ref, CONTACT, { name: "Juliet" });
    const seen = await head(a);
    const verBefore = await rosterVersion(env.db.prisma, a.id);
    env.out.online = false;

    const subscribed = await roster.act(a.ref, CONTACT, "subscribe");
    assert.equal(subscribed.ask, "subscribe", "accepted: the state changes without waiting for the link");
    await roster.act(a.ref, "nurse@example.net", "subscribe");
    await roster.act(a.ref, CONTACT, "unsubscribe"); // None + Pending Out: the request is withdrawn
    await roster.remove(a.ref, "nurse@example.net");
    env.delivery.kick();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(env.out.sent, [], "nothing is written while the link is down");
    assert.equal(env.out.writes, 0);

    const sub = (to: string, type: "subscribe" | "unsubscribe") => ({ kind: "subscription", from: a.jid, to, type });
    const expected = [sub(CONTACT, "subscribe"), sub("nurse@example.net", "subscribe"), sub(CONTACT, "unsubscribe"), sub("nurse@example.net", "unsubscribe")];
    const waiting = await env.outbox();
    assert.deepEqual(
      waiting.map((r) => ({ accountId: r.accountId, stanza: r.stanza })),
      expected.map((stanza) => ({ accountId: a.id, stanza })),
      "recorded in the outbox, in the order of the actions",
    );
    assert.deepEqual(
      waiting.map((r) => r.seq),
      waiting.map((r) => r.seq).sort((x, y) => x - y),
    );
    const row = await item(a);
    assert.deepEqual({ subscription: row?.subscription, askOut: row?.askOut, inRoster: row?.inRoster }, { subscription: "none", askOut: false, inRoster: true });
    assert.equal(await item(a, "nurse@example.net"), null, "removed");
    assert.equal(await rosterVersion(env.db.prisma, a.id), verBefore + 4, "one roster push per action");
    assert.equal((await env.events(a.id, seen)).length, 4);

    env.out.online = true;
    await env.flush();
    assert.deepEqual(env.out.sent, expected, "sent in the order recorded");
    assert.deepEqual(await env.outbox(), []);
  });

  it("put bumps ver at each change and reports created true, then false; a put that repeats the item changes nothing", async () => {
    const a = await env.account("romeo");
    const v0 = await rosterVersion(env.db.prisma, a.id);
    const first = await roster.put(a.ref, CONTACT, { name: "Juliet", groups: ["Capulets"] });
    assert.deepEqual(first, { item: { jid: CONTACT, name: "Juliet", groups: ["Capulets"], subscription: "none", ask: null, approved: false }, created: true });
    assert.equal(await rosterVersion(env.db.prisma, a.id), v0 + 1);
    const second = await roster.put(a.ref, CONTACT, { groups: ["Capulets", "Verona"] });
    assert.deepEqual(second, { item: { jid: CONTACT, name: "Juliet", groups: ["Capulets", "Verona"], subscription: "none", ask: null, approved: false }, created: false });
    assert.equal(await rosterVersion(env.db.prisma, a.id), v0 + 2);
    // Repeated whole, by name alone, by groups alone, or with no field: the same item, no new ver, no event.
    for (const same of [{ name: "Juliet", groups: ["Capulets", "Verona"] }, { name: "Juliet" }, { groups: ["Capulets", "Verona"] }, {}])
      assert.deepEqual(await roster.put(a.ref, CONTACT, same), { item: second.item, created: false }, JSON.stringify(same));
    assert.equal(await rosterVersion(env.db.prisma, a.id), v0 + 2);
    // The groups in another order are a change (the item lists them as given), as is a name removed.
    const third = await roster.put(a.ref, CONTACT, { groups: ["Verona", "Capulets"], name: null });
    assert.deepEqual(third.item.groups, ["Verona", "Capulets"]);
    assert.equal(third.item.name, null);
    assert.equal(await rosterVersion(env.db.prisma, a.id), v0 + 3);
    assert.deepEqual(
      (await env.events(a.id)).map((e) => e.data),
      [
        { item: first.item, ver: String(v0 + 1) },
        { item: second.item, ver: String(v0 + 2) },
        { item: third.item, ver: String(v0 + 3) },
      ],
    );
    assert.deepEqual(await env.outbox(), [], "§2.4: a roster set sends no subscription stanza");
    await env.flush();
    assert.deepEqual(env.out.sent, []);
  });

  it("put on a stranger's pending request makes it a roster item (created true) and keeps the request", async () => {
    const a = await env.account("romeo");
    await apply(a.ref, { kind: "inbound", type: "subscribe" });
    const r = await roster.put(a.ref, CONTACT, { name: "J" });
    assert.equal(r.created, true);
    assert.equal((await item(a))?.pendingIn, true);
  });

  it("read: the document with its etag, and null when If-None-Match is the current etag", async () => {
    const a = await env.account("romeo");
    await roster.put(a.ref, "b@example.net", { name: "B" });
    await roster.put(a.ref, "a@example.net", { groups: ["G"] });
    const doc = await roster.read(a.id, undefined);
    assert.equal(doc.etag, '"2"');
    assert.deepEqual(JSON.parse(doc.json!.toString()), {
      ver: "2",
      items: [
        { jid: "a@example.net", name: null, groups: ["G"], subscription: "none", ask: null, approved: false },
        { jid: "b@example.net", name: "B", groups: [], subscription: "none", ask: null, approved: false },
      ],
    });
    assert.deepEqual(await roster.read(a.id, '"2"'), { etag: '"2"', json: null });
    assert.deepEqual(await roster.read(a.id, 'W/"2"'), { etag: '"2"', json: null }, "weak comparison (RFC 9110 §13.1.2)");
    assert.deepEqual(await roster.read(a.id, '"7", "2"'), { etag: '"2"', json: null }, "a list of etags");
    const stale = await roster.read(a.id, '"1"');
    assert.equal(stale.etag, '"2"');
    assert.equal(stale.json, doc.json);
    assert.deepEqual(await roster.read(a.id, "*"), { etag: '"2"', json: null }, "`*` matches any current representation (RFC 9110 §13.1.2)");
    assert.deepEqual(await roster.read(a.id, '"7", *'), { etag: '"2"', json: null }, "`*` in a list");
    assert.deepEqual(await roster.read(a.id, "2"), { etag: '"2"', json: null }, "the bare version, as the body's ver shows it");
    assert.equal((await roster.read(a.id, "1")).json, doc.json, "an unquoted older version is no match");
    assert.equal((await roster.read(a.id, '"*"')).json, doc.json, "a quoted * is an ordinary (non-matching) tag");
  });

  describe("losing `to` clears the contact's stored presence, and the streams hear each resource go (§3.2.2, §3.3)", () => {
    const stored = (a: TestAccount) => env.db.prisma.contactPresence.findMany({ where: { accountId: a.id }, orderBy: { resource: "asc" }, select: { jid: true, resource: true } });
    const unavailable = (resource: string) => ({ type: "presence", data: { jid: CONTACT, from: `${CONTACT}/${resource}`, resource, type: "unavailable", show: null, status: null, priority: 0 } });

    /** The account with `both` on CONTACT, whose resources balcony and garden are stored as available. */
    async function bothOnline(): Promise<TestAccount> {
      const a = await env.account("romeo");
      await roster.act(a.ref, CONTACT, "subscribe");
      await apply(a.ref, { kind: "inbound", type: "subscribed" }); // To
      await apply(a.ref, { kind: "inbound", type: "subscribe" });
      await roster.act(a.ref, CONTACT, "subscribed"); // Both
      await env.db.transaction(async (tx) => {
        for (const r of ["garden", "balcony"]) await setContactPresence(tx, a.id, CONTACT, r, { show: null, status: null, priority: 0 });
      });
      assert.equal((await stored(a)).length, 2);
      return a;
    }

    it("inbound unsubscribed (the contact denies): unavailable events for each stored resource, in the same transaction", async () => {
      const a = await bothOnline();
      const seen = await head(a);
      await apply(a.ref, { kind: "inbound", type: "unsubscribed" }); // Both -> From
      assert.deepEqual(await stored(a), []);
      const events = (await env.events(a.id, seen)).map((e) => ({ type: e.type, data: e.data }));
      assert.deepEqual(
        events.filter((e) => e.type === "presence"),
        [unavailable("balcony"), unavailable("garden")],
      );
      assert.deepEqual(
        events.map((e) => e.type),
        ["subscription", "roster", "presence", "presence"],
      );
    });

    it("the account's unsubscribe and DELETE: the same events; a change that keeps `to` clears nothing and tells nothing", async () => {
      const a = await bothOnline();
      let seen = await head(a);
      await roster.act(a.ref, CONTACT, "unsubscribed"); // deny: Both -> To, we still get her presence
      assert.equal((await stored(a)).length, 2);
      assert.deepEqual((await types(a, seen)).filter((t) => t === "presence"), []);

      seen = await head(a);
      await roster.act(a.ref, CONTACT, "unsubscribe"); // To -> None
      assert.deepEqual(await stored(a), []);
      assert.deepEqual(
        (await env.events(a.id, seen)).filter((e) => e.type === "presence").map((e) => ({ type: e.type, data: e.data })),
        [unavailable("balcony"), unavailable("garden")],
      );

      const b = await bothOnline();
      seen = await head(b);
      await roster.remove(b.ref, CONTACT);
      assert.deepEqual(await stored(b), []);
      assert.deepEqual(
        (await env.events(b.id, seen)).filter((e) => e.type === "presence").map((e) => ({ type: e.type, data: e.data })),
        [unavailable("balcony"), unavailable("garden")],
      );
    });
  });

  it("read: a kept document is only served while its version is current, whichever instance changed the roster", async () => {
    const a = await env.account("romeo");
    const other = new Roster(env.db, env.delivery); // a second gateway instance over the same database
    await roster.put(a.ref, "a@example.net", { name: "A" });
    const first = await roster.read(a.id, undefined);
    assert.equal(first.etag, '"1"');
    assert.equal((await roster.read(a.id, undefined)).json, first.json, "unchanged: the same serialised document");

    // Every kind of change bumps the version; each is seen by the instance that did not make it.
    const doc = async () => JSON.parse((await roster.read(a.id, undefined)).json!.toString()) as { ver: string; items: { jid: string; name: string | null; groups: string[]; subscription: string; ask: string | null; approved: boolean }[] };
    await other.put(a.ref, "a@example.net", { name: "A2", groups: ["x", "y\"z"] });
    assert.deepEqual((await doc()).items, [{ jid: "a@example.net", name: "A2", groups: ["x", 'y"z'], subscription: "none", ask: null, approved: false }]);
    await other.act(a.ref, "b@example.net", "subscribe");
    assert.deepEqual((await doc()).items.map((i) => [i.jid, i.ask]), [["a@example.net", null], ["b@example.net", "subscribe"]]);
    await other.act(a.ref, "c@example.net", "subscribed"); // pre-approval: visible as approved
    assert.equal((await doc()).items.find((i) => i.jid === "c@example.net")?.approved, true);
    await env.db.transaction((tx) => applySubscription(tx, a.ref, "b@example.net", { kind: "inbound", type: "subscribed" }));
    assert.equal((await doc()).items.find((i) => i.jid === "b@example.net")?.subscription, "to");
    await other.remove(a.ref, "b@example.net");
    const last = await doc();
    assert.deepEqual(last.items.map((i) => i.jid), ["a@example.net", "c@example.net"]);
    assert.equal(last.ver, String(await rosterVersion(env.db.prisma, a.id)));
    await env.flush();
  });

  it("read after a change: the kept document and what changed, byte for byte what a full read gives", async () => {
    const a = await env.account("romeo");
    for (const n of ["b", "d", "f", "h"]) await roster.put(a.ref, `${n}@example.net`, { name: n.toUpperCase() });
    await roster.read(a.id, undefined);
    const fresh = async () => (await new Roster(env.db, env.delivery).read(a.id, undefined)).json!.toString();
    const check = async (what: string, full: boolean) => {
      const before = roster.stats.fullReads;
      const body = (await roster.read(a.id, undefined)).json!.toString();
      assert.equal(body, await fresh(), what);
      assert.equal(roster.stats.fullReads - before, full ? 1 : 0, `${what}: ${full ? "a full read" : "only what changed"}`);
    };
    await roster.put(a.ref, "d@example.net", { name: "D2", groups: ["g"] });
    await check("an item renamed", false);
    await roster.act(a.ref, "f@example.net", "subscribe");
    await roster.put(a.ref, "h@example.net", { name: null });
    await check("two items changed", false);
    await roster.remove(a.ref, "b@example.net");
    await check("an item removed (its row deleted)", true);
    await roster.put(a.ref, "c@example.net", { name: "C" });
    await check("a new item, in order", true);
    const other = new Roster(env.db, env.delivery);
    await other.put(a.ref, "c@example.net", { name: "C2" });
    await check("changed by another instance", false);
    await env.flush();
  });

  it("read: concurrent reads of a changed roster share one database read, and none answers with an older version", async () => {
    const a = await env.account("romeo");
    for (let i = 0; i < 20; i++) await roster.put(a.ref, `c${String(i).padStart(2, "0")}@example.net`, { groups: ["g"] });
    const reads = await Promise.all(Array.from({ length: 8 }, () => roster.read(a.id, undefined)));
    for (const r of reads) assert.equal(r.etag, '"20"');
    assert.ok(reads.every((r) => r.json === reads[0]!.json), "one document for all of them");
    // Reads racing a change: each answers with at least the version current when it started.
    const racing = Array.from({ length: 6 }, async (_, i) => {
      if (i % 2) await roster.put(a.ref, `d${i}@example.net`, {});
      const seen = await rosterVersion(env.db.prisma, a.id);
      const r = await roster.read(a.id, undefined);
      assert.ok(Number(r.etag.slice(1, -1)) >= seen, `read answered ${r.etag} after version ${seen}`);
      assert.equal(JSON.parse(r.json!.toString()).ver, r.etag.slice(1, -1));
    });
    await Promise.all(racing);
  });

  it("read: an account without roster items, and one that does not exist", async () => {
    const a = await env.account("romeo");
    assert.deepEqual(JSON.parse((await roster.read(a.id, undefined)).json!.toString()), { ver: "0", items: [] });
    // No such account (a caller's cached id gone stale): 404, not another account's empty roster.
    await assert.rejects(roster.read(987654, undefined), appError("account-not-found"));
  });
});
