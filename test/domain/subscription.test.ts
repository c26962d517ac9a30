// RFC 6121 Appendix A, row by row, as the account's own server processes the account's outbound
// stanzas (A.2) and the contact's inbound ones (A.3), plus pre-approval (§3.4) and removal (§2.5.2).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { prng } from "../helpers/prng.js";
import {
  stateName,
  transition,
  type Effect,
  type ItemState,
  type StateName,
  type SubscriptionEvent,
  type SubscriptionStanza,
  type Transition,
} from "../../src/domain/subscription.js";

const STATES: Record<StateName, Pick<ItemState, "subscription" | "askOut" | "pendingIn">> = {
  None: { subscription: "none", askOut: false, pendingIn: false },
  "None + Pending Out": { subscription: "none", askOut: true, pendingIn: false },
  "None + Pending In": { subscription: "none", askOut: false, pendingIn: true },
  "None + Pending Out/In": { subscription: "none", askOut: true, pendingIn: true },
  To: { subscription: "to", askOut: false, pendingIn: false },
  "To + Pending In": { subscription: "to", askOut: false, pendingIn: true },
  From: { subscription: "from", askOut: false, pendingIn: false },
  "From + Pending Out": { subscription: "from", askOut: true, pendingIn: false },
  Both: { subscription: "both", askOut: false, pendingIn: false },
};

/** A roster item in the named state; the tables assume the contact is in the roster. */
function item(name: StateName, extra: Partial<ItemState> = {}): ItemState {
  return { ...STATES[name], approved: false, inRoster: true, ...extra };
}

const send = (type: SubscriptionStanza): Effect => ({ kind: "send", type });
const DELIVER: Effect = { kind: "deliver" };
const PUSH: Effect = { kind: "roster-push" };
const PRESENCE: Effect = { kind: "send-presence" };
const UNAVAILABLE: Effect = { kind: "send-unavailable" };
const STORE: Effect = { kind: "store-request" };
const CLEAR: Effect = { kind: "clear-request" };

const NO_CHANGE = "no state change";

interface Row {
  from: StateName;
  /** The table's NEW STATE column. */
  to: StateName | typeof NO_CHANGE;
  /** Full expected state when it is more than the named state as a roster item. */
  state?: ItemState;
  effects: Effect[];
}

/** The row's expectation in the shape of a Transition. */
function expectedOf(row: Row): Transition {
  return { state: row.state ?? item(row.to === NO_CHANGE ? row.from : row.to), effects: row.effects, ignored: row.effects.length === 0 };
}

function runTable(table: string, event: SubscriptionEvent, rows: Row[]): void {
  const label = event.kind === "remove" ? "remove" : `${event.kind} ${event.type}`;
  describe(`${table} ${label}`, () => {
    it("covers every Appendix A.1 state exactly once, and the code agrees with the whole table", () => {
      // Every state once: a missing or doubled row fails here, before the code is asked.
      assert.deepEqual(rows.map((r) => r.from).sort(), Object.keys(STATES).sort());
      // Then each of the nine states, taken from A.1 (not from the rows), through the code.
      const got = (Object.keys(STATES) as StateName[]).map((name) => ({ from: name, ...transition(item(name), event) }));
      const want = (Object.keys(STATES) as StateName[]).map((name) => ({ from: name, ...expectedOf(rows.find((r) => r.from === name)!) }));
      assert.deepEqual(got, want);
    });
    for (const row of rows) {
      const what = row.effects.length ? row.effects.map((e) => (e.kind === "send" ? `send ${e.type}` : e.kind)).join(", ") : "ignored";
      it(`${table} ${label}, state '${row.from}' -> ${row.to === NO_CHANGE ? NO_CHANGE : `'${row.to}'`} (${what})`, () => {
        const before = item(row.from);
        const result = transition(before, event);
        const expected = expectedOf(row);
        assert.deepEqual(result.state, expected.state);
        assert.equal(stateName(result.state), row.to === NO_CHANGE ? row.from : row.to);
        assert.deepEqual(result.effects, expected.effects);
        assert.equal(result.ignored, expected.ignored);
      });
    }
  });
}

