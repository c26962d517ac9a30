// Wakes this instance's readers of the event log (src/services/events.ts) when any instance
// appends to an account's log: a NOTIFY on CHANNELS.events (planAppend's payload), or this
// instance's own append handed on after its commit.
import { randomUUID } from "node:crypto";
import { parseEventsNotice, type Appended } from "./events.js";
import { CHANNELS, type Notifications } from "./notify.js";

/**
 * What a listener hears: the account's log grew to `head` on some instance (a NOTIFY), or this
 * instance appended `appended` and has committed it (EventNotifier.appended; its NOTIFY follows,
 * or came first). null: the connection that listens reconnected, anything may have been missed.
 */
export type Growth = { head: number; appended?: Appended } | null;

/** Wakes local listeners when any instance appends events for an account. */
export class EventNotifier {
  /** Names this instance in the NOTIFYs of appends it hands on itself (planAppend's `origin`). */
  readonly origin = randomUUID();
  private readonly listeners = new Map<number, Set<(g: Growth) => void>>();

  constructor(notifications: Notifications) {
    notifications.on(CHANNELS.events, (payload) => {
      // null: the listener reconnected and may have missed notifications: wake everyone.
      if (payload === null) return this.listeners.forEach((set) => set.forEach((fn) => fn(null)));
      const g = parseEventsNotice(payload);
      // Our own append, handed on by appended(): no need to hear it twice.
      if (g && g.origin !== this.origin) this.listeners.get(g.accountId)?.forEach((fn) => fn({ head: g.head }));
    });
  }

  /** Events this instance appended, after their commit: its own listeners may take them as they are. */
  appended(all: Appended[]): void {
    for (const a of all) this.listeners.get(a.accountId)?.forEach((fn) => fn({ head: a.base + a.events.length, appended: a }));
  }

  subscribe(accountId: number, fn: (g: Growth) => void): () => void {
    let set = this.listeners.get(accountId);
    if (!set) this.listeners.set(accountId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(accountId);
    };
  }
}
