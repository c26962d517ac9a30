// The presence subscription state machine of RFC 6121 §3 as the account's own server runs it, i.e.
// Appendix A.2 (the account's outbound subscription stanzas) and A.3 (the contact's inbound ones),
// plus pre-approval (§3.4) and roster item removal (§2.5.2). Pure: the caller persists the state and
// carries out the effects.
//
// Appendix A.1 names nine states; our flags map onto them as
//   None                   subscription "none"                  Pending Out = askOut
//   None + Pending Out     "none" + askOut                      Pending In  = pendingIn
//   None + Pending In      "none" + pendingIn
//   None + Pending Out/In  "none" + askOut + pendingIn
//   To                     "to"
//   To + Pending In        "to" + pendingIn
//   From                   "from"
//   From + Pending Out     "from" + askOut
//   Both                   "both"
// The pre-approval flag (§3.4) is orthogonal and only meaningful while the contact has no
// subscription to us (None, None + Pending Out, To).

export type Subscription = "none" | "to" | "from" | "both";
export type SubscriptionStanza = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

export interface ItemState {
  readonly subscription: Subscription;
  /** ask="subscribe": the account asked for the contact's presence and awaits the answer. */
  readonly askOut: boolean;
  /** The contact asked for the account's presence and awaits the account's answer. */
  readonly pendingIn: boolean;
  /** approved="true": the account pre-approved the contact's future request (§3.4). */
  readonly approved: boolean;
  /**
   * Whether the item is in the account's roster. A request from a stranger is kept as
   * "None + Pending In" without a roster item: A.1 says the server SHOULD NOT push items in that state.
   */
  readonly inRoster: boolean;
}

export type SubscriptionEvent =
  /** A stanza the account sends to the contact over HTTP. */
  | { readonly kind: "outbound"; readonly type: SubscriptionStanza }
  /** A stanza from the contact to the account. */
  | { readonly kind: "inbound"; readonly type: SubscriptionStanza }
  /** The account removes the contact from its roster (RFC 6121 §2.5). */
  | { readonly kind: "remove" };

/**
 * What the caller must do. Order: stanzas to the contact first, in the order the RFC lists them (a
 * contact's server must see "subscribed" before our presence, "unsubscribed" before "unavailable"),
 * then local effects.
 */
export type Effect =
  /** Route this subscription stanza from the account's bare JID to the contact. */
  | { readonly kind: "send"; readonly type: SubscriptionStanza }
  /** Send the current presence of each available session of the account to the contact (§3.1.5). */
  | { readonly kind: "send-presence" }
  /** Send unavailable presence from each available session to the contact (§3.2.2, §3.3.3). */
  | { readonly kind: "send-unavailable" }
  /** Surface the inbound stanza to the account as an event. */
  | { readonly kind: "deliver" }
  /** Keep the contact's request until the account answers it (§3.1.3). */
  | { readonly kind: "store-request" }
  /** The contact's request was answered or withdrawn: forget it. */
  | { readonly kind: "clear-request" }
  /** The roster item changed or went away: bump the roster version and emit a roster event. */
  | { readonly kind: "roster-push" };

export interface Transition {
  /** The new state; null when nothing is left to keep (no roster item, no pending request). */
  readonly state: ItemState | null;
  readonly effects: readonly Effect[];
  /** The RFC says to ignore the event silently: no state change and no effects. */
  readonly ignored: boolean;
}

export type StateName =
  | "None"
  | "None + Pending Out"
  | "None + Pending In"
  | "None + Pending Out/In"
  | "To"
  | "To + Pending In"
  | "From"
  | "From + Pending Out"
  | "Both";

/** The Appendix A.1 name of a state; a missing item is "None". */
export function stateName(state: ItemState | null): StateName {
  const s = flags(state);
  if (s.to && s.from) return "Both";
  if (s.to) return s.pendingIn ? "To + Pending In" : "To";
  if (s.from) return s.askOut ? "From + Pending Out" : "From";
  if (s.askOut && s.pendingIn) return "None + Pending Out/In";
  if (s.askOut) return "None + Pending Out";
  if (s.pendingIn) return "None + Pending In";
  return "None";
}

interface Flags {
  to: boolean;
  from: boolean;
  askOut: boolean;
  pendingIn: boolean;
  approved: boolean;
  inRoster: boolean;
}

function flags(state: ItemState | null): Flags {
  const sub = state?.subscription ?? "none";
  return {
    to: sub === "to" || sub === "both",
    from: sub === "from" || sub === "both",
    askOut: state?.askOut ?? false,
    pendingIn: state?.pendingIn ?? false,
    approved: state?.approved ?? false,
    inRoster: state?.inRoster ?? false,
  };
}

function toState(f: Flags): ItemState | null {
  const subscription: Subscription = f.to ? (f.from ? "both" : "to") : f.from ? "from" : "none";
  // Anything the account has done or been granted makes the contact a roster item (§3.1.2, §3.1.5,
  // §3.4.2); a stranger's request alone does not.
  const inRoster = f.inRoster || f.to || f.from || f.askOut || f.approved;
  if (!inRoster && !f.pendingIn) return null;
  return {
    subscription,
    // The flags each only exist on one side of a subscription (A.1): "To + Pending Out" or a
    // pre-approval of a contact who is already subscribed is not a state.
    askOut: f.askOut && !f.to,
    pendingIn: f.pendingIn && !f.from,
    approved: f.approved && !f.from,
    inRoster,
  };
}