const out = (type: SubscriptionStanza): SubscriptionEvent => ({ kind: "outbound", type });
const inb = (type: SubscriptionStanza): SubscriptionEvent => ({ kind: "inbound", type });

// A.2.1: ROUTE? is "yes" in every row.
runTable("A.2.1", out("subscribe"), [
  { from: "None", to: "None + Pending Out", effects: [send("subscribe"), PUSH] },
  { from: "None + Pending Out", to: NO_CHANGE, effects: [send("subscribe")] },
  { from: "None + Pending In", to: "None + Pending Out/In", effects: [send("subscribe"), PUSH] },
  { from: "None + Pending Out/In", to: NO_CHANGE, effects: [send("subscribe")] },
  { from: "To", to: NO_CHANGE, effects: [send("subscribe")] },
  { from: "To + Pending In", to: NO_CHANGE, effects: [send("subscribe")] },
  { from: "From", to: "From + Pending Out", effects: [send("subscribe"), PUSH] },
  { from: "From + Pending Out", to: NO_CHANGE, effects: [send("subscribe")] },
  { from: "Both", to: NO_CHANGE, effects: [send("subscribe")] },
]);

// A.2.2: ROUTE? is "yes" in every row.
runTable("A.2.2", out("unsubscribe"), [
  { from: "None", to: NO_CHANGE, effects: [send("unsubscribe")] },
  { from: "None + Pending Out", to: "None", effects: [send("unsubscribe"), PUSH] },
  { from: "None + Pending In", to: NO_CHANGE, effects: [send("unsubscribe")] },
  { from: "None + Pending Out/In", to: "None + Pending In", effects: [send("unsubscribe"), PUSH] },
  { from: "To", to: "None", effects: [send("unsubscribe"), PUSH] },
  { from: "To + Pending In", to: "None + Pending In", effects: [send("unsubscribe"), PUSH] },
  { from: "From", to: NO_CHANGE, effects: [send("unsubscribe")] },
  { from: "From + Pending Out", to: "From", effects: [send("unsubscribe"), PUSH] },
  { from: "Both", to: "From", effects: [send("unsubscribe"), PUSH] },
]);

// A.2.3: "pre-approved" rows are not routed (§3.4.2); approvals are routed and followed by presence (§3.1.5).
const APPROVE = [send("subscribed"), PRESENCE, CLEAR, PUSH];
runTable("A.2.3", out("subscribed"), [
  { from: "None", to: NO_CHANGE, state: item("None", { approved: true }), effects: [PUSH] },
  { from: "None + Pending Out", to: NO_CHANGE, state: item("None + Pending Out", { approved: true }), effects: [PUSH] },
  { from: "None + Pending In", to: "From", effects: APPROVE },
  { from: "None + Pending Out/In", to: "From + Pending Out", effects: APPROVE },
  { from: "To", to: NO_CHANGE, state: item("To", { approved: true }), effects: [PUSH] },
  { from: "To + Pending In", to: "Both", effects: APPROVE },
  { from: "From", to: NO_CHANGE, effects: [] },
  { from: "From + Pending Out", to: NO_CHANGE, effects: [] },
  { from: "Both", to: NO_CHANGE, effects: [] },
]);

// A.2.4: the contact losing its subscription to us is followed by unavailable presence (§3.2.2).
const CANCEL = [send("unsubscribed"), UNAVAILABLE, PUSH];
runTable("A.2.4", out("unsubscribed"), [
  { from: "None", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out", to: NO_CHANGE, effects: [] },
  { from: "None + Pending In", to: "None", effects: [send("unsubscribed"), CLEAR] },
  { from: "None + Pending Out/In", to: "None + Pending Out", effects: [send("unsubscribed"), CLEAR] },
  { from: "To", to: NO_CHANGE, effects: [] },
  { from: "To + Pending In", to: "To", effects: [send("unsubscribed"), CLEAR] },
  { from: "From", to: "None", effects: CANCEL },
  { from: "From + Pending Out", to: "None + Pending Out", effects: CANCEL },
  { from: "Both", to: "To", effects: CANCEL },
]);

// A.3.1: rows marked "no *" auto-reply "subscribed" (§3.1.3).
const AUTO_REPLY = [send("subscribed"), PRESENCE];
runTable("A.3.1", inb("subscribe"), [
  { from: "None", to: "None + Pending In", effects: [DELIVER, STORE] },
  { from: "None + Pending Out", to: "None + Pending Out/In", effects: [DELIVER, STORE] },
  { from: "None + Pending In", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out/In", to: NO_CHANGE, effects: [] },
  { from: "To", to: "To + Pending In", effects: [DELIVER, STORE] },
  { from: "To + Pending In", to: NO_CHANGE, effects: [] },
  { from: "From", to: NO_CHANGE, effects: AUTO_REPLY },
  { from: "From + Pending Out", to: NO_CHANGE, effects: AUTO_REPLY },
  { from: "Both", to: NO_CHANGE, effects: AUTO_REPLY },
]);

// A.3.2: rows marked "yes *" where the contact loses its subscription also get unavailable (§3.3.3).
const UNSUBSCRIBED_US = [UNAVAILABLE, DELIVER, PUSH];
runTable("A.3.2", inb("unsubscribe"), [
  { from: "None", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out", to: NO_CHANGE, effects: [] },
  { from: "None + Pending In", to: "None", effects: [DELIVER, CLEAR] },
  { from: "None + Pending Out/In", to: "None + Pending Out", effects: [DELIVER, CLEAR] },
  { from: "To", to: NO_CHANGE, effects: [] },
  { from: "To + Pending In", to: "To", effects: [DELIVER, CLEAR] },
  { from: "From", to: "None", effects: UNSUBSCRIBED_US },
  { from: "From + Pending Out", to: "None + Pending Out", effects: UNSUBSCRIBED_US },
  { from: "Both", to: "To", effects: UNSUBSCRIBED_US },
]);

runTable("A.3.3", inb("subscribed"), [
  { from: "None", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out", to: "To", effects: [DELIVER, PUSH] },
  { from: "None + Pending In", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out/In", to: "To + Pending In", effects: [DELIVER, PUSH] },
  { from: "To", to: NO_CHANGE, effects: [] },
  { from: "To + Pending In", to: NO_CHANGE, effects: [] },
  { from: "From", to: NO_CHANGE, effects: [] },
  { from: "From + Pending Out", to: "Both", effects: [DELIVER, PUSH] },
  { from: "Both", to: NO_CHANGE, effects: [] },
]);

runTable("A.3.4", inb("unsubscribed"), [
  { from: "None", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out", to: "None", effects: [DELIVER, PUSH] },
  { from: "None + Pending In", to: NO_CHANGE, effects: [] },
  { from: "None + Pending Out/In", to: "None + Pending In", effects: [DELIVER, PUSH] },
  { from: "To", to: "None", effects: [DELIVER, PUSH] },
  { from: "To + Pending In", to: "None + Pending In", effects: [DELIVER, PUSH] },
  { from: "From", to: NO_CHANGE, effects: [] },
  { from: "From + Pending Out", to: "From", effects: [DELIVER, PUSH] },
  { from: "Both", to: "From", effects: [DELIVER, PUSH] },
]);

describe("§2.5.2 roster item removal", () => {
  const rows: [StateName, Effect[]][] = [
    ["None", [PUSH]],
    ["None + Pending Out", [send("unsubscribe"), PUSH]],
    ["None + Pending In", [send("unsubscribed"), CLEAR, PUSH]],
    ["None + Pending Out/In", [send("unsubscribe"), send("unsubscribed"), CLEAR, PUSH]],
    ["To", [send("unsubscribe"), PUSH]],
    ["To + Pending In", [send("unsubscribe"), send("unsubscribed"), CLEAR, PUSH]],
    ["From", [send("unsubscribed"), UNAVAILABLE, PUSH]],
    ["From + Pending Out", [send("unsubscribe"), send("unsubscribed"), UNAVAILABLE, PUSH]],
    ["Both", [send("unsubscribe"), send("unsubscribed"), UNAVAILABLE, PUSH]],
  ];
  for (const [name, effects] of rows) {
    it(`§2.5.2 remove, state '${name}' -> no item (${effects.map((e) => (e.kind === "send" ? `send ${e.type}` : e.kind)).join(", ")})`, () => {
      const result = transition(item(name), { kind: "remove" });
      assert.equal(result.state, null);
      assert.deepEqual(result.effects, effects);
      assert.equal(result.ignored, false);
    });
  }

  it("§2.5.2 remove of a pre-approved item drops the approval with the item and sends nothing", () => {
    const result = transition(item("To", { approved: true }), { kind: "remove" });
    assert.equal(result.state, null);
    assert.deepEqual(result.effects, [send("unsubscribe"), PUSH]);
  });

  it("§2.5.3 remove with no item is ignored", () => {
    assert.deepEqual(transition(null, { kind: "remove" }), { state: null, effects: [], ignored: true });
  });

  it("§2.5.3 remove of a stranger's pending request (no roster item) is ignored and keeps the request", () => {
    const stranger = item("None + Pending In", { inRoster: false });
    assert.deepEqual(transition(stranger, { kind: "remove" }), { state: stranger, effects: [], ignored: true });
  });
});

describe("§3.4 pre-approval", () => {
  const cases: [StateName, StateName][] = [
    ["None", "From"],
    ["None + Pending Out", "From + Pending Out"],
    ["To", "Both"],
  ];
  for (const [from, to] of cases) {
    it(`A.3.1 inbound subscribe, pre-approved state '${from}' -> '${to}' (auto-reply subscribed, not delivered)`, () => {
      const result = transition(item(from, { approved: true }), inb("subscribe"));
      assert.deepEqual(result.state, item(to));
      assert.deepEqual(result.effects, [send("subscribed"), PRESENCE, PUSH]);
    });
    it(`A.2.4 [1] outbound unsubscribed, pre-approved state '${from}' cancels the pre-approval`, () => {
      const result = transition(item(from, { approved: true }), out("unsubscribed"));
      assert.deepEqual(result.state, item(from));
      assert.deepEqual(result.effects, [PUSH]);
      assert.equal(result.ignored, false);
    });
    it(`A.2.3 outbound subscribed, already pre-approved state '${from}' is ignored`, () => {
      const before = item(from, { approved: true });
      assert.deepEqual(transition(before, out("subscribed")), { state: before, effects: [], ignored: true });
    });
  }

  it("pre-approving a contact not in the roster creates the item (§3.4.2)", () => {
    const result = transition(null, out("subscribed"));
    assert.deepEqual(result.state, item("None", { approved: true }));
    assert.deepEqual(result.effects, [PUSH]);
  });

  it("the approval survives the account's own subscription being answered", () => {
    const result = transition(item("None + Pending Out", { approved: true }), inb("subscribed"));
    assert.deepEqual(result.state, item("To", { approved: true }));
    assert.deepEqual(result.effects, [DELIVER, PUSH]);
  });

  it("the approval survives the account unsubscribing", () => {
    const result = transition(item("To", { approved: true }), out("unsubscribe"));
    assert.deepEqual(result.state, item("None", { approved: true }));
    assert.deepEqual(result.effects, [send("unsubscribe"), PUSH]);
  });
});

describe("contacts not in the roster", () => {
  const stranger = item("None + Pending In", { inRoster: false });

  it("a stranger's request is stored and delivered without creating a roster item (A.1 note)", () => {
    const result = transition(null, inb("subscribe"));
    assert.deepEqual(result.state, stranger);
    assert.deepEqual(result.effects, [DELIVER, STORE]);
  });

  it("approving a stranger's request adds the contact to the roster with subscription 'from' (§3.1.5)", () => {
    const result = transition(stranger, out("subscribed"));
    assert.deepEqual(result.state, item("From"));
    assert.deepEqual(result.effects, APPROVE);
  });

  it("denying a stranger's request leaves nothing behind (§3.1.4)", () => {
    assert.deepEqual(transition(stranger, out("unsubscribed")), { state: null, effects: [send("unsubscribed"), CLEAR], ignored: false });
  });

  it("a stranger withdrawing the request leaves nothing behind (A.3.2)", () => {
    assert.deepEqual(transition(stranger, inb("unsubscribe")), { state: null, effects: [DELIVER, CLEAR], ignored: false });
  });

  it("subscribing to a stranger who asked first creates the item with both pending flags", () => {
    const result = transition(stranger, out("subscribe"));
    assert.deepEqual(result.state, item("None + Pending Out/In"));
    assert.deepEqual(result.effects, [send("subscribe"), PUSH]);
  });

  it("subscribing to someone new creates the item with ask='subscribe' (§3.1.2)", () => {
    const result = transition(null, out("subscribe"));
    assert.deepEqual(result.state, item("None + Pending Out"));
    assert.deepEqual(result.effects, [send("subscribe"), PUSH]);
  });

  it("unsubscribing from someone unknown is still routed but keeps no item (A.2.2 'None')", () => {
    assert.deepEqual(transition(null, out("unsubscribe")), { state: null, effects: [send("unsubscribe")], ignored: false });
  });

  for (const event of [inb("subscribed"), inb("unsubscribed"), inb("unsubscribe"), out("unsubscribed")]) {
    it(`${event.kind} ${event.kind === "remove" ? "" : event.type} with no item is ignored`, () => {
      assert.deepEqual(transition(null, event), { state: null, effects: [], ignored: true });
    });
  }
});

describe("stateName", () => {
  for (const [name, flags] of Object.entries(STATES)) {
    it(`names ${name}`, () => assert.equal(stateName({ ...flags, approved: false, inRoster: true }), name));
  }
  it("names a missing item None", () => assert.equal(stateName(null), "None"));
});

describe("invariants over random event sequences", () => {
  const TYPES: SubscriptionStanza[] = ["subscribe", "subscribed", "unsubscribe", "unsubscribed"];
  const EVENTS: SubscriptionEvent[] = [...TYPES.map(out), ...TYPES.map(inb), { kind: "remove" }];

  it("every reachable state is one of A.1's, with consistent flags, and 'ignored' means untouched", () => {
    const random = prng(6121);
    for (let run = 0; run < 500; run++) {
      // Widened on purpose: narrowing "state" to null would defeat the loop's control-flow analysis.
      let state = null as ItemState | null;
      for (let step = 0; step < 30; step++) {
        const event = EVENTS[Math.floor(random() * EVENTS.length)];
        assert.ok(event);
        const before: ItemState | null = state;
        const result: Transition = transition(before, event);
        if (result.ignored) {
          assert.equal(result.state, before);
          assert.deepEqual(result.effects, []);
        } else {
          assert.ok(result.effects.length > 0, `a handled event has effects: ${JSON.stringify({ before, event })}`);
        }
        const s: ItemState | null = result.state;
        if (s) {
          const to = s.subscription === "to" || s.subscription === "both";
          const from = s.subscription === "from" || s.subscription === "both";
          assert.ok(!(s.askOut && to), "Pending Out only without a subscription to the contact");
          assert.ok(!(s.pendingIn && from), "Pending In only without the contact's subscription");
          assert.ok(!(s.approved && from), "pre-approval only while the contact is not subscribed");
          assert.ok(s.inRoster || (s.pendingIn && s.subscription === "none" && !s.askOut && !s.approved), "only a stranger's request lives outside the roster");
        }
        const requestEffects = result.effects.filter((e) => e.kind === "store-request" || e.kind === "clear-request");
        const changed = (before?.pendingIn ?? false) !== (s?.pendingIn ?? false);
        assert.equal(requestEffects.length, changed ? 1 : 0, "a pending request is stored or cleared exactly when it changes");
        state = s;
      }
    }
  });
});