const ORDER: Record<Effect["kind"], number> = {
  send: 0,
  "send-presence": 1,
  "send-unavailable": 2,
  deliver: 3,
  "store-request": 4,
  "clear-request": 5,
  "roster-push": 6,
};

// The roster item as the account sees it (RFC 6121 §2.1.2): pendingIn is not part of it.
function rosterVisible(s: ItemState | null): string {
  return s?.inRoster ? `${s.subscription}|${s.askOut}|${s.approved}` : "";
}

function finish(before: ItemState | null, after: Flags, effects: Effect[]): Transition {
  const state = toState(after);
  const out = [...effects];
  if (state?.pendingIn !== true && before?.pendingIn === true) out.push({ kind: "clear-request" });
  if (rosterVisible(before) !== rosterVisible(state)) out.push({ kind: "roster-push" });
  // Sort is stable, so several "send" effects keep the order they were added in.
  out.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  return { state, effects: out, ignored: false };
}

function ignore(state: ItemState | null): Transition {
  return { state, effects: [], ignored: true };
}

const send = (type: SubscriptionStanza): Effect => ({ kind: "send", type });

export function transition(state: ItemState | null, event: SubscriptionEvent): Transition {
  const f = flags(state);
  if (event.kind === "remove") return remove(state, f);
  return event.kind === "outbound" ? outbound(state, f, event.type) : inbound(state, f, event.type);
}

// A.2: the account's own stanzas. A.2.1 and A.2.2 route in every state, so that a contact's server
// that lost track of the subscription can resynchronize (§3.1.3 auto-replies to exactly this).
function outbound(state: ItemState | null, f: Flags, type: SubscriptionStanza): Transition {
  switch (type) {
    case "subscribe": // A.2.1, §3.1.2
      return finish(state, { ...f, askOut: f.askOut || !f.to }, [send("subscribe")]);
    case "unsubscribe": // A.2.2, §3.3.2
      return finish(state, { ...f, to: false, askOut: false }, [send("unsubscribe")]);
    case "subscribed": // A.2.3
      if (f.from) return ignore(state);
      if (f.pendingIn) {
        // §3.1.5: route the approval, then let the contact see us.
        return finish(state, { ...f, from: true, pendingIn: false, approved: false }, [send("subscribed"), { kind: "send-presence" }]);
      }
      // §3.4.2: with nothing to approve, "subscribed" pre-approves and is not routed.
      if (f.approved) return ignore(state);
      return finish(state, { ...f, approved: true }, []);
    case "unsubscribed": // A.2.4
      if (f.from) {
        // §3.2.2: route the cancellation, then the contact must see us go offline.
        return finish(state, { ...f, from: false }, [send("unsubscribed"), { kind: "send-unavailable" }]);
      }
      if (f.pendingIn) return finish(state, { ...f, pendingIn: false }, [send("unsubscribed")]); // §3.1.4 deny
      // A.2.4 note [1]: in the states that are not routed, this cancels a pre-approval.
      if (f.approved) return finish(state, { ...f, approved: false }, []);
      return ignore(state);
  }
}

// A.3: the contact's stanzas, "Deliver?" column = the deliver effect.
function inbound(state: ItemState | null, f: Flags, type: SubscriptionStanza): Transition {
  const deliver: Effect = { kind: "deliver" };
  switch (type) {
    case "subscribe": // A.3.1, §3.1.3
      if (f.from) {
        // §3.1.3: already subscribed, so auto-reply and do not bother the account. The RFC is silent on
        // presence, but the contact's server is evidently out of sync and would otherwise show us
        // offline until our next presence change.
        return finish(state, f, [send("subscribed"), { kind: "send-presence" }]);
      }
      if (f.pendingIn) return ignore(state); // a duplicate of a request already stored
      if (f.approved) {
        // §3.1.3, §3.4.2: a pre-approved request is approved on the account's behalf, consuming the approval.
        return finish(state, { ...f, from: true, approved: false }, [send("subscribed"), { kind: "send-presence" }]);
      }
      return finish(state, { ...f, pendingIn: true }, [deliver, { kind: "store-request" }]);
    case "unsubscribe": // A.3.2, §3.3.3
      if (f.from) return finish(state, { ...f, from: false }, [deliver, { kind: "send-unavailable" }]);
      if (f.pendingIn) return finish(state, { ...f, pendingIn: false }, [deliver]); // request withdrawn
      return ignore(state);
    case "subscribed": // A.3.3, §3.1.6: only an answer to our own pending request counts
      if (f.askOut && !f.to) return finish(state, { ...f, to: true, askOut: false }, [deliver]);
      return ignore(state);
    case "unsubscribed": // A.3.4, §3.2.3: denial of our request or cancellation of our subscription
      if (f.to || f.askOut) return finish(state, { ...f, to: false, askOut: false }, [deliver]);
      return ignore(state);
  }
}

// §2.5.2: removing the item ends both directions. The RFC names the subscribed states; a pending
// request in either direction is answered the same way, or it would outlive the item that records it.
function remove(state: ItemState | null, f: Flags): Transition {
  // §2.5.3: there is no item to remove (a stranger's pending request is not a roster item).
  if (!f.inRoster) return ignore(state);
  const effects: Effect[] = [];
  if (f.to || f.askOut) effects.push(send("unsubscribe"));
  if (f.from || f.pendingIn) effects.push(send("unsubscribed"));
  if (f.from) effects.push({ kind: "send-unavailable" });
  return finish(state, { to: false, from: false, askOut: false, pendingIn: false, approved: false, inRoster: false }, effects);
}
